import { mkdir, mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { acquireLock, LOCK_FILE } from '../../src/core/lock.js';

/** The lock on a temporary directory (file system only, no Docker). */
const newDir = () => mkdtemp(join(tmpdir(), 'svu-lock-'));
const owner = async (dir: string) => JSON.parse(await readFile(join(dir, LOCK_FILE, 'owner.json'), 'utf8')) as { pid: number; command: string };

describe('the lock on a backup directory (proper-lockfile)', () => {
  it('is a directory naming its holder; a second run is refused with exit 8 naming it; release removes it', async () => {
    const dir = await newDir();
    const release = await acquireLock(dir, 'backup create --type daily');
    expect((await stat(join(dir, LOCK_FILE))).isDirectory()).toBe(true);
    expect(await owner(dir)).toMatchObject({ pid: process.pid, command: 'backup create --type daily' });
    await expect(acquireLock(dir, 'backup restore x')).rejects.toMatchObject({
      exitCode: 8,
      message: expect.stringMatching(new RegExp(`^Another stackvault run \\(backup create --type daily, pid ${process.pid}, since .*\\) holds the lock on `)),
    });
    await release();
    expect(await readdir(dir)).toEqual([]);
  });

  it('an empty lock just created by another process is not taken as stale', async () => {
    const dir = await newDir();
    await mkdir(join(dir, LOCK_FILE)); // what proper-lockfile's mkdir leaves before the owner file is written
    await expect(acquireLock(dir, 'backup create')).rejects.toMatchObject({ exitCode: 8, message: expect.stringMatching(/just starting: its details are not written yet/) });
    expect(await readdir(join(dir, LOCK_FILE))).toEqual([]); // untouched
    await rm(join(dir, LOCK_FILE), { recursive: true });
    await writeFile(join(dir, LOCK_FILE), ''); // an older stackvault's lock file, created but not yet written
    await expect(acquireLock(dir, 'backup create')).rejects.toMatchObject({ exitCode: 8 });
    expect(await readFile(join(dir, LOCK_FILE), 'utf8')).toBe('');
  });

  it('a lock not refreshed for a minute is stale and taken over, whoever held it', async () => {
    const dir = await newDir();
    await mkdir(join(dir, LOCK_FILE));
    await writeFile(join(dir, LOCK_FILE, 'owner.json'), JSON.stringify({ pid: 1, host: 'another-host', command: 'backup create', since: '2020-01-01T00:00:00Z' }));
    const old = new Date(Date.now() - 120_000);
    await utimes(join(dir, LOCK_FILE), old, old);
    const release = await acquireLock(dir, 'backup prune');
    expect(await owner(dir)).toMatchObject({ pid: process.pid, command: 'backup prune' });
    await release();
  });

  // Hunt: time. proper-lockfile judges a lock stale by its mtime against this clock: a clock
  // stepped ahead (NTP) or a VM resumed made a live run's lock look a minute old before its next
  // refresh, and a waiting run took it over and ran beside it.
  const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  it('the lock of a live run of this host is never stale by this clock, however old its mtime looks', async () => {
    const dir = await newDir();
    await mkdir(join(dir, LOCK_FILE));
    const alive = JSON.stringify({ pid: process.pid, host: hostname(), command: 'backup restore x', since: new Date().toISOString(), token: 'theirs', boot });
    await writeFile(join(dir, LOCK_FILE, 'owner.json'), alive);
    const old = new Date(Date.now() - 120_000); // as it looks right after a two-minute step ahead
    await utimes(join(dir, LOCK_FILE), old, old);
    await expect(acquireLock(dir, 'backup prune')).rejects.toMatchObject({ exitCode: 8, message: expect.stringMatching(/\(backup restore x, pid \d+, since /) });
    expect(await readFile(join(dir, LOCK_FILE, 'owner.json'), 'utf8')).toBe(alive);
  });

  it('a lock taken before this host rebooted is taken over at once, though another process has its pid now', async () => {
    const dir = await newDir();
    await mkdir(join(dir, LOCK_FILE));
    const before = { pid: process.pid, host: hostname(), command: 'backup create', since: new Date().toISOString(), token: 'theirs', boot: 'an-earlier-boot' };
    await writeFile(join(dir, LOCK_FILE, 'owner.json'), JSON.stringify(before));
    const release = await acquireLock(dir, 'backup create --type daily');
    expect(await owner(dir)).toMatchObject({ command: 'backup create --type daily', boot });
    await release();
  });

  // Review: a killed run's pid taken by another process (pids wrap; a run in a fresh container of
  // a fixed hostname gets the same small pid each time) made its lock look alive for good: its
  // mtime was read as now, so it never went stale, and every later run was refused (exit 8).
  const procOf = (pid: number) => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return `${readlinkSync('/proc/self/ns/pid')}${readlinkSync('/proc/self/ns/time')}:${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}`;
  };
  it('a lock whose pid another process has now (its start differs) is taken over at once', async () => {
    const dir = await newDir();
    const other = spawn('sleep', ['30'], { stdio: 'ignore' }); // an unrelated live process with the dead run's pid
    try {
      const real = procOf(other.pid!);
      await mkdir(join(dir, LOCK_FILE));
      const dead = { pid: other.pid, host: hostname(), command: 'backup create', since: '2026-01-01T00:00:00.000Z', token: 'theirs', boot, proc: `${real.split(':').slice(0, -1).join(':')}:1` };
      await writeFile(join(dir, LOCK_FILE, 'owner.json'), JSON.stringify(dead));
      const old = new Date(Date.now() - 3_600_000);
      await utimes(join(dir, LOCK_FILE), old, old);
      const release = await acquireLock(dir, 'backup create --type daily');
      expect(await owner(dir)).toMatchObject({ pid: process.pid, command: 'backup create --type daily', proc: procOf(process.pid) });
      await release();
      // The same process with its own start recorded is still a live holder, never stale.
      await mkdir(join(dir, LOCK_FILE));
      const alive = JSON.stringify({ ...dead, proc: real });
      await writeFile(join(dir, LOCK_FILE, 'owner.json'), alive);
      await utimes(join(dir, LOCK_FILE), old, old);
      await expect(acquireLock(dir, 'backup prune')).rejects.toMatchObject({ exitCode: 8 });
      expect(await readFile(join(dir, LOCK_FILE, 'owner.json'), 'utf8')).toBe(alive);
    } finally {
      other.kill();
    }
  });

  it('a fresh lock whose holder on this host is dead is taken over at once (also in the old file format)', async () => {
    const dir = await newDir();
    const dead = { pid: 2 ** 22 + 12345, host: hostname(), command: 'backup create', since: new Date().toISOString() };
    await mkdir(join(dir, LOCK_FILE));
    await writeFile(join(dir, LOCK_FILE, 'owner.json'), JSON.stringify(dead));
    await (await acquireLock(dir, 'one'))();
    await writeFile(join(dir, LOCK_FILE), JSON.stringify(dead));
    const release = await acquireLock(dir, 'two');
    expect(await owner(dir)).toMatchObject({ command: 'two' });
    await release();
  });

  it('release removes only our own lock: one that replaced it is left alone', async () => {
    const dir = await newDir();
    const release = await acquireLock(dir, 'backup create');
    // Another run took the lock over (say ours was judged stale) and holds it now.
    await rm(join(dir, LOCK_FILE), { recursive: true });
    await mkdir(join(dir, LOCK_FILE));
    const theirs = JSON.stringify({ pid: process.pid, host: hostname(), command: 'backup restore', since: new Date().toISOString(), token: 'theirs' });
    await writeFile(join(dir, LOCK_FILE, 'owner.json'), theirs);
    await release();
    expect(await readFile(join(dir, LOCK_FILE, 'owner.json'), 'utf8')).toBe(theirs);
  });

  it('release reads the owner file without blocking: a FIFO planted in its place does not hang the run', async () => {
    const dir = await newDir();
    const release = await acquireLock(dir, 'backup create');
    const owner = join(dir, LOCK_FILE, 'owner.json');
    await rm(owner);
    execFileSync('mkfifo', [owner]);
    // Before, release read it with a blocking read on the event loop; a writer started here opens it
    // after 3 s (and so ends that read), so the old code failed this test instead of hanging it.
    const writer = spawn('sh', ['-c', 'sleep 3; echo "{}" > "$1"', 'sh', owner], { stdio: 'ignore' });
    const started = Date.now();
    await release();
    expect(Date.now() - started).toBeLessThan(1500);
    writer.kill();
    await rm(join(dir, LOCK_FILE), { recursive: true });
  });

  it('waits for a holder that finishes', async () => {
    const dir = await newDir();
    const first = await acquireLock(dir, 'first');
    setTimeout(() => void first(), 700);
    const second = await acquireLock(dir, 'second', 10_000);
    expect(await owner(dir)).toMatchObject({ command: 'second' });
    await second();
  });
});
