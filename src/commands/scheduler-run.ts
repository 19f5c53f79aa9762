import type { RunState } from '../core/scheduler.js';
import { ExitCode, ALWAYS_POSSIBLE } from '../errors.js';
import { defineCommand } from './command.js';
import { JOB_SHARED_FLAGS, type JobFlags, jobOptions } from './scheduler-flags.js';

/**
 * `trigger` (a person, now) and the hidden `run` (what cron runs): the same job, a backup and
 * then retention if it fully succeeded; cron's run waits longer for the lock.
 */
const scheduledJob = (fromCron: boolean) =>
  defineCommand<JobFlags, RunState>({
    path: fromCron ? 'scheduler run' : 'scheduler trigger',
    exitCodes: [...ALWAYS_POSSIBLE, ExitCode.partial, ExitCode.storage],
    description: fromCron ? 'what cron runs' : 'run the scheduled job now, in the foreground (backup, then retention if it fully succeeded)',
    hidden: fromCron,
    shared: [...JOB_SHARED_FLAGS, 'json'],
    options: () => jobOptions(false),
    examples: fromCron ? [] : ['./bot.sh scheduler trigger', './bot.sh scheduler trigger --offsite --ping-file ~/.config/stackvault/hc-url'],
    logged: true,
    writesMetrics: true,
    async run({ flags, io }) {
      const [{ scheduledRun, schedulerStatus }, { readRetentionFile, policyIn, offsiteIn }, { commandContext }, { plainProgress }] = await Promise.all([
        import('../core/scheduler.js'),
        import('../core/removal.js'),
        import('./context.js'),
        import('./progress-renderers.js'),
      ]);
      const type = flags.type ?? ((await schedulerStatus(flags.dir)).type as JobFlags['type']) ?? 'daily';
      const ctx = commandContext(flags.host);
      // retention.json is read once: the policy retention applies after the backup, and "offsite".
      const retention = await readRetentionFile(flags.dir);
      const state = await scheduledRun(
        {
          dir: flags.dir,
          project: flags.project,
          encryptTo: flags.encryptTo,
          type,
          ping: flags.ping,
          pingFile: flags.pingFile,
          policy: policyIn(retention),
          lockWaitMs: fromCron ? 30 * 60_000 : 60_000,
          offsite: flags.offsite || offsiteIn(retention),
        },
        { ...ctx, progress: plainProgress(io.say) },
        io.say,
      );
      const exitCode = state.result === 'ok' ? ExitCode.ok : state.result === 'partial' ? ExitCode.partial : ExitCode.failure;
      return { data: state, exitCode, backupId: state.backupId };
    },
  });

export const schedulerTriggerCommand = scheduledJob(false);
export const schedulerRunCommand = scheduledJob(true);
