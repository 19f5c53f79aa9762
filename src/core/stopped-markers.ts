import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DockerEngine } from '../docker/engine.js';

/**
 * Before stackvault stops a container it writes a marker; it removes it after starting the
 * container again. If the process is killed outright (SIGKILL, power loss) the markers remain,
 * and the next run or `backup list` reports which containers to start.
 */
const MARKER_DIR = '.stackvault-stopped';

export interface StoppedMarker {
  containerId: string;
  container: string;
  service: string;
  since: string;
  pid: number;
  /** Paused (not stopped): `docker unpause` brings it back. */
  paused?: boolean;
}

export async function writeMarker(dir: string, marker: StoppedMarker): Promise<void> {
  await mkdir(join(dir, MARKER_DIR), { recursive: true, mode: 0o700 });
  await writeFile(join(dir, MARKER_DIR, `${marker.containerId}.json`), JSON.stringify(marker), { mode: 0o600 });
}

export async function clearMarker(dir: string, containerId: string): Promise<void> {
  await rm(join(dir, MARKER_DIR, `${containerId}.json`), { force: true });
}

/** Every marker on disk (unreadable ones are skipped). */
async function readMarkers(dir: string): Promise<StoppedMarker[]> {
  const names = await readdir(join(dir, MARKER_DIR)).catch(() => [] as string[]);
  const markers: StoppedMarker[] = [];
  for (const name of names) {
    const marker = await readFile(join(dir, MARKER_DIR, name), 'utf8').then((t) => JSON.parse(t) as StoppedMarker, () => undefined);
    if (marker) markers.push(marker);
  }
  return markers;
}

/** Containers named by markers, read without asking Docker (for when Docker is the problem). */
export async function markedContainers(dir: string): Promise<string[]> {
  return (await readMarkers(dir)).map((m) => m.container);
}

/** Markers whose container is still not running; markers of running or removed containers are cleared. */
export async function leftStopped(dir: string, engine: DockerEngine): Promise<StoppedMarker[]> {
  const left: StoppedMarker[] = [];
  for (const marker of await readMarkers(dir)) {
    const state = await engine.inspect(marker.containerId).then((c) => c.running && !c.paused, (err: unknown) => {
      if ((err as { statusCode?: number }).statusCode === 404) return 'gone' as const;
      throw err;
    });
    if (state === false) left.push(marker);
    else await clearMarker(dir, marker.containerId);
  }
  return left;
}

export function leftStoppedWarning(markers: StoppedMarker[]): string | undefined {
  if (markers.length === 0) return undefined;
  const names = markers.map((m) => m.container);
  const paused = markers.filter((m) => m.paused).map((m) => m.container);
  const stopped = markers.filter((m) => !m.paused).map((m) => m.container);
  const commands = [...(stopped.length ? [`docker start ${stopped.join(' ')}`] : []), ...(paused.length ? [`docker unpause ${paused.join(' ')}`] : [])];
  return `An interrupted stackvault run (pid ${markers[0]!.pid}) ${paused.length && !stopped.length ? 'paused' : 'stopped'} ${names.join(', ')} and could not ${paused.length && !stopped.length ? 'unpause' : 'start'} ${markers.length > 1 ? 'them' : 'it'} again. Bring ${markers.length > 1 ? 'them' : 'it'} back with: ${commands.join('; ')}`;
}

/** Stops a container for `work` and starts it again on every path, including errors and Ctrl-C. */
export async function withStopped<T>(engine: DockerEngine, dir: string, target: { id: string; name: string; service: string }, work: () => Promise<T>): Promise<T> {
  await writeMarker(dir, { containerId: target.id, container: target.name, service: target.service, since: new Date().toISOString(), pid: process.pid });
  try {
    await engine.stop(target.id);
    return await work();
  } finally {
    await engine.start(target.id);
    await clearMarker(dir, target.id);
  }
}

/**
 * Pauses a container for `work` and unpauses it on every path. It leaves a marker like a stop,
 * so a run killed outright is reported next time (a paused container looks "running").
 */
export async function withPaused<T>(engine: DockerEngine, dir: string, target: { id: string; name: string; service: string }, work: () => Promise<T>): Promise<T> {
  await writeMarker(dir, { containerId: target.id, container: target.name, service: target.service, since: new Date().toISOString(), pid: process.pid, paused: true });
  try {
    await engine.pause(target.id);
    return await work();
  } finally {
    await engine.unpause(target.id).catch(async (err: unknown) => {
      if (!(await engine.inspect(target.id)).paused) return; // never paused (the pause itself failed)
      throw err;
    });
    await clearMarker(dir, target.id);
  }
}
