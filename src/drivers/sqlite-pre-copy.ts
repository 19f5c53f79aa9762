import { rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { ContainerDetails, DockerEngine } from '../docker/engine.js';
import { type CopiedFile, copyFileOut, mountOf } from './container-files.js';
import { keepsPreCopiedBytes, NoPreCopy, sharedWritableMappings, stagingFailure, startHelper } from './pre-copy.js';

/**
 * The files that make up one SQLite database, by the suffix SQLite adds to its path: the
 * database, its write-ahead log and its rollback journal. The -shm is not one of them: SQLite
 * rebuilds it from the WAL when the copy is opened.
 */
export const DATABASE_FILES = ['', '-wal', '-journal'] as const;

/** Where a database's file goes in the raw copy: `raw/<index><suffix>`, the names SQLite looks for beside `raw/<index>`. */
export const rawFile = (raw: string, index: number, suffix: string) => join(raw, `${index}${suffix}`);

/** More changed bytes than this are fetched while the app is paused rather than doubled on Docker's disk in the helper. */
const STAGE_LIMIT_BYTES = 256 * 1024 * 1024;

/** Mounts a helper's --volumes-from brings along (not tmpfs). */
const SHARED_MOUNTS = ['volume', 'bind'];

/**
 * Pre-copy of an app's SQLite files (the rule is pre-copy.ts's): while the app runs, every
 * database and its -wal and -journal are copied raw into `raw` (as the frozen copy names them);
 * while it is paused, `catchUp` lists them again and copies only those that changed. The raw
 * files are then byte for byte what a copy taken wholly while paused would have given.
 *
 * A WAL mostly changes (the app appends to it), so it is copied again; the main file changes
 * only at a checkpoint, so a large database is usually not. A companion that is gone while the
 * app is paused (a WAL removed when the last connection closed, a journal whose transaction
 * ended) is deleted from `raw`: replayed into the copy, a stale WAL would bring back pages the
 * database has since overwritten.
 */
export interface SqlitePreCopy {
  /** Run while the app is paused: lists the files and copies what changed; returns how many files were copied. */
  catchUp(): Promise<number>;
  /** Run after the app runs again: fetches into `raw` what `catchUp` staged in the helper. */
  collect(): Promise<void>;
  /** Each database's owner and mode (by its index in the paths), as in `raw`: final once collected. */
  readonly headers: CopiedFile[];
  /** Removes the helper (the raw files are the caller's); safe to call more than once. */
  dispose(): Promise<void>;
}

/** Throws NoPreCopy when the files cannot be pre-copied: the caller then copies them all while the app is paused. */
export async function startSqlitePreCopy(engine: DockerEngine, container: ContainerDetails, paths: string[], raw: string, signal: AbortSignal): Promise<SqlitePreCopy> {
  // The helper sees the app's mounts, not its own layer. The -wal and -journal appear beside
  // the database, so its directory, not only the file, must be on a mount the helper shares.
  const mountPoints = paths.map((path) => {
    const mount = mountOf(container, posix.dirname(path));
    if (!mount || !SHARED_MOUNTS.includes(mount.type)) throw new NoPreCopy(`${path} is not on a volume`);
    return mount.destination;
  });
  const files = paths.flatMap((path, index) => DATABASE_FILES.map((suffix) => ({ path: path + suffix, target: rawFile(raw, index, suffix), suffix, index, mountPoint: mountPoints[index]! })));
  // Listed: every file, and every directory between a database and its mount point.
  const startPoints = [...new Set([...files.map((f) => f.path), ...paths.flatMap((path, i) => directoriesBetween(path, mountPoints[i]!))])];
  const helper = await startHelper(engine, container);
  try {
    // Read before the first byte is staged (see sharedWritableMappings).
    const mapped = await sharedWritableMappings(engine, container);
    const listed = await helper.list(startPoints, { recurse: false });
    const unseen = paths.find((p) => listed.get(p)?.type !== 'f');
    if (unseen) throw new NoPreCopy(`the helper does not see ${unseen} as a regular file`);
    /** Container path -> how many bytes of it are staged in `raw`. */
    const staged = new Map<string, number>();
    const headers: CopiedFile[] = [];
    type DatabaseFile = (typeof files)[number];
    // A companion that is gone (a WAL checkpointed away when the last connection closed, a
    // journal whose transaction ended): recovered into the copy, its staged bytes would bring
    // back pages the database has overwritten since.
    const forget = async (f: DatabaseFile) => {
      staged.delete(f.path);
      await rm(f.target, { force: true });
    };
    const copy = async (f: DatabaseFile): Promise<boolean> => {
      const copied = await copyFileOut(engine, container.id, f.path, f.target, { mayBeMissing: f.suffix !== '', signal });
      if (!copied) {
        await forget(f);
        return false;
      }
      staged.set(f.path, copied.size);
      if (f.suffix === '') headers[f.index] = copied;
      return true;
    };
    try {
      for (const f of files) if (listed.get(f.path)?.type === 'f') await copy(f);
    } catch (err) {
      throw stagingFailure(err, signal);
    }

    /** Files catchUp staged in the helper, fetched into `raw` by `collect`. */
    let pending: Array<{ file: DatabaseFile; staged: string; size: number }> = [];
    return {
      headers,
      async catchUp() {
        let copiedWhilePaused = 0;
        try {
          const now = await helper.list(startPoints, { recurse: false });
          const changed: DatabaseFile[] = [];
          for (const f of files) {
            if (!now.has(f.path) && f.suffix !== '') {
              await forget(f);
              continue;
            }
            if (!keepsPreCopiedBytes(now, f.path, f.mountPoint, staged.get(f.path), mapped, helper.startedAt)) changed.push(f);
          }
          // Copied inside the helper while the app is paused (milliseconds), fetched after it runs.
          const bytes = changed.reduce((sum, f) => sum + (now.get(f.path)?.size ?? 0), 0);
          const inHelper = changed.length && bytes <= STAGE_LIMIT_BYTES ? await helper.stage(changed.map((f) => f.path)) : undefined;
          if (inHelper && 'staged' in inHelper) {
            pending = changed.map((file, i) => ({ file, staged: inHelper.staged[i]!, size: now.get(file.path)!.size }));
            return changed.length;
          }
          for (const f of changed) if (await copy(f)) copiedWhilePaused++;
        } catch (err) {
          throw stagingFailure(err, signal);
        }
        return copiedWhilePaused;
      },
      async collect() {
        for (const { file, staged: from, size } of pending) {
          const copied = await helper.fetchStaged(from, file.target, signal);
          if (copied.size !== size) throw new Error(`the copy of ${file.path} staged while the app was paused changed size (${size} -> ${copied.size} bytes)`);
          staged.set(file.path, copied.size);
          if (file.suffix === '') headers[file.index] = copied;
        }
        pending = [];
      },
      dispose: () => helper.remove(),
    };
  } catch (err) {
    await helper.remove();
    throw err;
  }
}

/** The directories between a file and its mount point, the nearest first (the mount point cannot be renamed). */
function directoriesBetween(path: string, mountPoint: string): string[] {
  const dirs: string[] = [];
  for (let dir = posix.dirname(path); dir !== mountPoint && dir !== '/'; dir = posix.dirname(dir)) dirs.push(dir);
  return dirs;
}
