import { ALWAYS_POSSIBLE } from '../errors.js';
import { shown } from '../util/terminal.js';
import { defineCommand } from './command.js';

export const schedulerUninstallCommand = defineCommand<{ json?: boolean }, { removed: boolean; pingFileRemoved?: string }>({
  path: 'scheduler uninstall',
  exitCodes: [...ALWAYS_POSSIBLE],
  description: 'remove our crontab entry, leaving other lines alone, and the ping file install wrote for it',
  shared: ['json'],
  examples: ['./bot.sh scheduler uninstall'],
  async run() {
    const { uninstallSchedule } = await import('../core/scheduler.js');
    return { data: await uninstallSchedule() };
  },
  render: ({ removed, pingFileRemoved }, io) =>
    io.say(
      removed
        ? `Removed the stackvault crontab entry${pingFileRemoved ? ` and its ping file ${shown(pingFileRemoved)}` : ''}; other entries are untouched.`
        : 'No stackvault crontab entry was installed.',
    ),
});
