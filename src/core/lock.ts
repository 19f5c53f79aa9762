import { hostname } from 'node:os';
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ExitCode, StackvaultError } from '../errors.js';
import { sleep } from '../util/time.js';

export const LOCK_FILE = '.stackvault.lock';

interface LockInfo {
  pid: number;
  host: string;
  command: string;
  since: string;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One stackvault run at a time per backup directory. The lock file is created with O_EXCL; a
 * lock whose process is gone (same host) is taken over. Waits up to `waitMs`, then fails.
 */
export async function acquireLock(dir: string, command: string, waitMs = 0): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  const deadline = Date.now() + waitMs;
  for (;;) {
    const mine: LockInfo = { pid: process.pid, host: hostname(), command, since: new Date().toISOString() };
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(JSON.stringify(mine));
      await handle.close();
      return async () => { await rm(path, { force: true }); };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readLock(path);
    if (!holder || (holder.host === hostname() && !processAlive(holder.pid))) {
      await rm(path, { force: true }); // stale: its process is gone
      continue;
    }
    if (Date.now() >= deadline) {
      throw new StackvaultError(
        `Another stackvault run (${holder.command}, pid ${holder.pid}, since ${holder.since}) holds the lock on ${dir}.`,
        ExitCode.locked,
        'Wait for it to finish; a lock left by a process that died is taken over automatically.',
      );
    }
    await sleep(500);
  }
}

async function readLock(path: string): Promise<LockInfo | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LockInfo;
  } catch {
    return undefined; // unreadable or half-written: treat as stale
  }
}
