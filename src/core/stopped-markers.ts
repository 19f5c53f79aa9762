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
    const state = await engine.inspect(marker.containerId).then((c) => c.running, (err: unknown) => {
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
  return `An interrupted stackvault run (pid ${markers[0]!.pid}) stopped ${names.join(', ')} and could not start ${markers.length > 1 ? 'them' : 'it'} again. Start ${markers.length > 1 ? 'them' : 'it'} with: docker start ${names.join(' ')}`;
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
