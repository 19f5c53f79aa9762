import type { SchedulerStatus } from '../core/scheduler.js';
import { formatAge, formatDate } from '../util/format.js';
import { defineCommand } from './command.js';
import type { SharedFlagValues } from './shared-flags.js';

export const schedulerStatusCommand = defineCommand<SharedFlagValues, SchedulerStatus>({
  path: 'scheduler status',
  description: 'schedule in words, next run, last run and result, last successful backup',
  shared: ['dir', 'json'],
  examples: ['./bot.sh scheduler status', './bot.sh scheduler status --json | jq .nextRun'],
  async run({ flags }) {
    const { schedulerStatus } = await import('../core/scheduler.js');
    return { data: await schedulerStatus(flags.dir) };
  },
  render(s, io) {
    const now = new Date();
    const at = (iso?: string) => (iso ? `${formatDate(new Date(iso))} (${formatAge(new Date(iso), now)})` : '-');
    io.say(s.installed ? `Installed: ${s.type} backups ${s.words} (${s.expr})` : 'Not installed. Install with: ./bot.sh scheduler install daily');
    if (s.installed) {
      io.say(`Next run:    ${formatDate(new Date(s.nextRun!))}`);
      io.say(`Log:         ${s.log ?? '-'}`);
      if (!s.cronRunning) io.say('warning: no cron daemon is running, so the schedule will never fire (Debian: service cron start).');
    }
    io.say(`Last run:    ${s.lastRun ? `${at(s.lastRun.at)}: ${s.lastRun.result}${s.lastRun.backupId ? ` (${s.lastRun.backupId})` : ''}${s.lastRun.error ? `: ${s.lastRun.error}` : ''}` : 'never'}`);
    io.say(`Last successful backup: ${s.lastSuccessful ? `${s.lastSuccessful.id}, ${at(s.lastSuccessful.createdAt)}` : 'none'}`);
    if (s.overdue) io.say('warning: the schedule is overdue: no run for more than two intervals. Check the log and the cron daemon.');
  },
});
