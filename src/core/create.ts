import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { type ContainerDetails, inspectIfPresent, withSecrets, withSignal, type DockerEngine } from '../docker/engine.js';
import { changedDuring } from './changed-during.js';
import type { BackupContext, BackupOutcome, Driver, Peer } from '../drivers/types.js';
import { clause, ExitCode, isEngineLost, StackvaultError, storageError, usageError } from '../errors.js';
import { TOOL_NAME, TOOL_VERSION } from '../version.js';
import { mapLimit } from '../util/limit.js';
import { TarChecker } from '../util/tar-stream.js';
import { checkRecipient } from '../util/age.js';
import { fsyncPath } from '../util/fsync.js';
import { COMPRESSION_EXTENSION, writeArtifact, type Compression } from './artifact.js';
import { describeFsError, ensureBackupDir, isStorageFailure, TMP_PREFIX } from './backup-dir.js';
import { renderBackupInfo } from './backup-info.js';
import { ConsistencyWindow, consistentByPolicy, semaphore, type WindowSlot, writersOf } from './consistency.js';
import { discover, type DiscoveryOptions } from './discovery.js';
import { acquireLock } from './lock.js';
import { removeTree } from '../util/safe-remove.js';
import { firstBadServiceName, INFO_FILE, MANIFEST_FILE, SCHEMA_VERSION, succeeded, type BackupType, type Manifest, type ServiceEntry } from './manifest.js';
import { isValidPrefix, namedLater, newBackupId, safeFileStem } from './naming.js';
import type { ProgressSink } from './progress.js';
import { redactNet, secretsOf } from './redact.js';
import type { Candidate } from './selection.js';
import { afterKilledRuns } from './killed-runs.js';
import { putBackCommand } from './restore-journal.js';
import { QuietWhileDown } from './quiet-while-down.js';
import { markedContainers, withPaused, withStopped, type DowntimeFacts } from './stopped-markers.js';
import { formatDate } from '../util/format.js';

export interface CreateOptions extends DiscoveryOptions {
  dir: string;
  type: BackupType;
  comment: string;
  parallel: number;
  compress: Compression;
  prefix: string;
  /** How long to wait for another run's lock (scheduled runs wait; interactive ones fail fast). */
  lockWaitMs?: number;
  /** age recipients: artifacts are encrypted while they stream. */
  encryptTo?: string[];
  /** Seconds a stopped container gets before Docker kills it; default its own stop timeout. */
  stopTimeout?: number;
  /**
   * One snapshot point for every store (issue #14): the project's writers are paused for a
   * short window in which each store fixes its point; the bulk streams afterwards. Also on
   * when a container of the project is labelled stackvault.consistent=true.
   */
  consistent?: boolean;
  /**
   * false: the drivers leave the content fingerprints out (restore points: each would only be
   * needed to put one back, and is then computed from its artifact). Default true.
   */
  recordFingerprints?: boolean;
  /**
   * Containers a restore left half done (core/restore-journal.ts), with why: their data is not
   * backed up as if it were whole. Set by `backup create`, never for a restore point (which
   * must capture the current state, whatever it is, so that a restore can finish the job).
   */
  halfRestored?: ReadonlyMap<string, string>;
}

export interface CreateDeps {
  engine: DockerEngine;
  drivers: readonly Driver[];
  progress: ProgressSink;
  signal: AbortSignal;
  now?: () => Date;
}

export interface CreateResult {
  manifest: Manifest;
  path: string;
}

/**
 * Backs up every discovered datastore in parallel into a temporary directory, then publishes
 * it with one rename once every artifact, the manifest and backup_info.txt are written and
 * fsynced. A backup in which nothing succeeded is removed, never published.
 */
export async function createBackup(options: CreateOptions, deps: CreateDeps): Promise<CreateResult> {
  if (!isValidPrefix(options.prefix)) throw usageError(`--prefix '${options.prefix}' must be letters, digits and dashes.`);
  if (!Number.isInteger(options.parallel) || options.parallel < 1) throw usageError('--parallel must be a whole number of at least 1.');
  if (options.stopTimeout !== undefined && !(Number.isInteger(options.stopTimeout) && options.stopTimeout >= 0)) throw usageError('--stop-timeout must be a whole number of seconds.');
  for (const r of options.encryptTo ?? []) await checkRecipient(r);
  const dir = await ensureBackupDir(options.dir);
  await deps.engine.version(); // fails early and clearly when Docker is down
  const release = await acquireLock(dir, `backup create --type ${options.type}`, options.lockWaitMs ?? 0);
  try {
    return await createBackupHoldingLock(dir, options, deps);
  } finally {
    await release();
  }
}

/**
 * createBackup for a caller that already holds the lock on `dir` (`update`, whose backup, pull
 * and restart are one run, so that a second update or a backup cannot come in between).
 */
export async function createBackupHoldingLock(dir: string, options: CreateOptions, deps: CreateDeps): Promise<CreateResult> {
  const { stillStopped, halfRestored: half } = await afterKilledRuns(dir, deps.engine, (m) => deps.progress.warn(m));
  if (stillStopped) deps.progress.warn(stillStopped);
  const halfRestored = new Map(
    half.map((m) => [
      m.containerId,
      `a restore of ${m.backupId} into it did not finish, so its data may be half restored; put it back with ${putBackCommand(m)} or restore ${m.backupId} again (see the warning above)`,
    ]),
  );
  return await runBackup(dir, { ...options, halfRestored }, deps);
}

/** The backup itself, for callers that already hold the lock on `dir` (restore points). */
export async function runBackup(dir: string, options: CreateOptions, deps: CreateDeps): Promise<CreateResult> {
  const now = deps.now ?? (() => new Date());
  const docker = await deps.engine.version();
  const found = await discover(deps.engine, deps.drivers, { ...options, warn: (m) => deps.progress.warn(m) });
  // The manifest reader refuses a name used twice: fail now, in one sentence, rather than publish a backup nothing can read.
  const named = [...found.running, ...found.notRunning, ...found.unreadable];
  const keys = named.map((c) => c.service);
  const clash = firstBadServiceName(keys);
  if (clash !== undefined) {
    const twins = named.filter((c) => c.service === keys[clash]).map((c) => c.container.name);
    throw new StackvaultError(`Two services would be named '${keys[clash]}' in the manifest (containers ${twins.join(', ')}), so nothing was backed up.`, ExitCode.failure);
  }
  const createdAt = now();
  // Every name is taken, not only directories: a file or symlink of the id's name (planted, or
  // a backup moved away and linked back) made the final rename fail after all the work; a
  // leftover `.tmp-<id>` of a run killed in this second made its mkdir fail.
  const names = await readdir(dir);
  const id = newBackupId(options.prefix, createdAt, new Set([...names, ...names.filter((n) => n.startsWith(TMP_PREFIX)).map((n) => n.slice(TMP_PREFIX.length))]));
  const later = namedLater(names, id);
  if (later) {
    // This clock is behind a backup here: "latest", the list's order and retention's ages go by
    // these dates, so the user must know that this backup is not the one they will call newest.
    deps.progress.warn(
      `This clock (${formatDate(createdAt)}) is behind the time in the name of ${later} (this host's clock was set back since, or that backup came from a host whose clock runs ahead): backups are ordered by those times, so restore this one by its ID, ${id}.`,
    );
  }
  const tmp = join(dir, `${TMP_PREFIX}${id}`);
  await mkdir(tmp, { mode: 0o700 });
  try {
    const names = artifactNames(found.running, options.compress, Boolean(options.encryptTo?.length));
    const window = options.consistent || consistentByPolicy(found) ? new ConsistencyWindow(found.running.length, deps.engine, dir, writersOf(found, deps.drivers)) : undefined;
    if (window && window.writers.length === 0) deps.progress.warn('--consistent: no app container runs in the project, so nothing is paused; the stores still fix their points together.');
    // In a consistent backup every service gets ready at once (the window waits for them all);
    // their streams after the window keep to --parallel.
    const consistency = window ? { window, streaming: semaphore(options.parallel) } : undefined;
    const quiet = window ? undefined : new QuietWhileDown({ signal: deps.signal });
    const entries = await mapLimit(found.running, window ? found.running.length : options.parallel, (c, i) =>
      backupService(c, join(tmp, names[i]!), names[i]!, options, deps, { dir, quiet }, found.peers(c.container.id), consistency && { ...consistency, slot: consistency.window.slot() }),
    );
    if (window) {
      await window.closed;
      if (window.unpauseError) {
        const names = window.writers.map((w) => w.name).join(' ');
        deps.progress.warn(
          `The consistency window could not unpause every writer (${window.unpauseError instanceof Error ? window.unpauseError.message : String(window.unpauseError)}); check with: docker unpause ${names}`,
        );
      }
    }
    const skipped = [
      ...found.notRunning.map((c): ServiceEntry => ({ ...identity(c), status: 'skipped', error: `container is ${c.container.state}, not running`, durationMs: 0 })),
      ...found.unreadable.map((c): ServiceEntry => ({ ...identity(c), status: 'skipped', error: `its labels cannot be read: ${c.why}`, durationMs: 0 })),
    ];
    for (const s of skipped) deps.progress.serviceDone(s);
    if (deps.signal.aborted) throw interrupted(deps.signal, options.type);
    const services = [...entries, ...skipped].sort((a, b) => a.name.localeCompare(b.name));
    const ok = services.filter((s) => s.status === 'ok').length;
    if (ok === 0) {
      throw new StackvaultError(`No service could be backed up, so no backup was kept: ${services.map((s) => `${s.name}: ${clause(s.error)}`).join('; ')}.`, ExitCode.failure);
    }
    const manifest: Manifest = {
      schemaVersion: SCHEMA_VERSION,
      id,
      createdAt: createdAt.toISOString(),
      completedAt: now().toISOString(),
      type: options.type,
      comment: options.comment,
      status: succeeded({ services }) ? 'ok' : 'partial',
      tool: { name: TOOL_NAME, version: TOOL_VERSION },
      docker: { version: docker.version, apiVersion: docker.apiVersion },
      ...(docker.engines ? { engines: docker.engines } : {}),
      host: hostname(),
      services,
      ...(found.leftOut.length ? { leftOut: found.leftOut } : {}),
      ...(window?.record() ? { consistency: window.record() } : {}),
    };
    await publish(dir, tmp, manifest);
    return { manifest, path: join(dir, id) };
  } catch (err) {
    await removeTree(tmp);
    if (isStorageFailure(err)) throw storageError(`Writing the backup to ${dir} failed: ${describeFsError(err)}. Nothing was kept.`);
    if (isEngineLost(err)) {
      const stopped = await markedContainers(dir);
      throw new StackvaultError(
        `${err.message} The backup was abandoned and nothing was kept.`,
        ExitCode.dockerUnreachable,
        stopped.length ? `These containers were stopped for their copy and could not be started again: ${stopped.join(', ')}. When Docker is back: docker start ${stopped.join(' ')}` : err.hint,
      );
    }
    throw err;
  }
}

function identity(c: Candidate) {
  return {
    name: c.service,
    container: c.container.name,
    containerId: c.container.id,
    image: c.container.image,
    driver: c.driver.name,
    project: c.project,
    ...(c.container.engine ? { engine: c.container.engine } : {}),
  };
}

/** One file per service, `<service>.<sql|tar>[.gz|.zst]`, unique even when names sanitise alike. */
function artifactNames(candidates: Candidate[], compression: Compression, encrypted: boolean): string[] {
  const used = new Set<string>();
  const ext = (c: Candidate) => `.${c.driver.format}${COMPRESSION_EXTENSION[compression]}${encrypted ? '.age' : ''}`;
  return candidates.map((c) => {
    const stem = safeFileStem(c.service);
    let name = `${stem}${ext(c)}`;
    for (let n = 2; used.has(name); n++) name = `${stem}-${n}${ext(c)}`;
    used.add(name);
    return name;
  });
}

/** A service's part in a consistent backup: its slot in the window, and the streaming limit after it. */
interface ConsistentPart {
  window: ConsistencyWindow;
  slot: WindowSlot;
  streaming: <T>(work: () => Promise<T>) => Promise<T>;
}

async function backupService(
  c: Candidate,
  file: string,
  artifact: string,
  options: CreateOptions,
  deps: CreateDeps,
  { dir, quiet }: { dir: string; quiet: QuietWhileDown | undefined },
  peers: Peer[],
  consistent?: ConsistentPart,
): Promise<ServiceEntry> {
  const started = Date.now();
  deps.progress.serviceStarted(c.service, `backing up (${c.driver.name})`);
  let secrets: string[] = [];
  // Every stop or pause of this service: how long it was down, and whether it had to be killed.
  const stops: DowntimeFacts[] = [];
  const downtime = () => downtimeFields(stops, (m) => redactNet(m, secrets));
  // Raw bytes a driver stages (a pre-copy) live next to the artifact, never in the backup.
  const scratchDir = options.encryptTo?.length ? undefined : `${file}.scratch`;
  let before: ContainerDetails | undefined;
  let stoppedByUs = false;
  try {
    if (scratchDir) await mkdir(scratchDir, { mode: 0o700 });
    if (deps.signal.aborted) throw interrupted(deps.signal);
    // Inside the try: a consistent backup's window waits for every slot to be done.
    const half = options.halfRestored?.get(c.container.id);
    if (half !== undefined) throw new Error(half);
    const container = await deps.engine.inspect(c.container.id);
    before = container;
    secrets = secretsOf(container, c.driver);
    // Everything of this service's work goes through an engine that hides its secrets in what
    // comes back as foreign text (util/redact.ts): our own messages are then left as they are.
    const engine = withSecrets(deps.engine, secrets);
    const target = { id: c.container.id, name: c.container.name, service: c.service };
    const whileDown = async <T>(hold: () => Promise<T>): Promise<T> => {
      if (!quiet) return hold();
      // Nothing is stopped after Ctrl-C (quiet ends with the run's signal).
      if (!(await quiet.goDown(c.container.id))) throw interrupted(deps.signal);
      try {
        return await hold();
      } finally {
        quiet.leave(c.container.id);
      }
    };
    let outcome: Awaited<ReturnType<Driver['backup']>> = {};
    const checker = c.driver.format === 'tar' ? new TarChecker() : undefined;
    const written = await writeArtifact(
      file,
      options.compress,
      async (raw) => {
        const ctx: BackupContext = {
          // An interrupt kills what runs in the container and cuts archive transfers.
          engine: withSignal(engine, deps.signal),
          container,
          peers,
          output: raw,
          signal: deps.signal,
          withStopped: (work) => {
            stoppedByUs = true;
            return whileDown(() => withStopped(engine, dir, target, work, { timeoutSeconds: options.stopTimeout, purpose: 'backup', onDone: (f) => stops.push(f) }));
          },
          // A writer the consistency window holds paused is not paused again.
          withPaused: (work) => (consistent?.window.holdsPaused(target.id) ? work() : whileDown(() => withPaused(engine, dir, target, work, { onDone: (f) => stops.push(f) }))),
          scratchDir,
          recordFingerprint: options.recordFingerprints !== false,
          restorePoint: options.type === 'restore-point',
          log: (m) => deps.progress.info(`${c.service}: ${redactNet(m, secrets)}`),
        };
        outcome = consistent ? await consistentBackup(c, ctx, consistent) : await c.driver.backup(ctx);
      },
      { onRawBytes: (n) => deps.progress.serviceBytes(c.service, n), inspectRaw: checker, signal: deps.signal, encryptTo: options.encryptTo, gate: () => quiet?.wait(c.container.id) },
    );
    if (written.rawBytes === 0) throw new Error('the backup produced no data');
    // An app container that is one of the window's writers was down for the window too.
    const held = consistent?.window.pausedFor(target.id);
    if (held !== undefined) stops.push({ downtimeMs: held, warnings: [] });
    const down = downtime();
    const warnings = [...(outcome.warnings ?? []).map((w) => redactNet(w, secrets)), ...(down.warnings ?? [])];
    const entry: ServiceEntry = {
      ...identity(c),
      status: 'ok',
      artifact,
      format: c.driver.format,
      compression: options.compress,
      bytes: written.bytes,
      rawBytes: written.rawBytes,
      sha256: written.sha256,
      durationMs: Date.now() - started,
      ...(options.encryptTo?.length ? { encryption: { tool: 'age' as const, recipients: options.encryptTo } } : {}),
      ...(outcome.hot ? { hot: true } : {}),
      ...down,
      ...(warnings.length ? { warnings } : {}),
      ...(outcome.restoreRefuses !== undefined ? { restoreRefuses: redactNet(outcome.restoreRefuses, secrets) } : {}),
      ...(outcome.details ? { details: outcome.details } : {}),
      ...(checker ? { archive: { entries: checker.entries, files: checker.files } } : {}),
      ...(outcome.skipped?.length ? { skipped: outcome.skipped } : {}),
      ...(outcome.fingerprint ? { fingerprint: outcome.fingerprint } : {}),
    };
    deps.progress.serviceDone(entry);
    return entry;
  } catch (err) {
    await rm(file, { force: true });
    // The disk or the engine is the problem, not this service: stop the whole run.
    if (isStorageFailure(err)) throw err;
    if (isEngineLost(err)) throw err;
    const message = redactNet(err instanceof Error ? err.message : String(err), secrets);
    const changed = deps.signal.aborted || !before ? undefined : await changedDuring((id) => inspectIfPresent(deps.engine, id), before, stoppedByUs);
    const reason = deps.signal.aborted ? 'interrupted' : changed ? `${changed}, which broke off its copy: ${message}` : message;
    const entry: ServiceEntry = { ...identity(c), status: 'failed', error: reason, durationMs: Date.now() - started, ...downtime() };
    deps.progress.serviceDone(entry);
    return entry;
  } finally {
    consistent?.slot.done();
    if (scratchDir) await rm(scratchDir, { recursive: true, force: true });
  }
}

/**
 * One service of a consistent backup: its snapshot point is set up, fixed inside the window
 * and streamed after it. A driver with no quick point is copied whole inside the window.
 */
async function consistentBackup(c: Candidate, ctx: BackupContext, { window, slot, streaming }: ConsistentPart): Promise<BackupOutcome> {
  if (!c.driver.prepareSnapshot) {
    await slot.enter();
    window.copiedWhole(c.service);
    try {
      return await c.driver.backup(ctx);
    } finally {
      slot.leave();
    }
  }
  const snapshot = await c.driver.prepareSnapshot(ctx);
  try {
    await slot.enter();
    try {
      await snapshot.fix();
    } finally {
      slot.leave();
    }
    await slot.closed;
    snapshot.afterWindow?.();
    return await streaming(() => snapshot.backup(ctx.output));
  } finally {
    await snapshot.release();
  }
}

/** The manifest's downtime fields for a service's stops and pauses (none when it never stopped). */
function downtimeFields(stops: DowntimeFacts[], clean: (message: string) => string): Pick<ServiceEntry, 'downtimeMs' | 'stopTimeoutSeconds' | 'warnings'> {
  if (stops.length === 0) return {};
  const warnings = stops.flatMap((s) => s.warnings).map(clean);
  const timeout = stops.find((s) => s.stopTimeoutSeconds !== undefined)?.stopTimeoutSeconds;
  return {
    downtimeMs: stops.reduce((t, s) => t + s.downtimeMs, 0),
    ...(timeout !== undefined ? { stopTimeoutSeconds: timeout } : {}),
    ...(warnings.length ? { warnings } : {}),
  };
}

async function publish(dir: string, tmp: string, manifest: Manifest): Promise<void> {
  const files: Array<[string, string]> = [
    [MANIFEST_FILE, `${JSON.stringify(manifest, null, 2)}\n`],
    [INFO_FILE, renderBackupInfo(manifest)],
  ];
  for (const [name, text] of files) {
    await writeFile(join(tmp, name), text, { mode: 0o600 });
    await fsyncPath(join(tmp, name));
  }
  await fsyncPath(tmp);
  await rename(tmp, join(dir, manifest.id));
  await fsyncPath(dir);
}

function interrupted(signal: AbortSignal, type?: BackupType): StackvaultError {
  const reason = signal.reason instanceof Error ? signal.reason.message : 'interrupted';
  // A restore's own restore point: the user ran a restore, and nothing of it has changed yet.
  if (type === 'restore-point')
    return new StackvaultError(`Restore ${reason} while its restore point was taken; nothing was restored and every stopped container was started again.`, ExitCode.interrupted);
  return new StackvaultError(`Backup ${reason}; nothing was kept and every stopped container was started again.`, ExitCode.interrupted);
}
