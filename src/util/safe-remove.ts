import { constants, existsSync } from 'node:fs';
import { type FileHandle, lstat, open, readdir, rm, rmdir, unlink } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { describeFsError } from '../core/backup-dir.js';
import { ExitCode, StackvaultError } from '../errors.js';
import { mapLimit } from './limit.js';

/**
 * Removing and measuring trees inside the backup directory, never outside it, even while
 * someone who can write there swaps names under the walk. A path-based walk (Node's own
 * `fs.rm` recursive, rimraf) lstats `x/d`, finds a directory, then reads and unlinks `x/d/…`
 * by name: when `d` is exchanged for a symlink in between (renameat2 RENAME_EXCHANGE, as fast
 * as a loop can), those names resolve through the link, and a cleanup run as root deleted 415
 * of 500 files of another directory in one of five tries. Here every directory is opened with
 * O_NOFOLLOW|O_DIRECTORY and its entries are named through `/proc/self/fd/N/…`, which resolves
 * through the opened directory itself, whatever its name now points at; unlink and rmdir never
 * follow a final symlink. Where /proc is not mounted (not Linux), the plain path-based walk.
 */
const FD_ROOT = '/proc/self/fd';
const anchored = existsSync(FD_ROOT);
/** Files of one directory unlinked at once; subdirectories are walked one at a time (one descriptor per level). */
const FILE_LANES = 16;

const code = (err: unknown) => (err as NodeJS.ErrnoException)?.code;
const within = (dirFd: number, name: Buffer) => Buffer.concat([Buffer.from(`${FD_ROOT}/${dirFd}/`), name]);

/** Opens a directory of the tree without following a symlink; undefined when the name is no directory (any more). */
async function openDir(path: Buffer): Promise<FileHandle | undefined> {
  try {
    return await open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (err) {
    if (['ENOENT', 'ELOOP', 'ENOTDIR'].includes(code(err) ?? '')) return undefined;
    throw err;
  }
}

/** `rm -rf path` that never leaves the tree at `path` (see above). The parent directory of `path` is trusted as given. */
export async function removeTree(path: string): Promise<void> {
  if (!anchored) return rm(path, { recursive: true, force: true });
  const parent = await open(dirname(path), constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await removeEntry(parent.fd, Buffer.from(basename(path)));
  } catch (err) {
    // The message would name /proc/self/fd/N/…, which tells the user nothing.
    if (code(err))
      throw new StackvaultError(`${path} could not be removed: ${describeFsError(err)}${code(err) === 'ENOTEMPTY' ? ' (entries kept appearing in it while it was removed)' : ''}.`, ExitCode.failure);
    throw err;
  } finally {
    await parent.close();
  }
}

/** Times a directory is emptied again when something appears in it meanwhile (rmdir: ENOTEMPTY), before giving up. */
const EMPTY_AGAIN = 3;

async function removeEntry(dirFd: number, name: Buffer, attempt = 0): Promise<void> {
  const path = within(dirFd, name);
  const info = await lstat(path).catch((err: unknown) => {
    if (code(err) === 'ENOENT') return undefined;
    throw err;
  });
  if (!info) return;
  if (!info.isDirectory()) {
    // A file, a symlink (the link itself goes), a FIFO: never opened.
    try {
      return await unlink(path);
    } catch (err) {
      if (code(err) === 'ENOENT') return;
      if (code(err) !== 'EISDIR' && code(err) !== 'EPERM') throw err; // made a directory meanwhile: walk it
    }
  }
  const dir = await openDir(path);
  if (dir) {
    try {
      const names = await readdir(within(dir.fd, Buffer.alloc(0)), { encoding: 'buffer' });
      const kinds = await Promise.all(names.map(async (n) => ({ n, isDir: (await lstat(within(dir.fd, n)).catch(() => undefined))?.isDirectory() ?? false })));
      await mapLimit(
        kinds.filter((k) => !k.isDir),
        FILE_LANES,
        (k) => removeEntry(dir.fd, k.n),
      );
      for (const k of kinds.filter((x) => x.isDir)) await removeEntry(dir.fd, k.n);
    } finally {
      await dir.close();
    }
  }
  try {
    await rmdir(path);
  } catch (err) {
    if (code(err) === 'ENOENT') return;
    // Swapped for a link or a file after it was emptied: that name is ours to remove, not to follow.
    if (code(err) === 'ENOTDIR') return unlink(path).catch(() => undefined);
    if (code(err) === 'ENOTEMPTY' && attempt < EMPTY_AGAIN) return removeEntry(dirFd, name, attempt + 1);
    throw err;
  }
}

/**
 * Bytes a tree takes, as removeTree would free them: lstat only, so a symlink counts as itself
 * and is never followed (`a -> .` loops no more), and names swapped meanwhile are read through
 * the opened directory. An entry that vanished or cannot be read counts 0.
 */
export async function treeBytes(path: string): Promise<number> {
  const info = await lstat(path).catch(() => undefined);
  if (!info) return 0;
  if (!info.isDirectory()) return info.size;
  if (!anchored) {
    let total = 0;
    for (const e of await readdir(path).catch(() => [])) total += await treeBytes(`${path}/${e}`);
    return total;
  }
  const dir = await openDir(Buffer.from(path)).catch(() => undefined); // EMFILE, EACCES: not counted rather than failing a cleanup
  if (!dir) return 0;
  try {
    return await bytesUnder(dir.fd);
  } finally {
    await dir.close();
  }
}

async function bytesUnder(dirFd: number): Promise<number> {
  let total = 0;
  for (const name of await readdir(within(dirFd, Buffer.alloc(0)), { encoding: 'buffer' }).catch(() => [])) {
    const path = within(dirFd, name);
    const info = await lstat(path).catch(() => undefined);
    if (!info) continue;
    if (!info.isDirectory()) {
      total += info.size;
      continue;
    }
    const sub = await openDir(path).catch(() => undefined);
    if (!sub) continue;
    try {
      total += await bytesUnder(sub.fd);
    } finally {
      await sub.close();
    }
  }
  return total;
}
