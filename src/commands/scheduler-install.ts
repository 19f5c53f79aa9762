import { ALWAYS_POSSIBLE, ExitCode } from '../errors.js';
import type { Schedule } from '../core/cron.js';
import { shown } from '../util/terminal.js';
import { defineCommand } from './command.js';
import { JOB_SHARED_FLAGS, type JobFlags, jobOptions } from './scheduler-flags.js';

export const schedulerInstallCommand = defineCommand<JobFlags, { schedule: Schedule; log: string; warnings: string[] }>({
  path: 'scheduler install',
  exitCodes: [...ALWAYS_POSSIBLE, ExitCode.storage, ExitCode.offsite],
  description: 'install (or replace) our crontab entry; daily 02:00, weekly Sunday 02:00, monthly the 1st 02:00',
  arguments: [{ name: '<schedule>', description: 'daily | weekly | monthly | "CRON EXPR" (5 fields, names like mon-fri, or @daily/@weekly/...)' }],
  shared: [...JOB_SHARED_FLAGS, 'json'],
  options: () => jobOptions(true),
  examples: [
    './bot.sh scheduler install daily',
    './bot.sh scheduler install "30 3 * * mon-fri" --type daily --ping https://hc-ping.com/UUID',
    './bot.sh scheduler install daily --ping-file ~/.config/stackvault/hc-url   # a file only you can read, holding the URL',
    './bot.sh scheduler install @weekly',
    './bot.sh scheduler install daily --offsite',
  ],
  async run({ args: [schedule], flags }) {
    const [{ parseSchedule }, { installSchedule }, { commandContext }] = await Promise.all([import('../core/cron.js'), import('../core/scheduler.js'), import('./context.js')]);
    const parsed = parseSchedule(schedule!, flags.type);
    const { log, warnings } = await installSchedule(
      parsed,
      {
        dir: flags.dir,
        ping: flags.ping,
        pingFile: flags.pingFile,
        project: flags.project,
        encryptTo: flags.encryptTo,
        offsite: flags.offsite,
        hosts: flags.host,
        metrics: flags.metrics,
      },
      // Asked only to warn when --project names no container; after every value was checked.
      { engine: () => commandContext(flags.host).engine },
    );
    return { data: { schedule: parsed, log, warnings } };
  },
  render({ schedule, log, warnings }, io, flags) {
    io.say(
      `Installed: ${schedule.type} backups ${schedule.words} (${schedule.expr}), ${flags.offsite ? 'stored offsite, ' : ''}then retention${flags.offsite ? ' (here and offsite)' : ''}${flags.encryptTo?.length ? ', encrypted with age' : ''}.`,
    );
    io.say(`Output goes to ${shown(log)}. Check with: ./bot.sh scheduler status`);
    for (const w of warnings) io.say(`warning: ${w}`);
  },
});
