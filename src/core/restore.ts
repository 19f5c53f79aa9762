import { availableParallelism, hostname } from 'node:os';
import { DEFAULT_COMPRESSION } from './artifact.js';
import { clause, errorMessage, ExitCode, integrityError, isEngineLost, notFound, StackvaultError, StoreRefusedError, usageError } from '../errors.js';
import { inspectIfPresent, withSecrets, withSignal, type ContainerDetails, type DockerEngine } from '../docker/engine.js';
import { labelledTrue } from '../docker/labels.js';
import type { Driver } from '../drivers/types.js';
import { mapLimit } from '../util/limit.js';
import { holdStake } from '../util/interrupt.js';
import { sleep } from '../util/time.js';
import { checkArtifact, checkArtifacts, openArtifact } from './artifact-check.js';
import { ArtifactStaging, type StagedArtifact } from './artifact-staging.js';
import { ensureBackupDir, restoreUse } from './backup-dir.js';
import { readCatalog, resolveBackup, type BackupRecord } from './catalog.js';
import { runBackup, type CreateResult } from './create.js';
import { discover } from './discovery.js';
import { acquireLock } from './lock.js';
import type { Manifest, ServiceEntry } from './manifest.js';
import type { ProgressSink } from './progress.js';
import { NotReadyError, waitReady } from './readiness.js';
import { redactNet, secretsOf } from './redact.js';
import { clearRestoreMarker, halfRestoredWarnings, leftHalfRestored, putBackCommand, type RestoreMarker, writeRestoreMarker } from './restore-journal.js';
import { excludedNamed, excludedSentence, isExcluded, isOneOff, LABELS, selectDriver, type Candidate } from './selection.js';
import { markedContainers, withStopped, type DowntimeFacts, type StopOptions } from './stopped-markers.js';
import { inThrowaway } from './verify.js';
import { afterKilledRuns } from './killed-runs.js';
import { ContentMismatchError, fingerprintAt, firstDifference, type Fingerprint } from '../drivers/fingerprint.js';
import type { Readable } from 'node:stream';

export interface RestoreOptions {
  dir: string;
  id: string;
  only?: string[];
  parallel: number;
  /** age identity file for encrypted backups. */
  identity?: string;
  /** Compare each restored store's content with the backup's fingerprint (default true). */
  check?: boolean;
  /** Seconds a stopped container gets before Docker kills it; default its own stop timeout. */
  stopTimeout?: number;
  /**
   * Restore into the same services of another Compose project (a clone for a drill), leaving
   * the backed-up project alone: no stop, no restore point, nothing written there.
   */
  intoProject?: string;
  /** Service -> container (name or id) to restore that service into, whatever its project. */
  map?: Record<string, string>;
}

export interface RestorePlanItem {
  service: string;
  driver: string;
  container: string;
  bytes: number;
}

export interface RestorePlan {
  backup: Manifest;
  items: RestorePlanItem[];
  /**
   * Services of a partial backup that it does not hold (failed or skipped when it was made),
   * when the whole backup is restored: their data stays as it is, and the plan says so.
   */
  notInBackup: Array<{ service: string; status: string; error?: string }>;
}

export interface RestoreDeps {
  engine: DockerEngine;
  drivers: readonly Driver[];
  progress: ProgressSink;
  signal: AbortSignal;
  /** Shown the plan once every check passed; resolves false to stop before anything changes. */
  confirm(plan: RestorePlan): Promise<boolean>;
}

/** `interrupted`: Ctrl-C came before its restore started; nothing of it changed. */
export type RestoreStatus = 'restored' | 'rolled-back' | 'failed' | 'interrupted';

export interface ServiceRestoreResult {
  service: string;
  container: string;
  status: RestoreStatus;
  error?: string;
  /** The content check: 'equal', 'not checked' (and why), or set with `mismatch`. */
  check?: string;
  /** The first difference between the backup and what came back, when there was one. */
  mismatch?: string;
  durationMs: number;
  /** How long its container was stopped, in all (restore and any rollback). */
  downtimeMs?: number;
  /** e.g. the container had to be killed when it was stopped. */
  warnings?: string[];
  /** The Docker engine stopped answering, so neither the restore nor its rollback could finish. */
  engineLost?: true;
}

export interface RestoreResult {
  backupId: string;
  restorePointId: string;
  services: ServiceRestoreResult[];
  /** App containers stopped while the stores were restored (started again afterwards). */
  stoppedApps?: string[];
  /** Ctrl-C/SIGTERM came during the restore (the command exits 130). */
  interrupted?: boolean;
  /** Containers stopped for the restore that could not be started again (the engine gone). */
  leftStopped?: string[];
}

interface Target {
  entry: ServiceEntry;
  candidate: Candidate;
  driver: Driver;
  /** How its container is stopped (timeout) and where the stop's facts go. */
  stop?: StopOptions;
  /** What the driver's checkRestore learned of the container, handed back to its restore. */
  checked?: unknown;
  /** The artifact's private copy, for a driver that stages it: its check and its restore read it. */
  staged?: StagedArtifact;
  /**
   * What checkRestore said of the restore point (and the copy it read, for a driver that stages
   * it), before anything changed: handed to the rollback, which must not ask a container the
   * failed restore changed again.
   */
  pointChecked?: unknown;
  pointStaged?: StagedArtifact;
  /** Its container's secrets (core/redact.ts), once read. */
  secrets?: string[];
  /** Its healthcheck's word when the restore began: one that said unhealthy then is not waited on to say healthy. */
  healthBefore?: string;
}

/**
 * The restore's deps for one target: its engine hides the target container's secrets in what
 * comes back from it as foreign text (util/redact.ts), so our own messages stay as they are.
 */
async function targetDeps(t: Target, deps: RestoreDeps): Promise<RestoreDeps> {
  t.secrets ??= secretsOf(await deps.engine.inspect(t.candidate.container.id), t.driver);
  return { ...deps, engine: withSecrets(deps.engine, t.secrets) };
}

/**
 * Restores services from a backup so their data equals it. In order, and stopping at the
 * first problem before anything changes: the backup exists, every selected artifact matches
 * its checksum and opens cleanly, every target container exists; then the user confirms; then
 * a restore point of the same services is taken, and must pass the same checks (else nothing
 * is restored). A service whose restore fails is put back from the restore point. Containers
 * stopped on the way are always started again.
 */
export async function restoreBackup(options: RestoreOptions, deps: RestoreDeps): Promise<RestoreResult> {
  const catalog = await readCatalog(options.dir);
  const backup = resolveBackup(catalog, options.id);
  const entries = selectEntries(backup.manifest, options.only);
  const unknown = entries.find((e) => !deps.drivers.some((d) => d.name === e.driver));
  if (unknown) {
    throw integrityError(
      `Service '${unknown.name}' in ${backup.manifest.id} uses driver '${unknown.driver}', which this stackvault does not know; nothing was changed.`,
      'A newer stackvault may have written this backup.',
    );
  }
  await checkArtifacts(backup.path, entries, options.identity, deps.drivers);
  const dir = await ensureBackupDir(options.dir, restoreUse(options.dir));
  await deps.engine.version();
  const release = await acquireLock(dir, `backup restore ${backup.manifest.id}`);
  const staging = new ArtifactStaging(dir);
  try {
    const { stillStopped } = await afterKilledRuns(dir, deps.engine, (m) => deps.progress.warn(m));
    if (stillStopped) throw new StackvaultError(stillStopped, ExitCode.failure, 'Start them first; a restore needs the current state for its restore point.');
    const targets = await findTargets(entries, deps, options);
    for (const t of targets.filter((x) => x.healthBefore === 'unhealthy')) {
      deps.progress.warn(
        `${t.entry.name}: the healthcheck of ${t.candidate.container.name} says unhealthy before the restore, so afterwards it is judged ready when ${t.driver.name} answers, not by that healthcheck.`,
      );
    }
    await mapLimit(targets, availableParallelism(), async (t) => {
      if (t.driver.stageArtifact) t.staged = await staging.stage(backup.path, t.entry, deps.signal);
      await checkTarget(t, backup.path, options.identity, deps, options.check !== false);
    });
    const plan: RestorePlan = {
      backup: backup.manifest,
      items: targets.map((t) => ({ service: t.entry.name, driver: t.driver.name, container: t.candidate.container.name, bytes: t.entry.bytes ?? 0 })),
      notInBackup: options.only ? [] : backup.manifest.services.filter((s) => s.status !== 'ok').map((s) => ({ service: s.name, status: s.status, ...(s.error ? { error: s.error } : {}) })),
    };
    if (!(await deps.confirm(plan))) throw new StackvaultError('Restore cancelled; nothing was changed.', ExitCode.aborted);

    deps.progress.info('Taking a restore point of the current state first...');
    const point = await runBackup(
      dir,
      {
        dir,
        type: 'restore-point',
        comment: `before restoring ${backup.manifest.id}`,
        // By container name: service keys can change while other projects come and go.
        only: targets.map((t) => (t.candidate.container.engine ? `${t.candidate.container.name}@${t.candidate.container.engine}` : t.candidate.container.name)),
        // Projects where only app containers run count too.
        alsoProjects: targets.map((t) => t.candidate.project).filter((p): p is string => Boolean(p)),
        parallel: options.parallel,
        compress: DEFAULT_COMPRESSION,
        prefix: 'restore-point',
        // Its fingerprints (4-8 s of CPU on a 1 GB stack, beside the restore's own reading) are
        // only needed if it is put back, and are then computed from its artifacts.
        recordFingerprints: false,
        stopTimeout: options.stopTimeout,
        // The current data is as sensitive as the backup's: encrypt it to the same recipients.
        encryptTo: [...new Set(entries.flatMap((e) => e.encryption?.recipients ?? []))],
      },
      deps,
    );
    const missing = targets.filter((t) => pointEntryOf(point, t)?.status !== 'ok');
    if (missing.length) {
      // The reason is said here: the point's own lines are not shown (restore prints its own
      // results), and a store whose data is not there yet (an app on a new volume that has not
      // created its SQLite file) gave no warning at all.
      const why = missing.map((t) => `${t.entry.name} (container ${t.candidate.container.name}: ${pointEntryOf(point, t)?.error ?? 'no reason recorded'})`);
      const others = targets.filter((t) => !missing.includes(t)).map((t) => t.entry.name);
      throw new StackvaultError(
        `The restore point ${point.manifest.id} could not capture ${why.join('; ')}, so nothing was restored.`,
        ExitCode.failure,
        `Fix that and try again (a store must run and hold its data, e.g. an app must have created its database files)${others.length ? `, or restore the others alone with --only ${others.join(',')}` : ''}.`,
      );
    }
    // A restore that fails is put back from the point: it must pass the checks the backup passed
    // (a store's own live data can hold what they refuse: a symlink out of its path, a setuid file).
    await mapLimit(targets, availableParallelism(), (t) => checkPoint(t, point, options.identity, staging, deps));
    const how: RestoreHow = { dir, identity: options.identity, check: options.check !== false, staging };
    const restoreAll = (list: Target[]) =>
      mapLimit(list, options.parallel, async (t) => {
        const stops: DowntimeFacts[] = [];
        const result = await restoreOne({ ...t, stop: { timeoutSeconds: options.stopTimeout, purpose: 'restore', onDone: (f) => stops.push(f) } }, backup, point, how, deps);
        const warnings = stops.flatMap((s) => s.warnings);
        return { ...result, ...(stops.length ? { downtimeMs: stops.reduce((n, s) => n + s.downtimeMs, 0) } : {}), ...(warnings.length ? { warnings } : {}) };
      });
    // Apps that write to the stores are stopped while they are restored (their writes would
    // land between the restore and its check), the stores first, the apps' own data last.
    const writers = await writersOf(targets, deps);
    if (writers.length) deps.progress.info(`Stopping ${writers.map((w) => w.name).join(', ')} while the data is restored, so nothing writes meanwhile; they start again afterwards.`);
    const isStore = (t: Target) => Boolean(t.driver.recognise);
    const services = await withEachStopped(writers, dir, options.stopTimeout, deps, async () => [
      ...(await restoreAll(targets.filter(isStore))),
      ...(await restoreAll(targets.filter((t) => !isStore(t)))),
    ]);
    services.sort((a, b) => a.service.localeCompare(b.service)); // reported by name, whatever the order of work
    // Under the lock, and with none left before (refused above): every marker now is this run's.
    const leftStopped = await markedContainers(dir);
    return {
      backupId: backup.manifest.id,
      restorePointId: point.manifest.id,
      services,
      ...(writers.length ? { stoppedApps: writers.map((w) => w.name) } : {}),
      ...(deps.signal.aborted ? { interrupted: true } : {}),
      ...(leftStopped.length ? { leftStopped } : {}),
    };
  } catch (err) {
    // The engine gone: the results of the services are lost with the error, so it names what
    // is left (stopped containers, half-restored stores) and how to finish, as create does.
    if (isEngineLost(err)) {
      const stopped = await markedContainers(dir).catch(() => [] as string[]);
      const half = await leftHalfRestored(dir, undefined, { clear: false }).catch(() => []);
      if (stopped.length || half.length) {
        const parts = [
          ...(stopped.length ? [`These containers were stopped and could not be started again: ${stopped.join(', ')}. When Docker is back: docker start ${stopped.join(' ')}.`] : []),
          ...halfRestoredWarnings(dir, half),
        ];
        throw new StackvaultError(`${err.message} The restore was abandoned.`, ExitCode.dockerUnreachable, parts.join(' '));
      }
    }
    throw err;
  } finally {
    await staging.remove();
    await release();
  }
}

function selectEntries(manifest: Manifest, only: string[] | undefined): ServiceEntry[] {
  if (!only) {
    const ok = manifest.services.filter((s) => s.status === 'ok');
    if (ok.length === 0) throw notFound(`Backup ${manifest.id} holds no successfully backed-up service.`);
    return ok;
  }
  return only.map((name) => {
    const entry = manifest.services.find((s) => s.name === name);
    if (!entry) throw notFound(`Backup ${manifest.id} has no service '${name}'.`, `It has: ${manifest.services.map((s) => s.name).join(', ')}.`);
    if (entry.status !== 'ok') throw usageError(`Service '${name}' was not backed up in ${manifest.id} (${entry.status}: ${entry.error ?? 'no reason recorded'}).`);
    return entry;
  });
}

/**
 * The container for each backed-up service: the one --map names; with --into-project, the same
 * Compose service of that project; else the same project and service, else the same name.
 */
async function findTargets(entries: ServiceEntry[], deps: RestoreDeps, options: Pick<RestoreOptions, 'intoProject' | 'map'> = {}): Promise<Target[]> {
  // The backed-up projects (and the clone) count whole, even where only app containers run.
  const alsoProjects = [...entries.map((e) => e.project), options.intoProject].filter((p): p is string => Boolean(p));
  const { running, notRunning, excluded } = await discover(deps.engine, deps.drivers, { alsoProjects, warn: (m) => deps.progress.warn(m) });
  const all = [...running, ...notRunning];
  const unknown = Object.keys(options.map ?? {}).filter((s) => !entries.some((e) => e.name === s));
  if (unknown.length) throw usageError(`--map names ${unknown.map((u) => `'${u}'`).join(', ')}, not a service being restored.`, `Services: ${entries.map((e) => e.name).join(', ')}.`);
  const composeService = (c: Candidate) => c.container.labels[LABELS.composeService];
  const sameService = (c: Candidate, entry: ServiceEntry) => composeService(c) === entry.name || (entry.project !== undefined && `${entry.project}-${composeService(c)}` === entry.name);
  const elsewhere = (entry: ServiceEntry): Target | undefined => {
    const mapped = options.map?.[entry.name];
    if (mapped === undefined && options.intoProject === undefined) return undefined;
    // --map: an exact name, name@engine, or at least 12 characters of an id; more than one match is refused.
    const named = (c: Candidate) =>
      mapped !== undefined && (c.container.name === mapped || `${c.container.name}@${c.container.engine}` === mapped || (mapped.length >= 12 && c.container.id.startsWith(mapped)));
    const matches = all.filter((c) => c.driver.name === entry.driver && (mapped !== undefined ? named(c) : c.project === options.intoProject && sameService(c, entry)));
    if (matches.length > 1) {
      throw usageError(
        `${mapped !== undefined ? `--map ${entry.name}=${mapped}` : `Project '${options.intoProject}'`} matches ${matches.length} containers (${matches.map((c) => (c.container.engine ? `${c.container.name}@${c.container.engine}` : c.container.name)).join(', ')}).`,
        'Name one: NAME@ENGINE, or a longer id.',
      );
    }
    const match = matches[0];
    if (!match) {
      throw notFound(
        mapped !== undefined
          ? `No ${entry.driver} container '${mapped}' to restore '${entry.name}' into (--map).`
          : `Project '${options.intoProject}' has no ${entry.driver} service '${entry.name}' to restore into.`,
        mapped !== undefined ? 'See docker ps.' : `Start the clone first, e.g. docker compose -p ${options.intoProject} up -d (with the same compose file), then restore.`,
      );
    }
    if (entry.project !== undefined && match.project === entry.project && mapped === undefined) {
      throw usageError(`--into-project ${options.intoProject} is the backed-up project itself.`, 'Leave out --into-project to restore it in place.');
    }
    return { entry, candidate: match, driver: match.driver };
  };
  // For the sentence when a service's container is missing: is its stack up at all?
  const runningProjects = new Set((await deps.engine.listContainers({ all: false })).map((c) => c.labels[LABELS.composeProject]).filter((p): p is string => Boolean(p)));
  const targets = entries.map((entry): Target => {
    const other = elsewhere(entry);
    if (other) return other;
    // Back to the engine it came from, when the backup names one (--host).
    if (entry.engine && !deps.engine.engineNames.includes(entry.engine)) {
      throw usageError(
        `Service '${entry.name}' was backed up from the Docker engine '${entry.engine}', which is not among the engines given (${deps.engine.engineNames.join(', ')}).`,
        `Name it as at backup time: --host ${entry.engine}=URL (or set STACKVAULT_HOSTS).`,
      );
    }
    const sameDriver = all.filter((c) => c.driver.name === entry.driver && (!entry.engine || c.container.engine === entry.engine));
    const composeService = (c: Candidate) => c.container.labels[LABELS.composeService];
    const match =
      sameDriver.find((c) => c.project === entry.project && (c.service === entry.name || composeService(c) === entry.name)) ??
      sameDriver.find((c) => c.container.name === entry.container) ??
      // Never into another project's container because its service has the same name: a backup of
      // one stack's `cache` would replace another's (--map or --into-project say so on purpose).
      (sameDriver.filter((c) => c.service === entry.name && c.project === entry.project).length === 1 ? sameDriver.find((c) => c.service === entry.name && c.project === entry.project) : undefined);
    if (!match) {
      // Its container is there, but labelled stackvault.exclude=true: say so, not "start the stack".
      const left = excluded.find((e) => e.project === entry.project && excludedNamed([e], entry.name)) ?? excluded.find((e) => e.name === entry.container);
      if (left)
        throw notFound(`Nothing is restored into ${excludedSentence(left)}.`, `Remove the label (recreate the container without it), or name another container with --map ${entry.name}=CONTAINER.`);
      throw notFound(
        `No ${entry.driver} container to restore '${entry.name}' into (it was container ${entry.container}${entry.project ? ` in project ${entry.project}` : ''}).`,
        whereItMayRun(entry, entries, sameDriver, runningProjects) ?? 'Start the stack first (./bot.sh start), then restore.',
      );
    }
    return { entry, candidate: match, driver: match.driver };
  });
  for (const t of targets) await refuseUnlessRunning(t, deps, all);
  return targets;
}

/**
 * Where a backed-up service may run now that its own container is not found, as a hint, never
 * acted on (the user names the container with --into-project or --map). Its own project still
 * runs: the service was renamed (another container of the same driver there) or removed. Else
 * the stack may run under another project name (a moved directory, `-p`).
 */
function whereItMayRun(entry: ServiceEntry, entries: readonly ServiceEntry[], sameDriver: readonly Candidate[], runningProjects: ReadonlySet<string>): string | undefined {
  if (entry.project !== undefined && runningProjects.has(entry.project)) {
    const names = sameDriver
      .filter((c) => c.container.state === 'running' && c.project === entry.project)
      .map((c) => c.container.name)
      .sort();
    if (names.length)
      return `Project ${entry.project} now runs ${entry.driver} in ${names.join(', ')}: if the service was renamed, name its container with --map ${entry.name}=${names[0]} (or leave the service out with --only).`;
    const others = entries.filter((e) => e !== entry).map((e) => e.name);
    return `Project ${entry.project} runs, without it: if the service was removed, ${others.length ? `restore the others with --only ${others.join(',')}` : 'there is nothing of this backup to restore into it'}, or name a container for it with --map ${entry.name}=CONTAINER.`;
  }
  return underAnotherName(entry, sameDriver);
}

/** The projects that run the same Compose service with the same driver: the stack under another project name? */
function underAnotherName(entry: ServiceEntry, sameDriver: readonly Candidate[]): string | undefined {
  const composeService = (c: Candidate) => c.container.labels[LABELS.composeService];
  const asBefore = (c: Candidate) => composeService(c) === entry.name || (entry.project !== undefined && `${entry.project}-${composeService(c)}` === entry.name);
  const running = sameDriver.filter((c) => c.container.state === 'running' && c.project !== undefined && c.project !== entry.project && asBefore(c));
  const projects = [...new Set(running.map((c) => c.project!))].sort();
  const service = running.length ? composeService(running[0]!) : undefined;
  if (projects.length === 1) return `Project ${projects[0]} has a ${entry.driver} service '${service}': if the stack now runs under that name, restore into it with --into-project ${projects[0]}.`;
  if (projects.length > 1)
    return `Projects ${projects.join(', ')} have a ${entry.driver} service '${service}': if the stack now runs under one of those names, restore into it with --into-project NAME.`;
  return undefined;
}

/**
 * A restore needs its container running: its current data becomes the restore point first, and
 * the checks and the restore run commands in it. A stopped, paused or restarting container is
 * refused here, before anything changes, with the command that brings it back. Its health is
 * kept: a container already unhealthy is not waited on to turn healthy after the restore.
 */
async function refuseUnlessRunning(t: Target, deps: RestoreDeps, all: readonly Candidate[]): Promise<void> {
  const c = await deps.engine.inspect(t.candidate.container.id);
  t.healthBefore = c.health;
  if (c.running && !c.paused && c.state === 'running') return;
  const state = c.paused ? 'paused' : c.state;
  const how =
    state === 'paused'
      ? `Unpause it (docker unpause ${c.name}), then restore again.`
      : state === 'restarting'
        ? `It keeps restarting: see docker logs ${c.name}, fix what stops it, then restore again.`
        : `Start it (docker start ${c.name}), then restore again.`;
  const sameDriver = all.filter((x) => x.driver.name === t.entry.driver && x.container.id !== c.id);
  const elsewhere = t.candidate.project === t.entry.project ? underAnotherName(t.entry, sameDriver) : undefined;
  throw new StackvaultError(
    `Nothing was restored: the container ${c.name} of ${t.entry.name} is ${state}, and a restore needs it running (its current data is taken as the restore point first).`,
    ExitCode.failure,
    elsewhere ? `${how} Or: ${elsewhere.charAt(0).toLowerCase()}${elsewhere.slice(1)}` : how,
  );
}

/**
 * Running containers of the restored Compose projects that are not datastore servers: the
 * apps (those whose own data is restored too), which would write while their stores are
 * replaced. Their own data is restored last, while they are still stopped.
 */
async function writersOf(targets: Target[], deps: RestoreDeps): Promise<ContainerDetails[]> {
  const projects = new Set(targets.map((t) => t.candidate.project).filter((p): p is string => Boolean(p)));
  if (projects.size === 0) return [];
  const running = (await deps.engine.listContainers({ all: false })).filter(
    (c) => projects.has(c.labels[LABELS.composeProject] ?? '') && !isExcluded(c) && !labelledTrue(c, LABELS.helper) && !isOneOff(c),
  );
  const writers: ContainerDetails[] = [];
  for (const c of running) {
    const details = await inspectIfPresent(deps.engine, c.id);
    if (!details) continue; // removed since the listing: nothing to stop
    // Paused by its user (one an interrupted run left paused was unpaused before): it writes
    // nothing, and stopping and starting it would leave it running, not paused as it was.
    if (details.paused) continue;
    // A server is a store; everything else (app containers, restored ones too) is an app.
    if (!selectDriver(details, deps.drivers)?.recognise) writers.push(details);
  }
  return writers.sort((a, b) => a.name.localeCompare(b.name));
}

/** Runs `work` with every container stopped (each with its marker), and starts them all again on every path. */
function withEachStopped<T>(containers: ContainerDetails[], dir: string, timeoutSeconds: number | undefined, deps: RestoreDeps, work: () => Promise<T>): Promise<T> {
  const [first, ...rest] = containers;
  if (!first) return work();
  const service = first.labels[LABELS.composeService] ?? first.name;
  return withStopped(deps.engine, dir, { id: first.id, name: first.name, service }, () => withEachStopped(rest, dir, timeoutSeconds, deps, work), { timeoutSeconds, purpose: 'restore' });
}

/** The driver's own refusals (hostile paths, files not of this container), before anything changes. */
async function checkTarget(t: Target, backupPath: string, identity: string | undefined, deps: RestoreDeps, check: boolean): Promise<void> {
  if (!t.driver.checkRestore) return;
  try {
    const { engine } = await targetDeps(t, deps);
    t.checked = await t.driver.checkRestore({
      engine,
      container: await engine.inspect(t.candidate.container.id),
      entry: t.entry,
      open: () => openArtifact(backupPath, t.entry, identity, t.staged),
      check,
    });
  } catch (err) {
    if (err instanceof StackvaultError) throw err;
    if (err instanceof StoreRefusedError) {
      throw new StackvaultError(
        `${t.candidate.container.name} refuses requests now, so the backup of ${t.entry.name} was not restored: ${clause(err.message)}. Nothing was changed.`,
        ExitCode.failure,
        'Run the restore again once it answers.',
      );
    }
    throw integrityError(`The backup of ${t.entry.name} cannot be restored into ${t.candidate.container.name}: ${clause((err as Error).message)}. Nothing was changed.`);
  }
}

/**
 * The restore point of a target must be one a rollback can put back: the artifact check and the
 * driver's checkRestore, as for the backup, before anything changes. What checkRestore judged
 * (e.g. which paths are data) is kept for the rollback.
 */
async function checkPoint(t: Target, point: CreateResult, identity: string | undefined, staging: ArtifactStaging, deps: RestoreDeps): Promise<void> {
  const entry = pointEntryOf(point, t)!;
  try {
    if (t.driver.stageArtifact) t.pointStaged = await staging.stage(point.path, entry, deps.signal);
    // The driver's check first: its refusal names what in the data it refuses most plainly.
    if (t.driver.checkRestore) {
      const { engine } = await targetDeps(t, deps);
      t.pointChecked = await t.driver.checkRestore({
        engine,
        container: await engine.inspect(t.candidate.container.id),
        entry,
        open: () => openArtifact(point.path, entry, identity, t.pointStaged),
      });
    }
    await checkArtifact(point.path, entry, identity, t.driver);
  } catch (err) {
    if (err instanceof StackvaultError && err.exitCode !== ExitCode.integrity) throw err;
    if (deps.signal.aborted) throw new StackvaultError(`Restore interrupted while its restore point ${point.manifest.id} was checked; nothing was restored.`, ExitCode.interrupted);
    const message = (err as Error).message.replace(/[;,.]? *refusing to (restore|use it)\.?$/, '').replace(/\.$/, '');
    const why = message.charAt(0).toLowerCase() + message.slice(1);
    throw integrityError(
      `Nothing was restored: the restore point ${point.manifest.id} of ${t.entry.name} could not be put back if the restore failed, because a restore refuses what its live data holds: ${why}.`,
      `Remove or move that from ${t.candidate.container.name}'s data (a restore refuses it in any backup; backup create warns of it), then restore again.`,
    );
  }
}

/** The restore point's entry for a target: the same container. */
const pointEntryOf = (point: CreateResult, t: Target) => point.manifest.services.find((s) => s.containerId === t.candidate.container.id);

interface RestoreHow {
  dir: string;
  identity?: string;
  check: boolean;
  /** Where a staging driver's artifact is copied (the restore point's too, when it is put back). */
  staging: ArtifactStaging;
}

/**
 * On Ctrl-C: a service not started yet is left alone; one whose data was restored stays
 * restored (its container is started, not waited for); one interrupted in the middle is put
 * back from the restore point, which the first interrupt does not stop (a second says so; only a
 * third exits, naming the store and the command that puts it back).
 * A restore whose content differs from the backup is put back from the restore point too.
 */
async function restoreOne(t: Target, backup: BackupRecord, point: CreateResult, how: RestoreHow, deps: RestoreDeps): Promise<ServiceRestoreResult> {
  const started = Date.now();
  const name = t.entry.name;
  const container = t.candidate.container.name;
  if (deps.signal.aborted) return { service: name, container, status: 'interrupted', error: 'interrupted before its restore started; nothing of it was changed', durationMs: 0 };
  deps.progress.serviceStarted(name, `restoring (${t.driver.name})`);
  let secrets: string[] = [];
  let own = deps;
  const progress = { dataRestored: false };
  const pointEntry = pointEntryOf(point, t)!;
  // Before the store is touched: a run that dies from here on leaves it half restored, and the
  // next run must say so (core/restore-journal.ts); a forced exit (a third Ctrl-C) says so too.
  const marker: RestoreMarker = {
    containerId: t.candidate.container.id,
    container,
    service: name,
    backupId: backup.manifest.id,
    restorePointId: point.manifest.id,
    restorePointService: pointEntry.name,
    since: new Date().toISOString(),
    pid: process.pid,
    host: hostname(),
    phase: 'restoring',
  };
  const finish = putBackCommand(marker);
  const halfDone = `${name} (container ${container}) may hold neither the backup's data nor what it held before: put it back with ${finish}`;
  let stake = holdStake(`putting ${name} back on the restore point ${point.manifest.id} if its restore does not finish`, halfDone);
  try {
    try {
      await writeRestoreMarker(how.dir, marker);
    } catch (err) {
      return {
        service: name,
        container,
        status: 'failed',
        error: `nothing of it was changed: its restore could not be recorded in ${how.dir} first (${errorMessage(err)})`,
        durationMs: Date.now() - started,
      };
    }
    try {
      own = await targetDeps(t, deps);
      secrets = t.secrets ?? [];
      const check = await restoreFrom(t, backup.path, t.entry, { checked: t.checked, staged: t.staged }, how, own, deps.signal, progress, () => stake.release());
      await clearRestoreMarker(how.dir, marker.containerId);
      return { service: name, container, status: 'restored', check, durationMs: Date.now() - started };
    } catch (err) {
      if (deps.signal.aborted && progress.dataRestored) {
        // Only the wait for readiness (or the content check) was cut short: the data is the backup's. Keep it.
        await deps.engine.start(t.candidate.container.id).catch(() => undefined);
        await clearRestoreMarker(how.dir, marker.containerId);
        return { service: name, container, status: 'restored', check: 'not checked (interrupted)', durationMs: Date.now() - started };
      }
      const why = deps.signal.aborted ? 'interrupted' : clause(redactNet((err as Error).message ?? String(err), secrets));
      const mismatch = err instanceof ContentMismatchError ? redactNet(err.difference, secrets) : undefined;
      deps.progress.warn(`${name}: restore ${deps.signal.aborted ? 'interrupted' : `failed (${why})`}; putting back the restore point ${point.manifest.id}.`);
      stake.release();
      stake = holdStake(`putting ${name} back on the restore point ${point.manifest.id}`, halfDone);
      await writeRestoreMarker(how.dir, { ...marker, phase: 'putting back' }).catch(() => undefined); // the 'restoring' one says enough
      // After an interrupt the rollback itself must not be cut off: it runs without the signal.
      const signal = deps.signal.aborted ? new AbortController().signal : deps.signal;
      try {
        await restoreFrom(t, point.path, pointEntry, { checked: t.pointChecked, staged: t.pointStaged }, how, own, signal);
        await clearRestoreMarker(how.dir, marker.containerId);
        return { service: name, container, status: 'rolled-back', error: why, ...(mismatch ? { mismatch } : {}), durationMs: Date.now() - started };
      } catch (rollbackErr) {
        // The marker stays: until the store is put back, the next runs say so.
        await writeRestoreMarker(how.dir, { ...marker, phase: 'failed' }).catch(() => undefined);
        const again = redactNet((rollbackErr as Error).message ?? String(rollbackErr), secrets);
        return {
          service: name,
          container,
          status: 'failed',
          error: `${why}; putting back the restore point also failed: ${clause(again)}. Its data may be neither the backup's nor what it held before: put it back with ${finish}`,
          ...(mismatch ? { mismatch } : {}),
          ...([err, rollbackErr].some(isEngineLost) ? { engineLost: true as const } : {}),
          durationMs: Date.now() - started,
        };
      }
    }
  } finally {
    stake.release();
  }
}

/** Restores one artifact into the target and, unless told not to, proves its content came back. */
async function restoreFrom(
  t: Target,
  backupPath: string,
  entry: ServiceEntry,
  /** What checkRestore judged of this artifact before anything changed, and the copy it read. */
  prepared: { checked: unknown; staged?: StagedArtifact },
  how: RestoreHow,
  deps: RestoreDeps,
  signal: AbortSignal,
  progress: { dataRestored: boolean } = { dataRestored: false },
  /** Called once the data is the backup's: nothing is left half done from then on. */
  dataIn: () => void = () => undefined,
): Promise<string> {
  const id = t.candidate.container.id;
  const container = await deps.engine.inspect(id);
  // The copy checkRestore read (the backup's, or the restore point's, staged when it was checked).
  const staged = t.driver.stageArtifact ? (prepared.staged ?? (await how.staging.stage(backupPath, entry, signal))) : undefined;
  const open = () => openArtifact(backupPath, entry, how.identity, staged);
  // The backup's fingerprint (when it was not recorded) is read while the restore runs, not
  // before it: a throwaway server's takes as long as the restore. A driver whose reading would
  // slow the restore while the store is down waits for storeRunning. If it cannot be read, the
  // restore is put back like any failed one.
  let storeUp!: () => void;
  const storeRunning = new Promise<void>((resolve) => {
    storeUp = resolve;
  });
  // With this call's signal: a rollback after Ctrl-C runs without the run's (aborted) one, and
  // its content check read the restore point's side with it, failed at once ("interrupted"),
  // and reported a rollback that had put the data back as failed.
  const expecting = how.check ? backupFingerprint(t.driver, entry, open, how.dir, { ...deps, signal }, container, storeRunning) : Promise.resolve(undefined);
  expecting.catch(() => undefined); // awaited on every path below, after storeUp()
  let observed: Fingerprint | undefined | void;
  try {
    observed = await t.driver.restore({
      // The signal reaches every exec and archive upload: an interrupt kills them.
      engine: withSignal(deps.engine, signal),
      container,
      entry,
      open,
      signal,
      withStopped: (work) => withStopped(deps.engine, how.dir, { id, name: container.name, service: t.candidate.service }, work, t.stop),
      log: (m) => deps.progress.info(`${entry.name}: ${m}`),
      checked: prepared.checked,
    });
  } catch (err) {
    // Whatever happened (the container may have been killed), bring it fully up before
    // anything else runs in it, such as putting the restore point back.
    await ensureUp(t, deps, signal.aborted ? new AbortController().signal : signal).catch(() => undefined);
    storeUp();
    await expecting.catch(() => undefined);
    throw err;
  }
  progress.dataRestored = true;
  dataIn();
  try {
    await ensureUp(t, deps, signal);
  } catch (err) {
    storeUp();
    await expecting.catch(() => undefined);
    throw err;
  }
  storeUp();
  if (!how.check) return 'not checked (--no-check)';
  const live = t.driver.liveFingerprint;
  if (!(observed || live)) {
    await expecting.catch(() => undefined);
    return `not checked (the ${t.driver.name} driver has no content fingerprint)`;
  }
  // The store is read back while the backup's side may still be computed; both settle first.
  // (A recorded fingerprint is there at once, and gives the shape to read in, e.g. column order.)
  const reading = observed ? Promise.resolve(observed) : deps.engine.inspect(id).then((c) => live!({ engine: deps.engine, container: c, entry, expected: entry.fingerprint, signal }));
  const [want, got] = await Promise.allSettled([expecting, reading]);
  // Said as what failed: the data went in, but its proof could not be made (a throwaway that
  // would not start, a server that would not answer), which is not the restore's own error.
  const unproven = (side: string, reason: unknown) => (signal.aborted ? reason : new Error(`the content check could not read ${side}: ${errorMessage(reason)}`));
  if (want.status === 'rejected') throw unproven("the backup's side", want.reason);
  if (got.status === 'rejected') throw unproven('the restored data', got.reason);
  if (!want.value) return `not checked (the ${t.driver.name} driver has no content fingerprint)`;
  // Both as they must hold now: a store's content may change by itself (keys expire).
  const now = new Date();
  const expected = fingerprintAt(t.driver, want.value, now, got.value) ?? want.value;
  const actual = fingerprintAt(t.driver, got.value, now, want.value) ?? got.value;
  const difference = firstDifference(expected, actual);
  if (difference) throw new ContentMismatchError(difference);
  return 'equal';
}

/**
 * The backup's fingerprint: from the manifest, else (not recorded, or no longer comparable)
 * computed now from the artifact, and said so.
 */
async function backupFingerprint(
  driver: Driver,
  entry: ServiceEntry,
  open: () => Readable,
  dir: string,
  deps: RestoreDeps,
  target: ContainerDetails,
  storeRunning: Promise<void>,
): Promise<Fingerprint | undefined> {
  if (fingerprintAt(driver, entry.fingerprint, new Date())) return entry.fingerprint;
  if (!driver.artifactFingerprint) return undefined;
  const started = Date.now();
  const fp = await driver.artifactFingerprint({
    engine: deps.engine,
    entry,
    open,
    signal: deps.signal,
    storeRunning,
    target,
    // The throwaway runs the target's own image, not whatever image a manifest names.
    inThrowaway: (spec, check) => inThrowaway(deps, driver, { ...entry, image: target.image }, open, dir, spec, check),
  });
  // Not recorded is the usual case, not a fault: a backup records only what is cheap to read while
  // it runs; a restore point records none of its own; `verify --deep` records the rest.
  const why = entry.fingerprint ? 'the recorded one is of an older kind that cannot be compared any more' : 'the backup did not record one; `backup verify --deep` records it';
  deps.progress.info(`${entry.name}: computed the backup's content fingerprint from its artifact in ${((Date.now() - started) / 1000).toFixed(1)} s (${why}).`);
  return fp;
}

/**
 * Started and answering: a restore that left its container down is not done. Tries a few
 * times, because a container that was just killed can still look running for a moment; not
 * after a wait that ran out, which would only wait as long again. A container whose healthcheck
 * said unhealthy before the restore (an app it checks is down, a check that never passes) is
 * judged by the driver's own probe: waiting for that healthcheck timed out both the restore and
 * its rollback (18 minutes) and then called a rollback that had worked failed.
 */
async function ensureUp(t: Target, deps: RestoreDeps, signal: AbortSignal): Promise<void> {
  const id = t.candidate.container.id;
  for (let attempt = 1; ; attempt++) {
    try {
      if (!(await deps.engine.inspect(id)).running) await deps.engine.start(id);
      await waitReady(deps.engine, id, t.driver, signal, undefined, { healthcheck: t.healthBefore !== 'unhealthy' });
      return;
    } catch (err) {
      if (attempt >= 3 || signal.aborted || err instanceof NotReadyError) throw err;
      await sleep(1000, signal);
    }
  }
}
