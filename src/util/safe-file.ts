import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, type Stats, writeSync } from 'node:fs';
import { type FileHandle, lstat, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Files in the backup directory are read and written only as regular files of their own. Whoever
 * can write there could otherwise plant a symlink (read or overwrite any file the run can reach,
 * or learn its size), a FIFO (open() or read() waits forever, even past a second Ctrl-C: the
 * libuv thread stays stuck) or a device (/dev/zero never ends).
 */
export class UnsafeFileError extends Error {
  constructor(
    readonly path: string,
    /** What it is instead: "a symbolic link", "a named pipe (FIFO)", "larger than 64 MiB"... */
    readonly what: string,
  ) {
    super(`${path} is ${what}`);
    this.name = 'UnsafeFileError';
  }
}

function kind(s: Stats): string {
  if (s.isSymbolicLink()) return 'a symbolic link';
  if (s.isFIFO()) return 'a named pipe (FIFO)';
  if (s.isDirectory()) return 'a directory';
  if (s.isCharacterDevice() || s.isBlockDevice()) return 'a device';
  if (s.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Opens a regular file for reading, nothing else. lstat first, so that a device or FIFO is never
 * even opened (opening some devices has effects); then O_NOFOLLOW|O_NONBLOCK (a symlink or FIFO
 * swapped in meanwhile neither is followed nor blocks) and fstat of the descriptor, which must be
 * the file lstat saw. ENOENT and other errors are thrown as they are.
 */
export async function openRegularFile(path: string): Promise<{ handle: FileHandle; size: number }> {
  const seen = await lstat(path);
  if (!seen.isFile()) throw new UnsafeFileError(path, kind(seen));
  const { handle, stats } = await openOwnFile(path, constants.O_RDONLY);
  if (stats.ino !== seen.ino || stats.dev !== seen.dev) {
    await handle.close();
    throw new UnsafeFileError(path, 'being replaced while it is read');
  }
  return { handle, size: stats.size };
}

/**
 * Opens `path` with O_NOFOLLOW|O_NONBLOCK added to `flags` (a symlink is not followed, a FIFO
 * does not block) and fstat of the descriptor: a regular file, or the handle is closed and an
 * UnsafeFileError says what it is.
 */
async function openOwnFile(path: string, flags: number, mode?: number): Promise<{ handle: FileHandle; stats: Stats }> {
  let handle: FileHandle;
  try {
    handle = await open(path, flags | constants.O_NOFOLLOW | constants.O_NONBLOCK, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new UnsafeFileError(path, 'a symbolic link');
    throw err;
  }
  const stats = await handle.stat().catch(async (err: unknown) => {
    await handle.close();
    throw err;
  });
  if (!stats.isFile()) {
    await handle.close();
    throw new UnsafeFileError(path, kind(stats));
  }
  return { handle, stats };
}

export const MiB = 1 << 20;

/** A regular file's text, at most `maxBytes` of it: a bigger one is refused rather than read into memory. */
export async function readRegularFile(path: string, maxBytes: number): Promise<string> {
  const { handle, size } = await openRegularFile(path);
  const tooLarge = () => new UnsafeFileError(path, `larger than ${maxBytes >= MiB ? `${maxBytes / MiB} MiB` : `${maxBytes} bytes`}`);
  try {
    if (size > maxBytes) throw tooLarge();
    // It may grow while it is read: read one byte past the limit to notice.
    const buffer = Buffer.alloc(Math.min(size, maxBytes) + 1);
    let length = 0;
    for (;;) {
      if (length === buffer.length) throw tooLarge();
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * Writes a file whole or not at all: a temporary file beside it, then a rename over it. The
 * temporary name is random and created with O_CREAT|O_EXCL ('wx'), which never follows a symlink
 * planted at that name; a rename replaces a symlink at `path` itself rather than writing through it.
 */
export async function writeFileAtomic(path: string, data: string, options: { mode: number; fsync?: boolean }): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', options.mode);
  try {
    try {
      await handle.writeFile(data);
      if (options.fsync) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * appendRegularFile's rules, synchronously: for the last line a run writes as it exits at once
 * (a third Ctrl-C), where nothing asynchronous gets to run.
 */
export function appendRegularFileSync(path: string, data: string, mode: number): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new UnsafeFileError(path, 'a symbolic link');
    throw err;
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw new UnsafeFileError(path, kind(stats));
    writeSync(fd, data);
  } finally {
    closeSync(fd);
  }
}

/**
 * Appends to a regular file, creating it when missing: never through a symlink (O_NOFOLLOW), never
 * waiting on a FIFO (O_NONBLOCK, then fstat).
 */
export async function appendRegularFile(path: string, data: string, mode: number): Promise<void> {
  const { handle } = await openOwnFile(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, mode);
  try {
    await handle.appendFile(data);
  } finally {
    await handle.close();
  }
}
