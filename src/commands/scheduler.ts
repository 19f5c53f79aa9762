import { parseSchedule, type Schedule } from '../core/cron.js';
import { installSchedule, scheduledRun, schedulerStatus, uninstallSchedule } from '../core/scheduler.js';
import { ExitCode } from '../errors.js';
import { formatAge, formatDate } from '../util/format.js';
import { commandContext } from './context.js';
import { withMetrics } from './metrics-file.js';
import { policyFrom } from './maintenance.js';
import { offsiteByPolicy } from '../core/removal.js';
import { plainProgress } from './progress-renderers.js';

const say = (line: string) => process.stdout.write(`${line}\n`);

export async function installCommand(
  schedule: string,
  flags: { dir: string; type?: Schedule['type']; ping?: string; project?: string; encryptTo?: string[]; offsite?: boolean; host?: string[]; metrics?: string },
) {
  const parsed = parseSchedule(schedule, flags.type);
  const { log } = await installSchedule(parsed, {
    dir: flags.dir,
    ping: flags.ping,
    project: flags.project,
    encryptTo: flags.encryptTo,
    offsite: flags.offsite,
    hosts: flags.host,
    metrics: flags.metrics,
  });
  say(
    `Installed: ${parsed.type} backups ${parsed.words} (${parsed.expr}), ${flags.offsite ? 'stored offsite, ' : ''}then retention${flags.offsite ? ' (here and offsite)' : ''}${flags.encryptTo?.length ? ', encrypted with age' : ''}.`,
  );
  say(`Output goes to ${log}. Check with: ./bot.sh scheduler status`);
}

export async function uninstallCommand() {
  say((await uninstallSchedule()) ? 'Removed the stackvault crontab entry; other entries are untouched.' : 'No stackvault crontab entry was installed.');
}

export async function statusCommand(flags: { dir: string; json?: boolean }) {
  const s = await schedulerStatus(flags.dir);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
    return;
  }
  const now = new Date();
  const at = (iso?: string) => (iso ? `${formatDate(new Date(iso))} (${formatAge(new Date(iso), now)})` : '-');
  say(s.installed ? `Installed: ${s.type} backups ${s.words} (${s.expr})` : 'Not installed. Install with: ./bot.sh scheduler install daily');
  if (s.installed) {
    say(`Next run:    ${formatDate(new Date(s.nextRun!))}`);
    say(`Log:         ${s.log ?? '-'}`);
    if (!s.cronRunning) say('warning: no cron daemon is running, so the schedule will never fire (Debian: service cron start).');
  }
  say(`Last run:    ${s.lastRun ? `${at(s.lastRun.at)}: ${s.lastRun.result}${s.lastRun.backupId ? ` (${s.lastRun.backupId})` : ''}${s.lastRun.error ? `: ${s.lastRun.error}` : ''}` : 'never'}`);
  say(`Last successful backup: ${s.lastSuccessful ? `${s.lastSuccessful.id}, ${at(s.lastSuccessful.createdAt)}` : 'none'}`);
  if (s.overdue) say('warning: the schedule is overdue: no run for more than two intervals. Check the log and the cron daemon.');
}

interface RunFlags {
  dir: string;
  project?: string;
  encryptTo?: string[];
  type?: Schedule['type'];
  ping?: string;
  offsite?: boolean;
  host?: string[];
  metrics?: string;
}

/** `trigger` (a person, now) and `run` (cron): the same job; cron's run waits longer for the lock. */
export function runCommand(flags: RunFlags, fromCron: boolean) {
  return withMetrics(flags.metrics, flags.dir, flags.project, () => scheduled(flags, fromCron));
}

async function scheduled(flags: RunFlags, fromCron: boolean) {
  const type = flags.type ?? ((await schedulerStatus(flags.dir)).type as Schedule['type'] | undefined) ?? 'daily';
  const ctx = commandContext(flags.host);
  const state = await scheduledRun(
    {
      dir: flags.dir,
      project: flags.project,
      encryptTo: flags.encryptTo,
      type,
      ping: flags.ping,
      policy: await policyFrom({ dir: flags.dir }),
      lockWaitMs: fromCron ? 30 * 60_000 : 60_000,
      offsite: flags.offsite || (await offsiteByPolicy(flags.dir)),
    },
    { ...ctx, progress: plainProgress(say) },
    say,
  );
  if (state.result !== 'ok') process.exitCode = state.result === 'partial' ? ExitCode.partial : ExitCode.failure;
  return { backupId: state.backupId };
}
