import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { ExitCode, StackvaultError, storageError } from '../errors.js';
import { describeFsError, isStorageFailure } from './backup-dir.js';
import { interruptSignal } from '../util/interrupt.js';
import { readRegularFile } from '../util/safe-file.js';
import { sleep } from '../util/time.js';

/** The lock: a directory made by proper-lockfile (mkdir is atomic), with OWNER_FILE inside. */
export const LOCK_FILE = '.stackvault.lock';
const OWNER_FILE = 'owner.json';
/** A lock whose mtime has not been refreshed for this long is stale (its holder stopped updating it). */
const STALE_MS = 60_000;
/** The holder refreshes the mtime this often, so an event loop busy for ~55 s does not lose it. */
const UPDATE_MS = 5_000;

interface LockInfo {
  pid: number;
  host: string;
  command: string;
  since: string;
  /** Tells our own lock from one that replaced it. */
  token?: string;
  /** This host's boot (Linux boot_id): a lock taken before a reboot is dead, whatever process has its pid now. */
  boot?: string;
  /**
   * The holder's process as the kernel tells it from another with its pid later: its pid namespace
   * and its start (clock ticks since boot, which no clock step moves). A killed run's pid taken by
   * another process made its lock look alive for good, and every run after it was refused.
   */
  proc?: string;
}

let bootIdRead: { id?: string } | undefined;
/** The kernel's id of this boot, read once; undefined where there is none (not Linux). */
function bootId(): string | undefined {
  if (!bootIdRead) {
    try {
      bootIdRead = { id: fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined };
    } catch {
      bootIdRead = {};
    }
  }
  return bootIdRead.id;
}

let namespacesRead: { ns?: string } | undefined;
/**
 * This process's pid and time namespaces, read once: a process's start read from another time
 * namespace is offset by it. Undefined where they cannot be read (not Linux).
 */
function ourNamespaces(): string | undefined {
  if (!namespacesRead) {
    try {
      let time = '';
      try {
        time = fs.readlinkSync('/proc/self/ns/time');
      } catch {
        // a kernel without time namespaces
      }
      namespacesRead = { ns: `${fs.readlinkSync('/proc/self/ns/pid')}${time}` };
    } catch {
      namespacesRead = {};
    }
  }
  return namespacesRead.ns;
}

/** `<pid and time namespaces>:<start>` of a process, read now; undefined where it cannot be read (not Linux, gone). */
function processIdentity(pid: number): string | undefined {
  const ns = ourNamespaces();
  if (ns === undefined) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold anything: the 22nd field, starttime.
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return start ? `${ns}:${start}` : undefined;
  } catch {
    return undefined;
  }
}
const pidNamespace = (identity: string) => identity.slice(0, identity.lastIndexOf(':'));

/**
 * Whether the holder's pid names another process now: the one that had it is gone. Only when
 * both are known and in this pid namespace (another's pids are not ours to look up).
 */
const pidTakenOver = (h: LockInfo): boolean => {
  if (h.proc === undefined) return false;
  const now = processIdentity(h.pid);
  return now !== undefined && pidNamespace(now) === pidNamespace(h.proc) && now !== h.proc;
};
/** A holder whose pid is in another pid namespace (a run in another container of this hostname): not judged here. */
const otherNamespace = (h: LockInfo): boolean => {
  const ours = ourNamespaces();
  return h.proc !== undefined && ours !== undefined && ours !== pidNamespace(h.proc);
};

/**
 * A holder is known to be alive when it is a process of this host, of this boot, that runs. Its
 * lock then is never stale by its age: the age is read with this clock, which an NTP step or a
 * resumed VM moves ahead of the last refresh (a waiting run took over a live restore's lock).
 */
const aliveHere = (h: LockInfo): boolean => h.host === hostname() && h.boot !== undefined && h.boot === bootId() && !otherNamespace(h) && processAlive(h.pid) && !pidTakenOver(h);

/** Of another boot of this host, or of a process of this host that is gone (its pid free, or another process's now). */
const deadHere = (h: LockInfo): boolean =>
  h.host === hostname() && ((h.boot !== undefined && bootId() !== undefined && h.boot !== bootId()) || (!otherNamespace(h) && (!processAlive(h.pid) || pidTakenOver(h))));

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One stackvault run at a time per backup directory, through proper-lockfile: the lock is a
 * directory created with mkdir, its mtime is refreshed while the run lasts, and a lock not
 * refreshed for STALE_MS is stale and taken over. A lock whose holder (same host) is known to be
 * dead is taken over at once. A lock just made by another process, whose details are not written
 * yet, is fresh and therefore respected. Release removes the lock only if it is still ours.
 * Waits up to `waitMs`, then fails naming the holder; an interrupt ends the wait (a scheduled
 * run waits up to 30 minutes, and a Ctrl-C or SIGTERM went unheard until it had the lock).
 */
export async function acquireLock(dir: string, command: string, waitMs = 0, signal: AbortSignal = interruptSignal): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  const deadline = Date.now() + waitMs;
  const mine: LockInfo = { pid: process.pid, host: hostname(), command, since: '', token: randomBytes(12).toString('hex'), boot: bootId(), proc: processIdentity(process.pid) };
  const guard = { releasing: false };
  for (;;) {
    mine.since = new Date().toISOString();
    let release: (() => Promise<void>) | undefined;
    let full = false;
    try {
      release = await lockfile.lock(dir, {
        lockfilePath: path,
        realpath: false,
        stale: STALE_MS,
        update: UPDATE_MS,
        fs: lockFs(mine.token!, guard),
        // The default throws from a timer, which would end the process with containers stopped.
        onCompromised: (err) => process.stderr.write(`stackvault: warning: the lock on ${dir} was lost (${err.message}); another run may now use this backup directory.\n`),
      });
    } catch (err) {
      if (isFull(err)) full = true;
      else if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw lockError(dir, err);
    }
    if (release) {
      const done = release;
      try {
        await writeOwner(path, mine);
        return async () => {
          guard.releasing = true;
          await done().catch((err: NodeJS.ErrnoException) => {
            if (err.code !== 'ERELEASED') throw err; // ERELEASED: it was taken from us; nothing of ours to remove
          });
        };
      } catch (err) {
        await done().catch(() => undefined);
        if (!isFull(err)) throw lockError(dir, err);
        full = true;
      }
    }
    if (full) {
      // A full disk is when `backup cleanup` is needed most, and the lock must not stop it: the
      // directory's mkdir needs a data block on ext4, its owner file one anywhere.
      const fileRelease = await emptyFileLock(path).catch((err: unknown) => {
        throw lockError(dir, err);
      });
      if (fileRelease) return fileRelease;
    }
    const held = await inspectLock(path);
    if (held.dead) {
      removeLockDir(path); // its process is gone: take it over now rather than when its mtime goes stale
      continue;
    }
    // A run of another host cannot be seen from here: one left in a backup directory copied from a
    // host that is gone is taken over once it is stale, and the sentence names that host.
    const elsewhere = held.holder && held.holder.host !== hostname() ? held.holder.host : undefined;
    const who = held.holder
      ? `${held.holder.command}, pid ${held.holder.pid}${elsewhere !== undefined ? ` on host ${elsewhere}` : ''}, since ${held.holder.since}`
      : 'just starting: its details are not written yet, or the disk is full';
    if (Date.now() >= deadline) {
      throw new StackvaultError(
        `Another stackvault run (${who}) holds the lock on ${dir}.`,
        ExitCode.locked,
        elsewhere !== undefined
          ? `Wait for it to finish. If that host is gone (a backup directory copied from it), its lock is taken over ${STALE_MS / 1000} s after it was last refreshed: run the command again then.`
          : 'Wait for it to finish; a lock left by a process that died is taken over automatically.',
      );
    }
    await sleep(500, signal).catch(() => undefined); // an interrupt wakes it
    if (signal.aborted) throw new StackvaultError(`Interrupted while waiting for another stackvault run (${who}) to release the lock on ${dir}; nothing was done.`, ExitCode.interrupted);
  }
}

const isFull = (err: unknown) => ['ENOSPC', 'EDQUOT'].includes((err as NodeJS.ErrnoException)?.code ?? '');

/** Why the lock could not be made, as one sentence (a read-only or foreign directory is exit 7, like create's own check). */
function lockError(dir: string, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (!(isStorageFailure(err) || code === 'ENOENT' || code === 'ENOTDIR')) return err as Error;
  return storageError(
    `The lock on the backup directory ${dir} cannot be taken: ${describeFsError(err)}.`,
    code === 'EROFS' || code === 'EACCES' || code === 'EPERM' ? 'Commands that change the directory need it writable; list, stats and cleanup --dry-run only read it.' : undefined,
  );
}

/**
 * The lock when the disk is full: an empty regular file made with O_EXCL at the lock's path
 * (an inode, no data block, which ext4 still has when mkdir fails). Every other run sees the
 * path taken, as proper-lockfile's mkdir gets EEXIST, and reads it as a lock whose details are
 * not written: respected while its mtime is refreshed, stale a minute after it stops (the format
 * of an older stackvault's lock file, which inspectLock and removeLockDir already know). Undefined
 * when another run holds the path. Release (and exit) removes it only while it is still ours.
 */
async function emptyFileLock(path: string): Promise<(() => Promise<void>) | undefined> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(path, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw err;
  }
  const { ino, dev } = await handle.stat().finally(() => handle.close());
  const ours = () => {
    const now = fs.lstatSync(path, { throwIfNoEntry: false });
    return Boolean(now?.isFile() && now.ino === ino && now.dev === dev);
  };
  // lutimes: a symlink put in its place is not followed. No space is needed to change times.
  const refresh = setInterval(() => {
    const t = new Date();
    fs.lutimes(path, t, t, () => undefined);
  }, UPDATE_MS);
  refresh.unref();
  const remove = () => {
    if (ours()) fs.rmSync(path, { force: true });
  };
  process.on('exit', remove);
  return async () => {
    clearInterval(refresh);
    process.off('exit', remove);
    remove();
  };
}

/** Writes the owner file into the fresh lock directory, keeping the directory's mtime as proper-lockfile set it. */
async function writeOwner(path: string, info: LockInfo): Promise<void> {
  const { mtime } = await fs.promises.stat(path);
  const tmp = join(path, `${OWNER_FILE}.tmp`);
  await fs.promises.writeFile(tmp, JSON.stringify(info), { mode: 0o600 });
  await fs.promises.rename(tmp, join(path, OWNER_FILE));
  // proper-lockfile checks that the mtime is still the one it set; adding a file changed it.
  await fs.promises.utimes(path, mtime, mtime);
}

/**
 * Who holds the lock, and whether it is known to be dead. Also reads the lock file of older
 * stackvault versions (a JSON file instead of a directory).
 */
async function inspectLock(path: string): Promise<{ holder?: LockInfo; dead: boolean }> {
  const stat = await fs.promises.lstat(path).catch(() => undefined);
  if (!stat) return { dead: false }; // released meanwhile: try again
  // A regular file only: a FIFO or a symlink planted as the lock must not hang or redirect the read.
  const text = await readRegularFile(stat.isDirectory() ? join(path, OWNER_FILE) : path, 1 << 16).catch(() => undefined);
  let holder: LockInfo | undefined;
  try {
    holder = text ? (JSON.parse(text) as LockInfo) : undefined;
  } catch {
    holder = undefined; // half-written: judged by its age only
  }
  return { holder, dead: Boolean(holder && deadHere(holder)) };
}

/** Removes a lock directory (its owner file first) or an old-format lock file. */
function removeLockDir(path: string): void {
  const stat = fs.lstatSync(path, { throwIfNoEntry: false });
  if (!stat) return;
  if (!stat.isDirectory()) return fs.rmSync(path, { force: true });
  for (const name of [OWNER_FILE, `${OWNER_FILE}.tmp`]) fs.rmSync(join(path, name), { force: true });
  fs.rmdirSync(path);
}

/**
 * The owner file of a lock directory, read synchronously (it also runs at process exit), so never
 * through a symlink and never on a FIFO planted as the owner file: a blocking read there hung the
 * run at its very end, for good. Undefined when there is none (yet) or it is not one.
 */
function ownerOf(path: string): LockInfo | undefined {
  let fd: number | undefined;
  try {
    fd = fs.openSync(join(path, OWNER_FILE), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    const info = fs.fstatSync(fd);
    if (!info.isFile() || info.size > 1 << 16) return undefined;
    return JSON.parse(fs.readFileSync(fd, 'utf8')) as LockInfo;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * The file system proper-lockfile uses, with two changes: removing the lock directory removes
 * the owner file inside it first (and an old-format lock file too, when stale); on release and
 * at exit only when the owner file is still ours, so a lock that replaced ours is left alone.
 * And the lock of another run known to be alive on this host (aliveHere) is never stale:
 * proper-lockfile judges staleness by the lock's mtime against this clock.
 */
function lockFs(token: string, guard: { releasing: boolean }) {
  const ours = (path: string) => ownerOf(path)?.token === token;
  return {
    ...fs,
    stat(path: string, callback: (err: NodeJS.ErrnoException | null, stats?: fs.Stats) => void) {
      fs.stat(path, (err, stats) => {
        const holder = err ? undefined : ownerOf(path);
        // Our own lock's refresh compares the mtime it set: it is passed on as it is.
        if (holder && holder.token !== token && aliveHere(holder)) Object.defineProperty(stats, 'mtime', { value: new Date() });
        callback(err, stats);
      });
    },
    rmdir(path: string, callback: (err: NodeJS.ErrnoException | null) => void) {
      try {
        if (!guard.releasing || ours(path)) removeLockDir(path);
        callback(null);
      } catch (err) {
        callback(err as NodeJS.ErrnoException);
      }
    },
    rmdirSync(path: string) {
      if (ours(path)) removeLockDir(path); // at process exit
    },
  };
}
