import { existsSync } from 'node:fs';
import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { timestampPart } from '../../src/core/naming.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { writeFilesBackup } from '../support/manifests.js';
import { newProjectName, startRedis } from '../support/containers.js';
import { mountTmpfs } from '../support/mounts.js';
import { swapOnFirstDelete } from '../support/swap-attacker.js';

/**
 * The backup directory on a full disk or mounted read-only, as real file systems (a tmpfs, an
 * ext4 image on a loop device; the tests run as root). A full disk is when `backup cleanup` is
 * needed most: the lock it takes must not need the room it is about to free. No container.
 */
describe('a full or read-only backup directory', () => {
  const mounted: string[] = [];
  afterEach(async () => {
    for (const dir of mounted.splice(0)) await execa('umount', [dir], { reject: false });
  });
  const DAY = 86_400_000;
  const now = Math.floor(Date.now() / 1000) * 1000;
  const OLD = `bot_backup_${timestampPart(new Date(now - 40 * DAY))}`;
  const NEW = `bot_backup_${timestampPart(new Date(now - DAY))}`;

  /** Two backups, the older one with 1 MB of padding, then every byte of the file system taken. */
  async function fillWithBackups(dir: string): Promise<void> {
    for (const id of [OLD, NEW]) await writeFilesBackup(dir, id);
    await execa('dd', ['if=/dev/urandom', `of=${join(dir, OLD, 'padding')}`, 'bs=1M', 'count=1']);
    // Until the last block: dd stops at ENOSPC, with whatever block size is left.
    for (const bs of ['64k', '1k', '1']) await execa('dd', ['if=/dev/zero', `of=${join(dir, `filler-${bs}`)}`, `bs=${bs}`], { reject: false });
    expect((await execa('df', ['--output=avail', dir])).stdout.split('\n')[1]!.trim()).toBe('0');
  }

  const cleanupFreesTheDisk = async (dir: string) => {
    const r = await bot(['backup', 'cleanup', '30', '--dir', dir]);
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    expect(String(r.stdout)).toContain(`removed ${OLD}`);
    expect(String(r.stderr)).not.toMatch(/unexpected error|ENOSPC/);
    const entries = await readdir(dir);
    expect(entries).toContain(NEW);
    expect(entries).not.toContain(OLD);
    expect(entries).not.toContain('.stackvault.lock');
  };

  it('a full tmpfs (no room for the lock owner file): cleanup 30 removes the old backup, exit 0', async () => {
    const dir = await tempDir('full-tmpfs');
    await mountTmpfs(dir, 'size=2m');
    mounted.push(dir);
    await fillWithBackups(dir);
    await cleanupFreesTheDisk(dir);
  });

  it('a full ext4 (no block for the lock directory, an inode for a file): cleanup 30 removes the old backup, exit 0', async () => {
    const root = await tempDir('full-ext4');
    const image = join(root, 'fs.img');
    const dir = join(root, 'mnt');
    await mkdir(dir);
    await execa('truncate', ['-s', '8M', image]);
    // -m 0: no blocks reserved for root, so root (these tests) sees the disk full as a user would.
    await execa('mkfs.ext4', ['-q', '-m', '0', image]);
    const m = await execa('mount', ['-o', 'loop', image, dir], { reject: false });
    if (m.exitCode !== 0) throw new Error(`this test needs to mount an ext4 image on a loop device (run as root): ${m.stderr}`);
    mounted.push(dir);
    await fillWithBackups(dir);
    // What the lock used to need: a directory, which takes a data block here.
    expect((await execa('mkdir', [join(dir, 'probe')], { reject: false })).stderr).toMatch(/No space left/);
    await cleanupFreesTheDisk(dir);
  });

  it('a planted old backup whose directory is swapped for a symlink mid-removal: cleanup deletes nothing outside the backup directory', async () => {
    // The attacker plants an old backup (cleanup will remove it) holding a directory `d` whose
    // entries have the names of the victim's files, and swaps `d` for a symlink to the victim as
    // soon as the first entry of `d` is deleted. A walk by path (fs.rm) then unlinks the other
    // `d/f…` through the symlink: the victim's files.
    {
      const root = await tempDir('swap');
      const dir = join(root, 'backups');
      const victim = join(root, 'victim');
      const planted = 'zz_backup_20200101_000000';
      await mkdir(join(dir, planted, 'd'), { recursive: true });
      await mkdir(victim);
      await writeFilesBackup(dir, NEW);
      await writeFilesBackup(dir, planted);
      const names = Array.from({ length: 2000 }, (_, i) => `f${i}`);
      for (const n of names) {
        await writeFile(join(dir, planted, 'd', n), '');
        await writeFile(join(victim, n), 'precious');
      }
      await mkdir(join(root, 'attacker'));
      await symlink(victim, join(root, 'attacker', 'link'));
      const attacker = await swapOnFirstDelete(join(dir, planted, 'd'), join(root, 'attacker', 'link'));
      const r = await bot(['backup', 'cleanup', '30', '--dir', dir]);
      const swapped = await attacker.ended;
      expect(String(swapped.stdout), String(swapped.stderr)).toContain('swapped');
      expect((await readdir(victim)).length, 'files of the victim left').toBe(names.length);
      expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
      expect(await readdir(dir)).not.toContain(planted);
    }
  });

  it('read-only: verify shows its result and says it was not recorded; cleanup and delete are one sentence, exit 7', async () => {
    const dir = await tempDir('ro');
    await mountTmpfs(dir, 'size=2m');
    mounted.push(dir);
    for (const id of [OLD, NEW]) await writeFilesBackup(dir, id);
    await writeFile(join(dir, 'retention.json'), '{}');
    await execa('mount', ['-o', 'remount,ro', dir]);
    const v = await bot(['backup', 'verify', 'latest', '--dir', dir]);
    // Before: "unexpected error: EROFS … mkdir …/.stackvault.lock", exit 1, and no result shown.
    expect(v.exitCode, String(v.stdout) + String(v.stderr)).toBe(0);
    expect(String(v.stdout)).toMatch(/✅ app: checksum ok/);
    expect(String(v.stdout)).toMatch(/The result was not recorded in the manifest: The lock on the backup directory .* cannot be taken: read-only file system\./);
    for (const args of [
      ['backup', 'cleanup', '30'],
      ['backup', 'delete', OLD, '--yes'],
      ['backup', 'prune'],
    ]) {
      const r = await bot([...args, '--dir', dir]);
      expect(r.exitCode, `${args.join(' ')}: ${String(r.stderr)}`).toBe(7);
      expect(String(r.stderr)).toMatch(/^stackvault: The lock on the backup directory .* cannot be taken: read-only file system\.$/m);
      expect(String(r.stderr)).not.toMatch(/unexpected error/);
    }
    const report = await bot(['backup', 'report', '--dir', dir]);
    expect(report.exitCode, String(report.stderr)).toBe(7);
    expect(String(report.stderr)).toMatch(/^stackvault: The report cannot be written to .*report\.html: read-only file system\.\n {2}hint: Write it elsewhere with --out FILE\.$/m);
    expect((await readdir(dir)).sort()).toEqual([OLD, NEW, 'retention.json'].sort());
  });

  it('a real backup: its name taken by a file or symlink gets the next free one; read-only, verify --deep passes and says it was not recorded', async () => {
    const project = newProjectName('ro-deep');
    const redis = await startRedis({ project });
    try {
      await redis.exec(['redis-cli', 'set', 'greeting', 'hello']);
      const dir = await tempDir('ro-deep');
      await mountTmpfs(dir, 'size=8m');
      mounted.push(dir);
      const c = await bot(['backup', 'create', '--project', project, '--dir', dir]);
      expect(c.exitCode, String(c.stderr)).toBe(0);
      // The next backup's name is taken by what is no directory: files and a symlink for every
      // second of the next three minutes. Before, the final rename failed after all the work.
      const from = Math.floor(Date.now() / 1000) * 1000;
      for (let s = 0; s < 180; s++) {
        const taken = join(dir, `stackvault_backup_${timestampPart(new Date(from + s * 1000))}`);
        if (!existsSync(taken)) await (s % 2 ? writeFile(taken, '') : symlink('/nonexistent', taken)); // the first backup's own second is taken already
      }
      const again = await bot(['backup', 'create', '--project', project, '--dir', dir, '--json']);
      expect(again.exitCode, String(again.stderr)).toBe(0);
      expect((JSON.parse(String(again.stdout)) as { id: string }).id).toMatch(/^stackvault_backup_\d{8}_\d{6}_2$/);
      await execa('mount', ['-o', 'remount,ro', dir]);
      const v = await bot(['backup', 'verify', 'latest', '--deep', '--dir', dir]);
      // Before: the throwaway's stopped-container marker could not be written, and a sound backup
      // "failed deep verification" (exit 5) because its directory was read-only.
      expect(v.exitCode, String(v.stdout) + String(v.stderr)).toBe(0);
      expect(String(v.stdout)).toMatch(/✅ redis: .*restored copy holds .*"keys":1/);
      expect(String(v.stdout)).toMatch(/The result was not recorded in the manifest: .* read-only file system\./);
    } finally {
      await redis.stop();
    }
  });
});
