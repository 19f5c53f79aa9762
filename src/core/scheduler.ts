import { DEFAULT_COMPRESSION } from './artifact.js';
import { execa } from 'execa';
import { constants } from 'node:fs';
import { access, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ExitCode, StackvaultError } from '../errors.js';
import { checkRecipient } from '../util/age.js';
import { array, count, matching, object, optional, string, vetted } from '../util/schema.js';
import { MiB, readRegularFile, writeFileAtomic } from '../util/safe-file.js';
import { aheadOfClock, isoInstant } from './manifest.js';
import { ensureBackupDir } from './backup-dir.js';
import { readCatalog } from './catalog.js';
import { REPO_ROOT } from './compose.js';
import { createBackup, type CreateDeps } from './create.js';
import {
  commandPartOf,
  controlCharacterIn,
  cronCommand,
  cronEscape,
  cronOfLine,
  cronQuote,
  describeSchedule,
  expectedIntervalMs,
  nextRun,
  parseCron,
  type Schedule,
  shellWords,
  entrySpans,
  withoutEntries,
} from './cron.js';
import { defaultEndpoint, parseHosts } from '../docker/endpoints.js';
import type { ContainerSummary, DockerEngine } from '../docker/engine.js';
import { shown } from '../util/terminal.js';
import { LABELS } from './selection.js';
import { executeRemoval, planPrune } from './removal.js';
import { listOffsite, pruneOffsite, storeNewAndPending } from './offsite.js';
import { requireOffsite } from '../offsite/restic.js';
import type { RetentionPolicy } from './retention.js';
import { ownPingFile, pingShown, pingUrlProblem, readableByOthers, readPingFile, sendPing, writeOwnPingFile } from './ping.js';

/** Marks our crontab line, so uninstall removes only it and install replaces it. */
export const CRON_MARKER = '# stackvault-scheduler';
export const SCHEDULER_LOG = 'scheduler.log';
const STATE_FILE = '.scheduler-state.json';

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

/** The start of a line stackvault writes (this version's and older ones': `cd` first, or `umask` then `cd`). */
const startsOurEntry = (line: string) => /^(?:umask 077 && )?cd '/.test(commandPartOf(line));

/**
 * The crontab without our entry; the user's lines, blank ones included, as they were. An entry
 * an older version wrote over several lines (a newline in a value) is removed whole.
 */
export function crontabWithoutOurs(text: string): string[] {
  return withoutEntries(crontabLines(text), startsOurEntry, isMarked);
}

/** Our entry as cron holds it (several lines when an older version wrote a newline into it), or undefined. */
export function ourEntry(text: string): string[] | undefined {
  const lines = crontabLines(text);
  const span = entrySpans(lines, startsOurEntry, isMarked)[0];
  return span && lines.slice(span.start, span.end + 1);
}

const crontabLines = (text: string) => (text === '' ? [] : text.split('\n'));
const isMarked = (line: string) => line.includes(CRON_MARKER);

export interface InstallOptions {
  dir: string;
  /** The healthchecks URL: written into the backup directory's ping file, never into the line. */
  ping?: string;
  /** A file of the user's own that holds the URL (the line names it). */
  pingFile?: string;
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
/** Where the engines are and their TLS files or contexts (no secrets: those stay in files). */
const DOCKER_VARIABLES = ['DOCKER_HOST', 'DOCKER_CONFIG', 'DOCKER_CERT_PATH', 'DOCKER_TLS_VERIFY', 'DOCKER_CONTEXT'];

/** Everything one crontab line holds; `jobLine` writes it. */
export interface JobLine {
  expr: string;
  type: Schedule['type'];
  repoRoot: string;
  /** Variables set for the run, in order (PATH first). */
  env: ReadonlyArray<readonly [string, string]>;
  dir: string;
  log: string;
  project?: string;
  encryptTo?: readonly string[];
  /** The file the run reads its ping URL from (the URL itself never goes into the line: see core/ping.ts). */
  pingFile?: string;
  offsite?: boolean;
  hosts?: readonly string[];
  metrics?: string;
  installedAt: Date;
}

/** Each value of a line with the words that name it in a message. */
const namedValues = (job: JobLine): Array<[string, string | undefined]> => [
  ['--dir', job.dir],
  ['--dir', job.log],
  ['--project', job.project],
  ['--ping-file', job.pingFile],
  ['--metrics', job.metrics],
  ...(job.encryptTo ?? []).map((v): [string, string] => ['--encrypt-to', v]),
  ...(job.hosts ?? []).map((v): [string, string] => ['--host', v]),
  ['the repository path', job.repoRoot],
  ...job.env.map(([name, v]): [string, string] => [name, v]),
];

/**
 * Why a value cannot go into a crontab line, if one cannot: crontab is line-based, so a newline
 * in a value would end the entry and start another (a line of the value's choosing).
 */
export function lineValueProblem(name: string, value: string | undefined): string | undefined {
  const c = value === undefined ? undefined : controlCharacterIn(value);
  return c ? `${name} holds a control character (${c}), which cannot be written into a crontab line.` : undefined;
}

/**
 * The crontab line: cd to the repository, the variables, `./bot.sh scheduler run` with the
 * job's flags, output appended to the log. Every value is one quoted shell word, `%` escaped
 * for cron; the marker comment ends it with the install time, for `status`.
 */
export function jobLine(job: JobLine): string {
  for (const [name, value] of namedValues(job)) {
    const problem = lineValueProblem(name, value);
    if (problem) throw new StackvaultError(problem, ExitCode.usage);
  }
  const q = cronQuote;
  const command = [
    'umask 077 &&', // the log and everything the run writes: owner only
    `cd ${q(job.repoRoot)} &&`,
    ...job.env.map(([name, value]) => `${name}=${q(value)}`),
    `./bot.sh scheduler run --type ${job.type} --dir ${q(job.dir)}`,
    ...(job.project !== undefined ? [`--project ${q(job.project)}`] : []),
    ...(job.encryptTo?.length ? [`--encrypt-to ${job.encryptTo.map(q).join(' ')}`] : []),
    ...(job.pingFile !== undefined ? [`--ping-file ${q(job.pingFile)}`] : []),
    ...(job.offsite ? ['--offsite'] : []),
    ...(job.hosts ?? []).map((h) => `--host ${q(h)}`),
    ...(job.metrics !== undefined ? [`--metrics ${q(job.metrics)}`] : []),
    `>> ${q(job.log)} 2>&1`,
  ].join(' ');
  return `${job.expr} ${cronEscape(command)} ${CRON_MARKER} installed ${job.installedAt.toISOString()}`;
}

/** What `status` reads back from our line: the schedule, its flags, the install time, and whether cron cuts it. */
export interface InstalledJob {
  expr: string;
  type?: string;
  dir?: string;
  log?: string;
  installedAt?: string;
  /** Why cron cannot run the entry as written (an older version wrote it), if so. */
  problem?: string;
  /** The file the run reads its ping URL from. */
  pingFile?: string;
  /** An older version's line holds the ping URL itself (`--ping URL`): where it goes (never the URL). */
  pingInLine?: string;
}

/** Our entry read back: `entry` is its lines (one, unless an older version wrote a newline into a value). */
export function installedJob(entry: readonly string[]): InstalledJob {
  const line = entry.join('\n');
  const { command, stdin } = cronCommand(commandPartOf(line));
  const words = shellWords(command);
  const after = (flag: string) => {
    const i = words.indexOf(flag);
    return i < 0 ? undefined : words[i + 1];
  };
  const installedAt = new RegExp(`${CRON_MARKER} installed (\\S+)\\s*$`).exec(entry.at(-1) ?? '')?.[1];
  return {
    expr: cronOfLine(line),
    type: after('--type'),
    dir: after('--dir'),
    log: words.includes('2>&1') ? after('>>') : undefined,
    ...(installedAt && isoInstant(installedAt) !== undefined ? { installedAt } : {}),
    ...(after('--ping-file') !== undefined ? { pingFile: after('--ping-file') } : {}),
    ...(after('--ping') !== undefined ? { pingInLine: pingShown(after('--ping')!) } : {}),
    ...(entry.length > 1
      ? { problem: `the installed entry spans ${entry.length} crontab lines (a value held a newline), so cron runs pieces of it` }
      : stdin !== undefined
        ? { problem: 'cron ends the installed command at a % sign, so it cannot run' }
        : {}),
  };
}

/**
 * Overdue: no run within two intervals (plus ten minutes' slack) of the later of the last run
 * and the install. A schedule that never ran is overdue two intervals after it was installed;
 * without either time (a line from an older version, never run) nothing can be said.
 */
export function isOverdue(expr: string, now: Date, lastRunAt?: string, installedAt?: string): boolean {
  const since = Math.max(lastRunAt ? new Date(lastRunAt).getTime() : 0, installedAt ? new Date(installedAt).getTime() : 0);
  return since > 0 && now.getTime() - since > 2 * expectedIntervalMs(expr, now) + 10 * 60_000;
}

/** Checks install needs before writing anything; an engine only to say whether the project exists. */
export interface InstallDeps {
  engine?: () => DockerEngine;
  now?: Date;
}

/** Writes (or replaces) our one crontab line; other lines are kept as they are. */
export async function installSchedule(schedule: Schedule, options: InstallOptions, deps: InstallDeps = {}): Promise<{ line: string; log: string; warnings: string[] }> {
  if (options.ping !== undefined && options.pingFile !== undefined) throw new StackvaultError('Give --ping or --ping-file, not both.', ExitCode.usage);
  const userPingFile = options.pingFile === undefined ? undefined : resolve(options.pingFile);
  // Everything the line will hold is checked before anything is created or written.
  const env: Array<[string, string]> = [
    // cron runs with a bare PATH; keep the one we were installed with so node and docker are found.
    ['PATH', process.env.PATH ?? '/usr/bin:/bin'],
    ...DOCKER_VARIABLES.filter((v) => process.env[v]).map((v): [string, string] => [v, process.env[v]!]),
    ...(options.offsite ? RESTIC_VARIABLES.filter((v) => process.env[v]).map((v): [string, string] => [v, process.env[v]!]) : []),
  ];
  const metrics = options.metrics === undefined ? undefined : resolve(options.metrics);
  const draft: JobLine = {
    expr: schedule.expr,
    type: schedule.type,
    repoRoot: REPO_ROOT,
    env,
    dir: resolve(options.dir),
    log: join(resolve(options.dir), SCHEDULER_LOG),
    project: options.project,
    encryptTo: options.encryptTo,
    pingFile: userPingFile ?? (options.ping !== undefined ? ownPingFile(resolve(options.dir)) : undefined),
    offsite: options.offsite,
    hosts: options.hosts,
    metrics,
    installedAt: deps.now ?? new Date(),
  };
  for (const [name, value] of [['--dir', options.dir], ['--ping', options.ping], ...namedValues(draft)] as Array<[string, string | undefined]>) {
    const problem = lineValueProblem(name, value);
    if (problem) throw new StackvaultError(problem, ExitCode.usage);
  }
  if (options.ping !== undefined) checkPingUrl(options.ping);
  const warnings: string[] = [];
  if (userPingFile !== undefined) {
    // Read now, as the run will: a missing or wrong file must fail here, not at 02:00.
    const read = await readPingFile(userPingFile);
    if ('problem' in read) throw new StackvaultError(`--ping-file: ${read.problem}.`, ExitCode.usage);
    const mode = await readableByOthers(userPingFile).catch(() => undefined);
    if (mode !== undefined) warnings.push(`the ping file ${shown(userPingFile)} can be read by other users (mode ${mode.toString(8)}), and the key of the check is in it: chmod 600 it.`);
  }
  if (options.hosts?.length) parseHosts(options.hosts); // names, addresses, contexts: now, not at 02:00
  if (process.env.DOCKER_HOST) defaultEndpoint(); // copied into the line: no password in it, ever
  for (const r of options.encryptTo ?? []) await checkRecipient(r); // a typo must fail now, not at 02:00
  if (options.offsite) {
    requireOffsite();
    if (!process.env.RESTIC_PASSWORD_FILE && !process.env.RESTIC_PASSWORD_COMMAND) {
      throw new StackvaultError('A scheduled offsite copy needs RESTIC_PASSWORD_FILE or RESTIC_PASSWORD_COMMAND: RESTIC_PASSWORD would have to be written into the crontab.', ExitCode.usage);
    }
    // The line is the argv of cron's shell for the whole run, which every local user can list.
    if (repositoryHoldsPassword(process.env.RESTIC_REPOSITORY)) {
      throw new StackvaultError(
        'RESTIC_REPOSITORY holds a password (user:password@host), which would be written into the crontab, where every local user sees it in the process list of each run.',
        ExitCode.usage,
        'Write the repository into a file only you can read and set RESTIC_REPOSITORY_FILE to it instead (restic reads it from there).',
      );
    }
    await listOffsite(); // the repository answers and the password opens it: now, not at 02:00
  }
  if (metrics) {
    // Where the metrics go must be writable now, not found out at 02:00.
    await access(dirname(metrics), constants.W_OK).catch(() => {
      throw new StackvaultError(`--metrics ${options.metrics}: its directory does not exist or is not writable.`, ExitCode.usage);
    });
  }
  const dir = await ensureBackupDir(options.dir);
  const log = join(dir, SCHEDULER_LOG);
  const pingFile = userPingFile ?? (options.ping !== undefined ? ownPingFile(dir) : undefined);
  const line = jobLine({ ...draft, dir, log, pingFile });
  if (options.project !== undefined && deps.engine) warnings.push(...[await projectWarning(deps.engine, options.project)].filter((w) => w !== undefined));
  const current = await readCrontab();
  const previous = ourEntry(current);
  // The URL goes into its file before the line that reads it; if the crontab is not written, the file is as it was.
  const undo = options.ping !== undefined ? await writeOwnPingFile(dir, options.ping) : undefined;
  try {
    await writeCrontab(`${[...crontabWithoutOurs(current), line].join('\n')}\n`);
  } catch (err) {
    await undo?.().catch(() => undefined);
    throw err;
  }
  // The replaced entry's own ping file, when the new one does not read it: no key left behind.
  const old = previous && ownPingFileOf(installedJob(previous));
  if (old !== undefined && old !== pingFile) await rm(old, { force: true }).catch(() => undefined);
  return { line, log, warnings };
}

/** The ping file an installed job reads, when it is the one install wrote (uninstall removes only that one, never a user's). */
function ownPingFileOf(job: InstalledJob): string | undefined {
  return job.pingFile !== undefined && job.dir !== undefined && job.pingFile === ownPingFile(resolve(job.dir)) ? job.pingFile : undefined;
}

/** --ping: an http(s) URL with a host, checked at install. The value is not quoted back: its path holds the key. */
export function checkPingUrl(value: string): void {
  const problem = pingUrlProblem(value);
  if (problem) throw new StackvaultError(`--ping is not usable: ${problem}.`, ExitCode.usage);
}

/**
 * A warning when no container (running or not) of the project exists: a typo would fail every
 * run at 02:00 with exit 4. Only a warning: the stack may be down while the schedule is set up.
 */
async function projectWarning(engine: () => DockerEngine, project: string): Promise<string | undefined> {
  try {
    const containers = await engine().listContainers({ all: true });
    return projectMissing(containers, project);
  } catch (err) {
    return `could not ask Docker whether Compose project '${shown(project)}' exists (${err instanceof Error ? shown(err.message) : String(err)}); each run backs up only its containers.`;
  }
}

/** The warning for a --project no container carries, or undefined. */
export function projectMissing(containers: ReadonlyArray<Pick<ContainerSummary, 'labels'>>, project: string): string | undefined {
  if (containers.some((c) => c.labels[LABELS.composeProject] === project)) return undefined;
  return `no container of Compose project '${shown(project)}' exists now, so a run would find nothing to back up (exit 4) unless the stack is up by then: check the name.`;
}

/** Removes our entry, and the ping file install wrote for it (a user's own `--ping-file` stays). */
export async function uninstallSchedule(): Promise<{ removed: boolean; pingFileRemoved?: string }> {
  const current = await readCrontab();
  const kept = crontabWithoutOurs(current);
  const had = current.split('\n').some((l) => l.includes(CRON_MARKER));
  if (!had) return { removed: false };
  const entry = ourEntry(current);
  await writeCrontab(kept.length ? `${kept.join('\n')}\n` : '');
  const own = entry && ownPingFileOf(installedJob(entry));
  if (own === undefined) return { removed: true };
  await rm(own, { force: true });
  return { removed: true, pingFileRemoved: own };
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
  /** The backup directory the installed job writes to. */
  dir?: string;
  /** When the installed line was written (lines of older versions do not say). */
  installedAt?: string;
  /** Why cron cannot run the installed entry as written (an older version wrote it). */
  lineProblem?: string;
  cronRunning: boolean;
  lastRun?: RunState;
  /** Why the state file of the last run was not read (then the last run is unknown). */
  stateProblem?: string;
  lastSuccessful?: { id: string; createdAt: string };
  /** No run within two intervals of the last run, or of the install when there was none since. */
  overdue: boolean;
  /**
   * The last run is dated ahead of this clock (it was set back since): overdue, measured from it,
   * cannot be told until the next run (a schedule that stopped after a clock set back from 2031
   * was not overdue until 2031).
   */
  lastRunAhead?: boolean;
  /** The pings of the installed job: where they go (scheme and host only: the key is never shown). */
  ping?: SchedulerPing;
}

export interface SchedulerPing {
  /** `https://hc-ping.com/…`: scheme and host of the URL, when it can be read. */
  to?: string;
  /** The file the run reads the URL from. */
  file?: string;
  /** Why the run would send no pings (the file is missing, unreadable, empty or holds no URL). */
  problem?: string;
  /** An older version's line holds the URL itself, visible to every local user while it runs. */
  inLine?: boolean;
}

export async function schedulerStatus(dirOption: string, now = new Date()): Promise<SchedulerStatus> {
  const entry = ourEntry(await readCrontab());
  const cronRunning = (await execa('pgrep', ['-x', 'cron'], { reject: false })).exitCode === 0 || (await execa('pgrep', ['-x', 'crond'], { reject: false })).exitCode === 0;
  const dir = resolve(dirOption);
  const { lastRun, stateProblem } = await readState(dir);
  const catalog = await readCatalog(dir).catch(() => undefined);
  const good = catalog?.backups.find((b) => b.manifest.status === 'ok');
  const status: SchedulerStatus = {
    installed: Boolean(entry),
    cronRunning,
    lastRun,
    ...(stateProblem ? { stateProblem } : {}),
    lastSuccessful: good ? { id: good.manifest.id, createdAt: good.manifest.createdAt } : undefined,
    overdue: false,
    ...(lastRun && aheadOfClock(lastRun.at, now) ? { lastRunAhead: true } : {}),
  };
  if (entry) {
    const job = installedJob(entry);
    parseCron(job.expr);
    status.expr = job.expr;
    status.type = job.type;
    status.words = describeSchedule(job.expr);
    status.nextRun = nextRun(job.expr, now).toISOString();
    status.log = job.log;
    status.dir = job.dir;
    if (job.installedAt) status.installedAt = job.installedAt;
    if (job.problem) status.lineProblem = job.problem;
    if (job.pingFile !== undefined) {
      const read = await readPingFile(job.pingFile);
      status.ping = { file: job.pingFile, ...('url' in read ? { to: pingShown(read.url) } : { problem: read.problem }) };
    } else if (job.pingInLine !== undefined) status.ping = { to: job.pingInLine, inLine: true };
    // The runs recorded here are the schedule's only when it writes here.
    const here = job.dir === undefined || resolve(job.dir) === dir;
    status.overdue = here && !stateProblem && isOverdue(job.expr, now, lastRun?.at, job.installedAt);
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
  /** The URL given on the command line (`trigger --ping`, or the line of an older version). */
  ping?: string;
  /** The file that holds the URL (what an installed line names). */
  pingFile?: string;
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
  const url = await pingUrl(options, say);
  await ping(url, '/start', say);
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
      const removed = plan.remove.length ? (await executeRemoval(plan, 'scheduled prune')).removed : [];
      state.pruned = removed.map((r) => r.id);
      for (const r of removed) say(`${stamp()} retention removed ${r.id}: ${r.reason}`);
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
  await ping(url, state.result === 'ok' ? '' : '/fail', say);
  return state;
}

/**
 * Where this run pings, read once at its start: the file's URL, or the one on the command line
 * (with a warning: the key in it is in this process's argv, which every local user can list,
 * for as long as the run lasts). A ping file that cannot be used is one warning; the backup runs.
 */
async function pingUrl(options: Pick<ScheduledRunOptions, 'ping' | 'pingFile'>, say: (line: string) => void): Promise<string | undefined> {
  if (options.pingFile !== undefined) {
    const read = await readPingFile(options.pingFile);
    if ('url' in read) return read.url;
    say(`warning: ${read.problem}, so this run sends no pings; the backup runs all the same. See: ./bot.sh scheduler status`);
    return undefined;
  }
  if (options.ping !== undefined) {
    say(
      `warning: --ping puts the URL, and the check's key in it, on this run's command line, where every local user can see it (ps) while the run lasts; keep it in a file only you can read and give --ping-file instead (scheduler install --ping writes one).`,
    );
  }
  return options.ping;
}

async function ping(url: string | undefined, suffix: string, say: (line: string) => void): Promise<void> {
  if (url) await sendPing(url, suffix, say);
}

/** A repository address with a password in its user info (`rest:https://user:pass@host/`: the authority runs to the first /, its user info to its last @). */
export const repositoryHoldsPassword = (repository: string | undefined): boolean => repository !== undefined && /\/\/[^/:@\s]*:[^/\s]*@/.test(repository);
