import { defineCommand } from './command.js';

export const schedulerUninstallCommand = defineCommand<{ json?: boolean }, { removed: boolean }>({
  path: 'scheduler uninstall',
  description: 'remove our crontab entry, leaving other lines alone',
  shared: ['json'],
  examples: ['./bot.sh scheduler uninstall'],
  async run() {
    const { uninstallSchedule } = await import('../core/scheduler.js');
    return { data: { removed: await uninstallSchedule() } };
  },
  render: ({ removed }, io) => io.say(removed ? 'Removed the stackvault crontab entry; other entries are untouched.' : 'No stackvault crontab entry was installed.'),
});
