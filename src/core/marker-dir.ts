import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { storageError } from '../errors.js';
import { fsyncPath } from '../util/fsync.js';
import { MiB, readRegularFile, writeFileAtomic } from '../util/safe-file.js';

/**
 * A directory of one JSON marker per container inside the backup directory (`sub`: the
 * stopped-container markers, the restore journal). A marker is written and fsynced, with its
 * directory, before the container is touched: a power loss right after must still show it.
 */
export const markerFile = (dir: string, sub: string, containerId: string): string => join(dir, sub, `${containerId}.json`);
const isMarkerName = (n: string) => n.endsWith('.json') && !n.startsWith('.');

export async function writeMarkerFile(dir: string, sub: string, marker: { containerId: string }): Promise<void> {
  const markers = join(dir, sub);
  const created = await mkdir(markers, { recursive: true, mode: 0o700 });
  // mkdir accepts a symlink to a directory elsewhere; nothing is written outside the backup directory.
  if (!(await lstat(markers)).isDirectory()) throw storageError(`${markers} is not a directory of its own (a symbolic link?); remove it and run again.`);
  await writeFileAtomic(markerFile(dir, sub, marker.containerId), JSON.stringify(marker), { mode: 0o600, fsync: true });
  await fsyncPath(markers);
  if (created) await fsyncPath(dir);
}

export async function clearMarkerFile(dir: string, sub: string, containerId: string): Promise<void> {
  await rm(markerFile(dir, sub, containerId), { force: true });
  await fsyncPath(join(dir, sub)).catch(() => undefined);
}

/** Every marker that reads and that `accept` takes (given the file's name); others are skipped. */
export async function readMarkerFiles<T>(dir: string, sub: string, accept: (value: unknown, name: string) => value is T): Promise<T[]> {
  const names = await readdir(join(dir, sub)).catch(() => [] as string[]);
  const markers: T[] = [];
  for (const name of names.filter(isMarkerName)) {
    const value = await readRegularFile(join(dir, sub, name), MiB).then(
      (t) => JSON.parse(t) as unknown,
      () => undefined,
    );
    if (accept(value, name)) markers.push(value);
  }
  return markers;
}

/** Whether any marker is there at all (read without asking Docker). */
export async function anyMarkerFile(dir: string, sub: string): Promise<boolean> {
  return (await readdir(join(dir, sub)).catch(() => [] as string[])).some(isMarkerName);
}
