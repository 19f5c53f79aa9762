import { DEFAULT_COMPRESSION } from './artifact.js';
import { execa } from 'execa';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ExitCode, StackvaultError } from '../errors.js';
import { checkRecipient } from '../util/age.js';
import { array, count, matching, object, optional, string, vetted } from '../util/schema.js';
import { MiB, readRegularFile, writeFileAtomic } from '../util/safe-file.js';
import { isoInstant } from './manifest.js';
import { ensureBackupDir } from './backup-dir.js';
import { readCatalog } from './catalog.js';
import { REPO_ROOT } from './compose.js';
import { createBackup, type CreateDeps } from './create.js';
import { cronOfLine, describeSchedule, expectedIntervalMs, nextRun, parseCron, type Schedule } from './cron.js';
import { executeRemoval, planPrune } from './removal.js';
import { listOffsite, pruneOffsite, storeNewAndPending } from './offsite.js';
import { requireOffsite } from '../offsite/restic.js';
import type { RetentionPolicy } from './retention.js';

/** Marks our crontab line, so uninstall removes only it and install replaces it. */
export const CRON_MARKER = '# stackvault-scheduler';
export const SCHEDULER_LOG = 'scheduler.log';
const STATE_FILE = '.scheduler-state.json';

const shq = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

async function readCrontab(): Promise<string> {
  const r = await execa('crontab', ['-l'], { reject: false });
  if (r.exitCode === 0) return r.stdout;
  if (/no crontab/i.test(r.stderr)) return '';
  throw new StackvaultError(`crontab -l failed: ${r.stderr.trim()}`, ExitCode.failure, 'Is cron installed? (Debian: apt-get install cron)');
}

async function writeCrontab(text: string): Promise<void> {
  const r = await execa('crontab', ['-'], { input: text, reject: false });
  if (r.exitCode !== 0) throw new StackvaultError(`crontab - failed: ${r.stderr.trim()}`);
}

const withoutOurs = (text: string) => text.split('\n').filter((l) => l.trim() && !l.includes(CRON_MARKER));

export interface InstallOptions {
  dir: string;
  ping?: string;
  project?: string;
  encryptTo?: string[];
  offsite?: boolean;
  /** --host values: the engines each run backs up. */
  hosts?: string[];
  /** --metrics FILE: Prometheus metrics after each run. */
  metrics?: string;
}

/** restic's variables a cron job needs; secrets themselves stay in files or commands, never in the crontab. */
const RESTIC_VARIABLES = ['RESTIC_REPOSITORY', 'RESTIC_REPOSITORY_FILE', 'RESTIC_PASSWORD_FILE', 'RESTIC_PASSWORD_COMMAND', 'RESTIC_CACHE_DIR'];

/** Writes (or replaces) our one crontab line; other lines are kept as they are. */
export async function installSchedule(schedule: Schedule, options: InstallOptions): Promise<{ line: string; log: string }> {
  for (const r of options.encryptTo ?? []) await checkRecipient(r); // a typo must fail now, not at 02:00
  if (options.offsite) {
    requireOffsite();
    if (!process.env.RESTIC_PASSWORD_FILE && !process.env.RESTIC_PASSWORD_COMMAND) {
      throw new StackvaultError('A scheduled offsite copy needs RESTIC_PASSWORD_FILE or RESTIC_PASSWORD_COMMAND: RESTIC_PASSWORD would have to be written into the crontab.', ExitCode.usage);
    }
    await listOffsite(); // the repository answers and the password opens it: now, not at 02:00
  }
  if (options.metrics) {
    // Where the metrics go must be writable now, not found out at 02:00.
    await access(dirname(resolve(options.metrics)), constants.W_OK).catch(() => {
      throw new StackvaultError(`--metrics ${options.metrics}: its directory does not exist or is not writable.`, ExitCode.usage);
    });
  }
  const dir = await ensureBackupDir(options.dir);
  const log = join(dir, SCHEDULER_LOG);
  if (options.ping && !/^https?:\/\//.test(options.ping)) throw new StackvaultError(`--ping must be an http(s) URL.`, ExitCode.usage);
  // cron runs with a bare PATH; keep the one we were installed with so node and docker are found.
  const command = [
    'umask 077 &&', // the log and everything the run writes: owner only
    `cd ${shq(REPO_ROOT)} &&`,
    `PATH=${shq(process.env.PATH ?? '/usr/bin:/bin')}`,
    // Where the engines are and their TLS files or contexts (no secrets: those stay in files).
    ...['DOCKER_HOST', 'DOCKER_CONFIG', 'DOCKER_CERT_PATH', 'DOCKER_TLS_VERIFY', 'DOCKER_CONTEXT'].filter((v) => process.env[v]).map((v) => `${v}=${shq(process.env[v]!)}`),
    ...(options.offsite ? RESTIC_VARIABLES.filter((v) => process.env[v]).map((v) => `${v}=${shq(process.env[v]!)}`) : []),
    `./bot.sh scheduler run --type ${schedule.type} --dir ${shq(dir)}`,
    ...(options.project ? [`--project ${shq(options.project)}`] : []),
    ...(options.encryptTo?.length ? [`--encrypt-to ${options.encryptTo.map(shq).join(' ')}`] : []),
    ...(options.ping ? [`--ping ${shq(options.ping)}`] : []),
    ...(options.offsite ? ['--offsite'] : []),
    ...(options.hosts ?? []).map((h) => `--host ${shq(h)}`),
    ...(options.metrics ? [`--metrics ${shq(resolve(options.metrics))}`] : []),
    `>> ${shq(log)} 2>&1`,
  ].join(' ');
  const line = `${schedule.expr} ${command} ${CRON_MARKER}`;
  await writeCrontab(`${[...withoutOurs(await readCrontab()), line].join('\n')}\n`);
  return { line, log };
}

export async function uninstallSchedule(): Promise<boolean> {
  const current = await readCrontab();
  const kept = withoutOurs(current);
  const had = current.split('\n').some((l) => l.includes(CRON_MARKER));
  if (had) await writeCrontab(kept.length ? `${kept.join('\n')}\n` : '');
  return had;
}

export interface RunState {
  at: string;
  type: string;
  result: 'ok' | 'partial' | 'failed';
  backupId?: string;
  error?: string;
  durationMs: number;
  pruned?: string[];
}

export interface SchedulerStatus {
  installed: boolean;
  expr?: string;
  type?: string;
  words?: string;
  nextRun?: string;
  log?: string;
  cronRunning: boolean;
  lastRun?: RunState;
  /** Why the state file of the last run was not read (then the last run is unknown). */
  stateProblem?: string;
  lastSuccessful?: { id: string; createdAt: string };
  overdue: boolean;
}

export async function schedulerStatus(dirOption: string, now = new Date()): Promise<SchedulerStatus> {
  const line = (await readCrontab()).split('\n').find((l) => l.includes(CRON_MARKER));
  const cronRunning = (await execa('pgrep', ['-x', 'cron'], { reject: false })).exitCode === 0 || (await execa('pgrep', ['-x', 'crond'], { reject: false })).exitCode === 0;
  const dir = resolve(dirOption);
  const { lastRun, stateProblem } = await readState(dir);
  const catalog = await readCatalog(dir).catch(() => undefined);
  const good = catalog?.backups.find((b) => b.manifest.status === 'ok');
  const status: SchedulerStatus = {
    installed: Boolean(line),
    cronRunning,
    lastRun,
    ...(stateProblem ? { stateProblem } : {}),
    lastSuccessful: good ? { id: good.manifest.id, createdAt: good.manifest.createdAt } : undefined,
    overdue: false,
  };
  if (line) {
    const expr = cronOfLine(line);
    parseCron(expr);
    const type = /--type (\S+)/.exec(line)?.[1];
    status.expr = expr;
    status.type = type;
    status.words = describeSchedule(expr);
    status.nextRun = nextRun(expr, now).toISOString();
    status.log = /2>&1/.test(line) ? (/>> '([^']+)'/.exec(line)?.[1] ?? undefined) : undefined;
    // Overdue: no run within two intervals (plus slack) of now.
    const last = lastRun ? new Date(lastRun.at).getTime() : 0;
    status.overdue = now.getTime() - last > 2 * expectedIntervalMs(expr, now) + 10 * 60_000 && Boolean(lastRun);
  }
  return status;
}

const runStateSchema = object({
  at: vetted('a time as stackvault writes it', (v) => (isoInstant(v) === undefined ? 'not YYYY-MM-DDTHH:MM:SS.sssZ' : undefined)),
  type: string,
  result: matching(/^(?:ok|partial|failed)$/, 'ok, partial or failed'),
  backupId: optional(string),
  error: optional(string),
  durationMs: count,
  pruned: optional(array(string)),
});

/**
 * The last scheduled run, from the state file it wrote; or why that file cannot be read as one.
 * The file sits in the backup directory like the manifests, so it is input too: a crafted one
 * must neither crash `scheduler status` and `backup report` nor put escape codes on the screen.
 */
async function readState(dir: string): Promise<{ lastRun?: RunState; stateProblem?: string }> {
  const file = join(dir, STATE_FILE);
  let text: string;
  try {
    text = await readRegularFile(file, MiB);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    return { stateProblem: `${file} cannot be read (${err instanceof Error ? err.message : String(err)})` };
  }
  try {
    return { lastRun: runStateSchema.parse(JSON.parse(text), 'the state') as RunState };
  } catch (err) {
    return { stateProblem: `${file} is not a state file stackvault wrote (${err instanceof SyntaxError ? 'not JSON' : (err as Error).message})` };
  }
}

export interface ScheduledRunOptions {
  dir: string;
  project?: string;
  encryptTo?: string[];
  type: Schedule['type'];
  ping?: string;
  policy: RetentionPolicy;
  lockWaitMs: number;
  offsite?: boolean;
}

/**
 * The scheduled job: back up with the schedule's type, then apply retention ONLY if every
 * service succeeded. Pings `<url>/start`, `<url>` or `<url>/fail` (healthchecks.io style) so
 * that a run that never happens is noticed. The outcome goes to a state file for `status`.
 */
export async function scheduledRun(options: ScheduledRunOptions, deps: CreateDeps, say: (line: string) => void): Promise<RunState> {
  const started = Date.now();
  const stamp = () => new Date().toISOString();
  await ping(options.ping, '/start', say);
  say(`${stamp()} scheduled ${options.type} backup starting`);
  let state: RunState;
  try {
    const { manifest } = await createBackup(
      {
        dir: options.dir,
        project: options.project,
        encryptTo: options.encryptTo,
        type: options.type,
        comment: `scheduled ${options.type}`,
        parallel: 4,
        compress: DEFAULT_COMPRESSION,
        prefix: 'stackvault',
        lockWaitMs: options.lockWaitMs,
      },
      deps,
    );
    state = { at: stamp(), type: options.type, result: manifest.status === 'ok' ? 'ok' : 'partial', backupId: manifest.id, durationMs: Date.now() - started };
    if (options.offsite) {
      const outcomes = await storeNewAndPending(options.dir, manifest.id);
      for (const o of outcomes) say(`${stamp()} offsite ${o.id}: ${o.ok ? `stored (snapshot ${o.stored!.snapshot}, ${o.stored!.bytesAdded} bytes new after deduplication)` : `FAILED: ${o.error}`}`);
      const failed = outcomes.find((o) => !o.ok);
      if (failed) Object.assign(state, { result: 'partial', error: `offsite copy failed: ${failed.error}` });
    }
    if (state.result === 'ok') {
      const plan = await planPrune(options.dir, options.policy, new Date());
      if (plan.remove.length) await executeRemoval(plan, 'scheduled prune');
      state.pruned = plan.remove.map((r) => r.id);
      for (const r of plan.remove) say(`${stamp()} retention removed ${r.id}: ${r.reason}`);
      if (options.offsite) {
        const remote = await pruneOffsite(options.policy, new Date(), false);
        for (const d of remote.decisions.filter((x) => !x.keep)) say(`${stamp()} retention forgot ${d.id} in the restic repository: ${d.reason}`);
      }
    } else {
      say(`${stamp()} backup was partial${state.error ? ` (${state.error})` : ''}: retention skipped`);
    }
  } catch (err) {
    state = { at: stamp(), type: options.type, result: 'failed', error: err instanceof Error ? err.message : String(err), durationMs: Date.now() - started };
  }
  say(`${stamp()} scheduled ${options.type} backup ${state.result}${state.backupId ? ` (${state.backupId})` : ''}${state.error ? `: ${state.error}` : ''}`);
  await writeFileAtomic(join(resolve(options.dir), STATE_FILE), JSON.stringify(state, null, 2), { mode: 0o600 }).catch(() => undefined);
  await ping(options.ping, state.result === 'ok' ? '' : '/fail', say);
  return state;
}

async function ping(url: string | undefined, suffix: string, say: (line: string) => void): Promise<void> {
  if (!url) return;
  try {
    await fetch(url.replace(/\/$/, '') + suffix, { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    say(`warning: ping ${suffix || '(success)'} failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}
