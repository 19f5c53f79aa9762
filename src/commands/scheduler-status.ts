import { ALWAYS_POSSIBLE, ExitCode } from '../errors.js';
import type { SchedulerStatus } from '../core/scheduler.js';
import { resolve } from 'node:path';
import { formatAge, formatDate } from '../util/format.js';
import { shellWord } from '../util/shell-word.js';
import { shown } from '../util/terminal.js';
import { defineCommand } from './command.js';
import type { SharedFlagValues } from './shared-flags.js';

/** A value as one word to paste into a shell: as it is when that is safe, else single-quoted. */

export const schedulerStatusCommand = defineCommand<SharedFlagValues, SchedulerStatus>({
  path: 'scheduler status',
  exitCodes: [...ALWAYS_POSSIBLE, ExitCode.storage],
  description: 'schedule in words, next run, last run and result, last successful backup',
  shared: ['dir', 'json'],
  examples: ['./bot.sh scheduler status', './bot.sh scheduler status --json | jq .nextRun'],
  async run({ flags }) {
    const { schedulerStatus } = await import('../core/scheduler.js');
    return { data: await schedulerStatus(flags.dir) };
  },
  render(s, io, { dir }) {
    const now = new Date();
    const at = (iso?: string) => (iso ? `${formatDate(new Date(iso))} (${formatAge(new Date(iso), now)})` : '-');
    io.say(s.installed ? `Installed: ${s.type} backups ${s.words} (${s.expr})` : 'Not installed. Install with: ./bot.sh scheduler install daily');
    if (s.installed) {
      io.say(`Next run:    ${formatDate(new Date(s.nextRun!))}`);
      io.say(`Log:         ${s.log === undefined ? '-' : shown(s.log)}`);
      // Scheme and host only: the rest of the URL is the check's key.
      if (s.ping) io.say(`Pings:       ${s.ping.to ?? '-'}${s.ping.file !== undefined ? ` (URL read from ${shown(s.ping.file)} at each run)` : ''}`);
      if (s.ping?.problem) io.say(`warning: ${s.ping.problem}, so the scheduled runs send no pings (each says so in the log); the backups run all the same.`);
      if (s.ping?.inLine)
        io.say(
          'warning: the installed line holds the ping URL, and the key in it, which every local user can see in the process list while a run lasts: install the schedule again (with --ping URL, which keeps it in a file).',
        );
      if (s.lineProblem) io.say(`warning: ${s.lineProblem}: an older stackvault wrote it; install the schedule again.`);
      if (!s.cronRunning) io.say('warning: no cron daemon is running, so the schedule will never fire (Debian: service cron start).');
    }
    // The state file is input (it sits in the backup directory): its strings are shown escaped.
    io.say(
      `Last run:    ${s.lastRun ? `${at(s.lastRun.at)}: ${s.lastRun.result}${s.lastRun.backupId ? ` (${shown(s.lastRun.backupId)})` : ''}${s.lastRun.error ? `: ${shown(s.lastRun.error)}` : ''}` : s.stateProblem ? 'unknown' : 'never'}`,
    );
    if (s.stateProblem) io.say(`warning: ${shown(s.stateProblem)}; the next scheduled run writes it again.`);
    if (s.lastRunAhead)
      io.say(
        `warning: the last run is dated ahead of this clock (${formatDate(now)}), which was set back since, so whether the schedule is overdue cannot be told until the next run records its time.`,
      );
    io.say(`Last successful backup: ${s.lastSuccessful ? `${s.lastSuccessful.id}, ${at(s.lastSuccessful.createdAt)}` : 'none'}`);
    if (s.installed && s.dir !== undefined && resolve(s.dir) !== resolve(dir))
      io.say(`warning: the installed schedule backs up to ${shown(s.dir)}, so the runs shown here are not its own; see: ./bot.sh scheduler status --dir ${shellWord(shown(s.dir))}`);
    const sinceInstall = s.installedAt !== undefined && (!s.lastRun || s.lastRun.at < s.installedAt);
    if (s.overdue && sinceInstall)
      io.say(`warning: the schedule is overdue: it has not run since it was installed ${at(s.installedAt)}, more than two intervals ago. Check the log and the cron daemon.`);
    else if (s.overdue) io.say('warning: the schedule is overdue: no run for more than two intervals. Check the log and the cron daemon.');
  },
});
