import { hostname } from 'node:os';
import { anyMarkerFile, clearMarkerFile, readMarkerFiles, writeMarkerFile } from './marker-dir.js';
import { type ContainerDetails, inspectIfPresent, type DockerEngine } from '../docker/engine.js';
import { isEngineLost } from '../errors.js';
import { holdStake, type StakeHandle } from '../util/interrupt.js';
import { rawMessage } from '../util/redact.js';

/**
 * Before stackvault stops or pauses a container it writes a marker (fsynced); it removes it
 * after starting or unpausing the container again. If the process is killed outright (SIGKILL,
 * power loss) the markers remain, and the next run or `backup list` reports which containers to
 * start. The next create or restore (which hold the lock, so the killed run is gone) unpauses a
 * container left paused, and starts one left stopped by a backup or a restart, whose data the
 * run only read; one left stopped by a restore holds data half replaced, so it is only named.
 */
const MARKER_DIR = '.stackvault-stopped';

/** Docker's stop timeout for a container that sets none (Compose: stop_grace_period). */
export const DOCKER_DEFAULT_STOP_TIMEOUT = 10;

export interface StoppedMarker {
  containerId: string;
  container: string;
  service: string;
  since: string;
  pid: number;
  host?: string;
  /** Absent in markers written by older versions, which only stopped containers. */
  kind?: 'stopped' | 'paused';
  /** What the stop was for; absent in older markers (and then never started by the next run). */
  purpose?: StopPurpose;
  /**
   * The container's State.StartedAt when it was stopped: if it differs later, someone started
   * it since (the engine's own clock on both sides, so a remote engine's skew does not matter).
   */
  startedAt?: string;
}

/**
 * `backup` and `restart` leave the container's data as it was, so the next run may start it
 * again; `restore` may have replaced part of it, so only the user decides.
 */
export type StopPurpose = 'backup' | 'restart' | 'restore';
const STARTABLE: ReadonlySet<StopPurpose | undefined> = new Set(['backup', 'restart']);

/** What stopping or pausing cost a service, told once its container runs again. */
export interface DowntimeFacts {
  /** From the stop (or pause) request until the container runs again. */
  downtimeMs: number;
  /** The stop timeout used: --stop-timeout, else the container's own, else Docker's 10 s. */
  stopTimeoutSeconds?: number;
  /** e.g. the container did not exit in time and was killed. */
  warnings: string[];
}

export interface StopOptions {
  /** Seconds between the stop signal and Docker's kill; default the container's own timeout. */
  timeoutSeconds?: number;
  onDone?: (facts: DowntimeFacts) => void;
  /**
   * False for a throwaway of our own: a killed run's throwaway is removed by the next run, not
   * started by the user, so it needs no marker (nor a writable backup directory to hold one).
   */
  marker?: boolean;
  /** Recorded in the marker: whether a killed run's next run may start the container again. */
  purpose?: StopPurpose;
}

/** Written and fsynced before the container is touched (marker-dir.ts). */
export const writeMarker = (dir: string, marker: StoppedMarker): Promise<void> => writeMarkerFile(dir, MARKER_DIR, marker);

type Target = { id: string; name: string; service: string };

/** This process's marker for `target`. */
const markerOf = (target: Target, kind: 'stopped' | 'paused', since: string, more: Pick<StoppedMarker, 'purpose' | 'startedAt'> = {}): StoppedMarker => ({
  containerId: target.id,
  container: target.name,
  service: target.service,
  since,
  pid: process.pid,
  host: hostname(),
  kind,
  ...more,
});

/**
 * Writes markers with their stakes already held, so that no moment is without one (a second
 * Ctrl-C then says what is being finished); when the write fails nothing is stopped, and the
 * stakes go.
 */
async function markHolding(stakes: readonly StakeHandle[], write: () => Promise<unknown>): Promise<void> {
  try {
    await write();
  } catch (err) {
    for (const stake of stakes) stake.release();
    throw err;
  }
}

export const clearMarker = (dir: string, containerId: string): Promise<void> => clearMarkerFile(dir, MARKER_DIR, containerId);

/** Every marker on disk (unreadable ones are skipped). */
const readMarkers = (dir: string): Promise<StoppedMarker[]> => readMarkerFiles(dir, MARKER_DIR, (m): m is StoppedMarker => typeof m === 'object' && m !== null);

/** Whether any marker is there at all (read without asking Docker). */
export const anyStoppedMarker = (dir: string): Promise<boolean> => anyMarkerFile(dir, MARKER_DIR);

/** Containers named by markers, read without asking Docker (for when Docker is the problem). */
export async function markedContainers(dir: string): Promise<string[]> {
  return (await readMarkers(dir)).map((m) => m.container);
}

/** What the next run does with a killed run's marker, given its container's state now. */
export type LeftoverAction = 'unpause' | 'start' | 'name' | 'clear';

/**
 * The policy for a marker left by a killed run, as seen by a run holding the lock: a container
 * that runs again, is gone, or was started by someone since (and stopped again: then it is
 * theirs to start) needs nothing; one left paused is unpaused; one left stopped is started only
 * when the stop was for a backup or a restart, and otherwise named for the user.
 */
export function leftoverAction(marker: StoppedMarker, state: Pick<ContainerDetails, 'running' | 'paused' | 'startedAt'> | undefined): LeftoverAction {
  if (state === undefined) return 'clear';
  if (marker.kind === 'paused') return state.paused ? 'unpause' : 'clear';
  const startedSince = marker.startedAt !== undefined && state.startedAt !== marker.startedAt;
  if (state.running || startedSince) return 'clear';
  return STARTABLE.has(marker.purpose) ? 'start' : 'name';
}

/** Markers whose container is still as the killed run left it (the rest are cleared), with what to do. */
async function leftovers(dir: string, engine: DockerEngine): Promise<Array<{ marker: StoppedMarker; action: Exclude<LeftoverAction, 'clear'> }>> {
  const left = [];
  for (const marker of await readMarkers(dir)) {
    const action = leftoverAction(marker, await inspectIfPresent(engine, marker.containerId));
    if (action === 'clear') await clearMarker(dir, marker.containerId);
    else left.push({ marker, action });
  }
  return left;
}

/** Markers whose container is still stopped (or paused) as the killed run left it; the others are cleared. */
export async function leftStopped(dir: string, engine: DockerEngine): Promise<StoppedMarker[]> {
  return (await leftovers(dir, engine)).map((l) => l.marker);
}

/**
 * For runs that hold the lock (so the run that left them is gone): unpauses containers an
 * interrupted run left paused and starts those it left stopped for a backup or a restart, and
 * says so. Returns the markers that remain (containers a restore left stopped, or older markers
 * that do not say why).
 */
export async function resumeLeftByKilledRun(dir: string, engine: DockerEngine, say: (message: string) => void): Promise<StoppedMarker[]> {
  const remain: StoppedMarker[] = [];
  for (const { marker: m, action } of await leftovers(dir, engine)) {
    if (action === 'name') {
      remain.push(m);
      continue;
    }
    if (action === 'unpause') await engine.unpause(m.containerId);
    else {
      try {
        await engine.start(m.containerId);
      } catch (err) {
        // One that will not start (a bind's source gone, its port taken) is named, as before
        // this run started such containers: it must not fail this run and every one after it.
        if (isEngineLost(err)) throw err;
        say(`An interrupted stackvault run (pid ${m.pid}) had left ${m.container} stopped since ${m.since}; starting it again failed: ${(err as Error).message}`);
        remain.push(m);
        continue;
      }
    }
    await clearMarker(dir, m.containerId);
    const why = action === 'unpause' ? 'paused' : `stopped for its ${m.purpose === 'backup' ? 'backup copy' : 'restart'}`;
    say(`An interrupted stackvault run (pid ${m.pid}) had left ${m.container} ${why} since ${m.since}; it was ${action === 'unpause' ? 'unpaused' : 'started again'}.`);
  }
  return remain;
}

export function leftStoppedWarning(markers: StoppedMarker[]): string | undefined {
  const sentence = (list: StoppedMarker[], did: string, undo: string, command: string) => {
    if (list.length === 0) return [];
    const names = list.map((m) => m.container);
    const them = list.length > 1 ? 'them' : 'it';
    return [
      `An interrupted stackvault run (pid ${list[0]!.pid}) ${did} ${names.join(', ')} and could not ${undo} ${them} again. ${command[0]!.toUpperCase()}${command.slice(1)} ${them} with: docker ${command} ${names.join(' ')}`,
    ];
  };
  const text = [
    ...sentence(
      markers.filter((m) => m.kind !== 'paused'),
      'stopped',
      'start',
      'start',
    ),
    ...sentence(
      markers.filter((m) => m.kind === 'paused'),
      'paused',
      'unpause',
      'unpause',
    ),
  ].join('\n');
  return text || undefined;
}

/**
 * Stops a container for `work` and starts it again on every path, including errors and Ctrl-C.
 * The stop gives the container its own stop timeout (Compose stop_grace_period; Docker's 10 s
 * when unset) unless `timeoutSeconds` says otherwise; a container that had to be killed is
 * reported as a warning, and the downtime is measured until it runs again.
 */
export async function withStopped<T>(engine: DockerEngine, dir: string, target: Target, work: () => Promise<T>, options: StopOptions = {}): Promise<T> {
  // Looked up before the marker (a failure here stops nothing) and before the stop: the store serves until it is sent its stop signal.
  const before = await engine.inspect(target.id);
  const timeout = options.timeoutSeconds ?? before.stopTimeout ?? DOCKER_DEFAULT_STOP_TIMEOUT;
  const marked = options.marker !== false;
  // A throwaway (no marker) is removed by the next run; a store must not be left down by a
  // second Ctrl-C.
  const stake = marked ? holdStake(`starting ${target.name} again`, `${target.name} is stopped: start it with docker start ${target.name}`) : undefined;
  if (stake) {
    const more = { ...(options.purpose ? { purpose: options.purpose } : {}), ...(before.startedAt ? { startedAt: before.startedAt } : {}) };
    await markHolding([stake], () => writeMarker(dir, markerOf(target, 'stopped', new Date().toISOString(), more)));
  }
  const began = Date.now();
  const facts: DowntimeFacts = { downtimeMs: 0, warnings: [] };
  let stopped: Promise<Omit<DowntimeFacts, 'downtimeMs'>> | undefined;
  let stopLost = false;
  try {
    await engine.stop(target.id, timeout).catch((err: unknown) => {
      stopLost = true;
      throw err;
    });
    // How it stopped is read while the work already runs: the store is down either way. Not
    // knowing it is no reason to fail, so it never rejects.
    stopped = stopFacts(engine, target, timeout, Date.now() - began).catch(() => ({ stopTimeoutSeconds: timeout, warnings: [] }));
    return await work();
  } finally {
    // Also when the work failed: a store that had to be killed is what explains it.
    try {
      if (stopped) Object.assign(facts, await stopped);
      // A stop whose answer was lost (its connection cut) goes on in the engine: a start now
      // finds the container still running, is taken for done, and the stop then ends it.
      if (stopLost) await untilStopped(engine, target.id, timeout);
      // Docker finishes a start it was asked for even if we exit now.
      stake?.leaves(`${target.name} was being started again: if docker ps does not list it, start it with docker start ${target.name}`);
      await engine.start(target.id);
    } finally {
      stake?.release();
    }
    facts.downtimeMs = Date.now() - began;
    if (marked) await clearMarker(dir, target.id);
    options.onDone?.(facts);
  }
}

/**
 * Pauses a container (cgroup freezer) for `work` and unpauses it on every path, with a marker
 * like a stop's, so a run killed meanwhile is noticed and the container unpaused next time.
 */
export async function withPaused<T>(engine: DockerEngine, dir: string, target: Target, work: () => Promise<T>, options: Pick<StopOptions, 'onDone'> = {}): Promise<T> {
  const stake = holdStake(`unpausing ${target.name}`, pausedLeft(target.name));
  await markHolding([stake], () => writeMarker(dir, markerOf(target, 'paused', new Date().toISOString())));
  const began = Date.now();
  let paused = false;
  try {
    await pauseRetrying(engine, target.id);
    paused = true;
    return await work();
  } finally {
    try {
      await engine.unpause(target.id);
    } catch (err) {
      // When the pause itself failed the container is not paused, unless Docker went away.
      // biome-ignore lint/correctness/noUnsafeFinally: an unpause that failed must be reported, not hidden by the work's result
      if (paused || isEngineLost(err)) throw err;
    } finally {
      stake.release();
    }
    await clearMarker(dir, target.id);
    if (paused) options.onDone?.({ downtimeMs: Date.now() - began, warnings: [] });
  }
}

/** Waits until the container no longer runs, or its stop timeout (and a margin) has passed, or the engine does not answer. */
async function untilStopped(engine: DockerEngine, id: string, timeoutSeconds: number): Promise<void> {
  const until = Date.now() + (timeoutSeconds + 5) * 1000;
  while (Date.now() < until) {
    const state = await inspectIfPresent(engine, id).catch(() => undefined);
    if (!state?.running) return;
    await new Promise((r) => setTimeout(r, 200));
  }
}

const pausedLeft = (name: string) => `${name} is paused (frozen): unpause it with docker unpause ${name}`;

/** Whether Docker had to kill the container (or the kernel did) when it was stopped, `took` ms after the signal. */
async function stopFacts(engine: DockerEngine, target: { id: string; name: string }, timeout: number, took: number): Promise<Omit<DowntimeFacts, 'downtimeMs'>> {
  const after = await engine.inspect(target.id);
  const warnings: string[] = [];
  const secs = (took / 1000).toFixed(1);
  if (after.oomKilled) {
    warnings.push(`${target.name} was killed by the kernel for lack of memory while it stopped (after ${secs} s); its data may not have been written out cleanly`);
  } else if (after.exitCode === 137 || took >= timeout * 1000) {
    warnings.push(
      `${target.name} was killed after ${secs} s: it did not exit on its stop signal within its ${timeout} s stop timeout (exit code ${after.exitCode}), so its data may not have been written out cleanly; give it more time with stop_grace_period or --stop-timeout`,
    );
  }
  return { stopTimeoutSeconds: timeout, warnings };
}

/**
 * The cgroup freezer gives up ("unable to freeze") when a process stays in uninterruptible
 * I/O while it tries (seen under heavy disk load): runc then leaves the container running, so
 * asking again shortly after is safe.
 */
async function pauseRetrying(engine: DockerEngine, id: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await engine.pause(id);
    } catch (err) {
      if (attempt >= 4 || !/unable to freeze/i.test(rawMessage(err))) throw err;
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  }
}

/**
 * Pauses several containers at once for a consistent backup's window, each with its marker
 * written (and fsynced) first, as `withPaused` does for one. If any pause fails, those already
 * paused are unpaused and the error is thrown. Returns the unpause of them all, which tries
 * every container and then throws the first failure; a container it could not unpause keeps
 * its marker, so the next run unpauses it.
 */
export async function pauseAll(
  engine: DockerEngine,
  dir: string,
  targets: ReadonlyArray<Target>,
  /** Told when the first pause is asked for and when the last unpause has answered (markers are written before, and cleared after). */
  clock: { pausing?(): void; running?(): void } = {},
): Promise<() => Promise<void>> {
  const since = new Date().toISOString();
  const stakes = targets.map((t) => holdStake(`unpausing ${t.name}`, pausedLeft(t.name)));
  await markHolding(stakes, () => Promise.all(targets.map((t) => writeMarker(dir, markerOf(t, 'paused', since)))));
  const paused: string[] = [];
  const unpause = async () => {
    const results = await Promise.allSettled(paused.map((id) => engine.unpause(id)));
    for (const stake of stakes) stake.release();
    clock.running?.();
    const cleared = await Promise.allSettled(paused.filter((_, i) => results[i]!.status === 'fulfilled').map((id) => clearMarker(dir, id)));
    const failed = [...results, ...cleared].find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  };
  clock.pausing?.();
  const results = await Promise.allSettled(
    targets.map(async (t) => {
      await pauseRetrying(engine, t.id);
      paused.push(t.id);
    }),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await unpause().catch(() => undefined);
    await Promise.all(targets.filter((t) => !paused.includes(t.id)).map((t) => clearMarker(dir, t.id)));
    throw failed.reason;
  }
  return unpause;
}
