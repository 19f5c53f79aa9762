import { execa } from 'execa';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backupDirEntries, tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName } from '../support/containers.js';
import { mountTmpfs } from '../support/mounts.js';

/** Bad input gets one clear sentence and a documented exit code, and changes nothing. */
describe('CLI errors', () => {
  it('unknown commands exit 2', async () => {
    const r = await bot(['frobnicate']);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(/unknown command 'frobnicate'/);
    expect((await bot(['backup', 'explode'])).exitCode).toBe(2);
  });

  it('--help shows the command tree, examples and exit codes', async () => {
    const top = await bot(['--help']);
    expect(top.exitCode).toBe(0);
    expect(String(top.stdout)).toMatch(/backup[\s\S]*scheduler[\s\S]*demo[\s\S]*Exit codes:/);
    const backup = await bot(['backup', '--help']);
    for (const verb of ['create', 'list', 'restore', 'verify', 'cleanup', 'stats']) expect(String(backup.stdout)).toContain(verb);
    expect(String(backup.stdout)).toContain('Examples:');
    const scheduler = await bot(['scheduler', '--help']);
    for (const verb of ['install', 'uninstall', 'status', 'trigger']) expect(String(scheduler.stdout)).toContain(verb);
  });

  it('only a backup run writes the metrics file: a scheduler install passes --metrics on and writes none', async () => {
    const dir = await tempDir('metrics-only-runs');
    const file = join(dir, 'stackvault.prom');
    const r = await bot(['scheduler', 'install', 'fortnightly', '--dir', dir, '--metrics', file]);
    expect(r.exitCode).toBe(2);
    const failedRun = await bot(['backup', 'create', '--dir', dir, '--metrics', file], { env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' } });
    expect(failedRun.exitCode).toBe(6);
    // The failed run is what monitoring must see, and nothing else overwrote it.
    expect(await readFile(file, 'utf8')).toMatch(/stackvault_last_run_exit_code\S* 6/);
    await bot(['scheduler', 'install', 'fortnightly', '--dir', dir, '--metrics', file]);
    expect(await readFile(file, 'utf8')).toMatch(/stackvault_last_run_exit_code\S* 6/);
  });

  it('Docker unreachable: exit 6, one sentence, no backup directory content', async () => {
    const dir = await tempDir('nodocker');
    const r = await bot(['backup', 'create', '--dir', dir], { env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' } });
    expect(r.exitCode).toBe(6);
    expect(String(r.stderr)).toMatch(/Docker engine at unix:\/\/\/nonexistent\/docker.sock is unreachable/);
    expect(String(r.stderr)).not.toMatch(/at .*\.js:\d+/); // no stack trace
    expect(await backupDirEntries(dir)).toEqual([]);
  });

  it('a backup path that is a file: exit 7', async () => {
    const parent = await tempDir('file');
    await writeFile(join(parent, 'file'), '');
    const r = await bot(['backup', 'create', '--dir', join(parent, 'file')]);
    expect(r.exitCode).toBe(7);
    expect(String(r.stderr)).toMatch(/backup directory .*file is not a directory/);
  });

  it('a read-only backup directory: exit 7 before anything is stopped or written', async () => {
    const dir = await tempDir('ro');
    await mountTmpfs(dir, 'size=1m,ro');
    try {
      const r = await bot(['backup', 'create', '--dir', dir]);
      expect(r.exitCode).toBe(7);
      expect(String(r.stderr)).toMatch(/backup directory .* is not writable/);
    } finally {
      await execa('umount', [dir]);
    }
  });

  it('nothing to back up: exit 4 with how to label a container', async () => {
    const dir = await tempDir('none');
    const r = await bot(['backup', 'create', '--dir', dir, '--project', newProjectName('empty')]);
    expect(r.exitCode).toBe(4);
    expect(String(r.stderr)).toMatch(/No datastore containers found in Compose project/);
    expect(String(r.stderr)).toMatch(/stackvault.driver=postgres/);
    expect(await backupDirEntries(dir)).toEqual([]);
  });

  it('bad flag values exit 2', async () => {
    expect((await bot(['backup', 'create', '--compress', 'lzma'])).exitCode).toBe(2);
    expect((await bot(['backup', 'create', '--parallel', '0'])).exitCode).toBe(2);
    expect((await bot(['backup', 'create', '--type', 'hourly'])).exitCode).toBe(2);
  });

  it('list: a missing directory exits 7, incomplete directories are not listed as backups', async () => {
    expect((await bot(['backup', 'list', '--dir', '/nonexistent/backups'])).exitCode).toBe(7);
    const dir = await tempDir('list');
    await mkdir(join(dir, '.tmp-stackvault_backup_20261121_020000'));
    await mkdir(join(dir, 'stackvault_backup_20261120_020000'));
    await writeFile(join(dir, 'stackvault_backup_20261120_020000', 'manifest.json'), '{"truncated":');
    const r = await bot(['backup', 'list', '--dir', dir, '--json']);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(String(r.stdout))).toEqual([]);
    const all = await bot(['backup', 'list', '--dir', dir, '--all']);
    expect(String(all.stdout)).toMatch(/Incomplete[\s\S]*\.tmp-stackvault_backup_20261121_020000: unfinished[\s\S]*stackvault_backup_20261120_020000: manifest.json is not valid JSON/);
  });
});
