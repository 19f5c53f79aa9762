import { createWriteStream } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isNotFound, missingProgram, undefinedIfNotFound, type ContainerDetails, type DockerEngine, type ExecResult, type HelperSpec } from '../docker/engine.js';
import { LABELS } from '../core/selection.js';
import { findTarEntry, writeTar, type BuildEntry } from '../util/tar-build.js';
import { posix } from 'node:path';
import type { ReadEntry } from 'tar';
import { TarParser } from '../util/tar-parser.js';

/** The mount (volume or bind) a path lives on, if any. */
export function mountOf(container: ContainerDetails, path: string) {
  return container.mounts.filter((m) => path === m.destination || path.startsWith(`${m.destination.replace(/\/$/, '')}/`)).sort((a, b) => b.destination.length - a.destination.length)[0];
}

/**
 * Removes paths (or, with `contents`, everything inside them) from a STOPPED container's
 * volumes. A stopped container cannot exec, so a short-lived helper container of the same
 * image mounts its volumes (--volumes-from) and deletes there. Paths must be on a mount.
 */
export async function removeFromVolumes(engine: DockerEngine, container: ContainerDetails, paths: string[], mode: 'contents' | 'paths' | 'files'): Promise<void> {
  const unmounted = paths.filter((p) => !mountOf(container, p));
  if (unmounted.length) throw new Error(`cannot empty ${unmounted.join(', ')}: not on a volume or bind mount of ${container.name}`);
  const script = {
    contents: 'set -e; for p; do if [ -d "$p" ]; then find "$p" -mindepth 1 -delete; fi; done',
    paths: 'set -e; for p; do rm -rf -- "$p"; done',
    // A file or a link only (a database's -wal, -shm, -journal): never a directory of that name.
    files: 'set -e; for p; do if [ -L "$p" ] || [ -f "$p" ]; then rm -f -- "$p"; fi; done',
  }[mode];
  const r = await runWithShell(engine, container, { entrypoint: ['sh', '-c', script, 'sh'], cmd: paths, user: '0:0', volumesFrom: [container.id] });
  if (r.exitCode !== 0) throw new Error(`emptying ${paths.join(', ')} failed: ${r.stderr.trim().split('\n').pop()}`);
}

/**
 * Runs a helper that needs `sh` on a container's volumes: in the container's own image, or,
 * when that has none (distroless), in the image of another container of its Compose project,
 * then of any container on the engine. The helper only works on the volumes it mounts, as
 * root, so any image with a shell does. Without this, a backup of a store on a distroless
 * image was shown ✅ and its restore failed, as did putting its restore point back.
 */
async function runWithShell(engine: DockerEngine, container: ContainerDetails, spec: Omit<HelperSpec, 'image'>): Promise<ExecResult> {
  const noShell = (err: unknown) => missingProgram(err) === 'sh';
  try {
    return await engine.runToCompletion({ ...spec, image: container.imageId });
  } catch (err) {
    if (!noShell(err)) throw err;
  }
  const project = container.labels[LABELS.composeProject];
  const all = await engine.listContainers({ all: true });
  const sameProjectFirst = [...all.filter((c) => project !== undefined && c.labels[LABELS.composeProject] === project), ...all];
  for (const image of new Set(sameProjectFirst.map((c) => c.image).filter((i) => i !== container.image && i !== container.imageId))) {
    try {
      return await engine.runToCompletion({ ...spec, image });
    } catch (err) {
      if (!noShell(err) && !isNotFound(err)) throw err;
    }
  }
  throw new Error(`${container.image} has no shell (sh), nor has any other container's image on this engine, and one is needed to empty ${container.name}'s volumes for the restore`);
}

/** Streams a tar built from `entries` into `dir` of the container (running or stopped). */
export async function putFiles(engine: DockerEngine, containerId: string, dir: string, entries: BuildEntry[]): Promise<void> {
  const tar = new PassThrough();
  const writing = writeTar(entries, tar).then(
    () => tar.end(),
    (err: unknown) => {
      tar.destroy(err as Error);
      throw err;
    },
  );
  await Promise.all([engine.putArchive(containerId, dir, tar), writing]);
}

/** What the archive's header said of a file copied out of a container. */
export interface CopiedFile {
  uid: number;
  gid: number;
  mode: number;
  /** The bytes copied: the file's size when Docker read it. */
  size: number;
}

/**
 * Copies one file out of a container (running, paused or stopped) through the archive API into
 * `target` (created with mode 0600, or overwritten), its bytes as they are. Returns the owner,
 * mode and size from the archive's header; undefined when `mayBeMissing` and there is no file.
 */
export async function copyFileOut(
  engine: DockerEngine,
  containerId: string,
  path: string,
  target: string,
  options: { mayBeMissing?: boolean; signal?: AbortSignal } = {},
): Promise<CopiedFile | undefined> {
  const { mayBeMissing = false, signal } = options;
  const archive = await engine.getArchive(containerId, path, signal ? { signal } : {}).catch((err: unknown) => {
    if (mayBeMissing && isNotFound(err)) return undefined;
    throw err;
  });
  if (!archive) return undefined;
  const entry = await findTarEntry(archive, posix.basename(path), signal);
  await pipeline(entry.stream, createWriteStream(target, { mode: 0o600 }));
  return { uid: entry.uid, gid: entry.gid, mode: entry.mode, size: entry.size };
}

/** `uid:gid` -> numbers; undefined when unknown. */
export function parseOwner(owner: string | undefined): { uid: number; gid: number } | undefined {
  const m = /^(\d+):(\d+)$/.exec(owner ?? '');
  return m ? { uid: Number(m[1]), gid: Number(m[2]) } : undefined;
}

/** The 16 bytes every SQLite database file starts with. */
export const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

export type SqliteHeaderFacts = 'missing' | 'not a file' | 'empty' | 'sqlite' | 'other';

/**
 * What a path in a container holds, as far as SQLite is concerned: read through the archive
 * API (nothing is written, nothing runs in the container), only the first bytes looked at.
 */
export async function sqliteHeaderOf(engine: DockerEngine, containerId: string, path: string): Promise<SqliteHeaderFacts> {
  const archive = await engine.getArchive(containerId, path).catch(undefinedIfNotFound);
  if (!archive) return 'missing';
  const entry = await findTarEntry(archive, posix.basename(path)).catch(() => undefined);
  if (!entry) return 'not a file';
  if (entry.size === 0) {
    entry.close();
    return 'empty';
  }
  const head = await firstBytes(entry.stream, SQLITE_HEADER.length);
  entry.close();
  return head.equals(SQLITE_HEADER) ? 'sqlite' : 'other';
}

function firstBytes(stream: Readable, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const done = () => {
      stream.off('data', onData);
      resolve(Buffer.concat(chunks).subarray(0, n));
    };
    const onData = (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= n) done();
    };
    stream.on('data', onData);
    stream.once('end', done);
    stream.once('error', reject);
  });
}

export type PathKind = 'missing' | 'directory' | 'sqlite' | 'file' | 'other';

/**
 * What a path in a container (running, paused or stopped) is, read through the archive API:
 * only the first entry's header (and, for a file, its first 16 bytes) is read, then the stream
 * is dropped, so a large directory costs no more than a small one. A SQLite database is a
 * regular file that starts with SQLite's header; `other` is a symlink, device or the like.
 */
export async function pathKindOf(engine: DockerEngine, containerId: string, path: string): Promise<PathKind> {
  const archive = await engine.getArchive(containerId, path).catch(undefinedIfNotFound);
  if (!archive) return 'missing';
  return new Promise<PathKind>((resolve, reject) => {
    let settled = false;
    const done = (kind: PathKind | Error) => {
      if (settled) return;
      settled = true;
      archive.unpipe(parser);
      archive.destroy();
      if (kind instanceof Error) reject(kind);
      else resolve(kind);
    };
    const parser = new TarParser();
    parser.on('entry', (e: ReadEntry) => {
      if (settled) return void e.resume();
      if (e.type === 'Directory') return done('directory');
      if (e.type !== 'File' && e.type !== 'OldFile') return done('other');
      if ((e.size ?? 0) < SQLITE_HEADER.length) return done('file');
      let head = Buffer.alloc(0);
      e.on('data', (c: Buffer) => {
        head = Buffer.concat([head, c]);
        if (head.length >= SQLITE_HEADER.length) done(head.subarray(0, SQLITE_HEADER.length).equals(SQLITE_HEADER) ? 'sqlite' : 'file');
      });
      e.on('end', () => done('file'));
    });
    parser.on('error', (err: Error) => done(err));
    parser.on('end', () => done(new Error(`the engine's archive of ${path} held no entry`)));
    archive.on('error', (err: Error) => done(err));
    archive.pipe(parser);
  });
}
