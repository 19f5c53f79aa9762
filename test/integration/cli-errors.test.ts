import { execa } from 'execa';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backupDirEntries, tempDir } from '../support/artifacts.js';
import { bot, REPO_ROOT } from '../support/cli.js';
import { newProjectName } from '../support/containers.js';
import { mountTmpfs } from '../support/mounts.js';
import { writtenManifest, writtenService } from '../support/manifests.js';

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

  it('a --dir of non-UTF-8 bytes: exit 2; a name longer than a file system allows: exit 7; one sentence each, nothing made', async () => {
    const parent = await tempDir('dirnames');
    // Through a shell: a JavaScript string cannot carry the raw bytes \xff\xfe in argv.
    const bytes = await execa('bash', ['-c', `./bot.sh backup create --dir "$1"$'\\xff\\xfe'`, 'sh', join(parent, 'nonutf')], { cwd: REPO_ROOT, reject: false });
    expect(bytes.exitCode).toBe(2);
    expect(String(bytes.stderr)).toMatch(/stackvault: The backup directory \(--dir or BACKUP_DIR\) holds bytes that are not UTF-8/);
    const long = await bot(['backup', 'create', '--dir', join(parent, 'y'.repeat(300))]);
    expect(long.exitCode).toBe(7);
    expect(String(long.stderr)).toMatch(/stackvault: The backup directory cannot exist: its name y+… has 300 bytes, more than the 255 a file system allows\./);
    expect(String(long.stderr)).not.toMatch(/unexpected error|ENAMETOOLONG/);
    expect(await readdir(parent)).toEqual([]);
  });

  it('a read-only backup directory: exit 7 before anything is stopped or written', async () => {
    const dir = await tempDir('ro');
    await mountTmpfs(dir, 'size=1m,ro');
    try {
      const r = await bot(['backup', 'create', '--dir', dir]);
      expect(r.exitCode).toBe(7);
      // What is wrong with it, not a guess at permissions: the mount is read-only.
      expect(String(r.stderr)).toMatch(/The backup directory .* is on a read-only file system\./);
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
    // Decimal digits only, like every other count: Number() would read 0x10 as 16.
    const hex = await bot(['backup', 'create', '--parallel', '0x10']);
    expect(hex.exitCode).toBe(2);
    expect(String(hex.stderr)).toBe("stackvault: --parallel must be a whole number of at least 1, not '0x10'.\n");
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

  it('an operations.log replaced by a symlink is not written through, and the run says so', async () => {
    const dir = await tempDir('oplog-link');
    const outside = join(await tempDir('oplog-outside'), 'victim');
    await writeFile(outside, 'precious\n');
    await symlink(outside, join(dir, 'operations.log'));
    const r = await bot(['backup', 'cleanup', '30', '--dir', dir]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stderr)).toMatch(/warning: the operations log was not written: .*operations\.log is a symbolic link/);
    expect(await readFile(outside, 'utf8')).toBe('precious\n');
  });

  it('a planted or corrupted backup is listed as incomplete with its reason, costs no real backup, and nothing of it reaches the terminal raw', async () => {
    const dir = await tempDir('planted');
    const real = ['sv_backup_20260801_000000', 'sv_backup_20260901_000000'];
    const service = writtenService({
      container: 'app',
      containerId: 'x',
      image: 'x',
      driver: 'nosuch',
      artifact: 'a',
      bytes: 2,
      sha256: '8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4',
    });
    const manifest = (id: string, createdAt: string, over: Record<string, unknown> = {}) => writtenManifest(id, [service], { createdAt, completedAt: createdAt, ...over });
    const plant = async (name: string, m: unknown) => {
      await mkdir(join(dir, name));
      await writeFile(join(dir, name, 'a'), 'hi');
      await writeFile(join(dir, name, 'manifest.json'), JSON.stringify(m));
    };
    await plant(real[0]!, manifest(real[0]!, '2026-08-01T00:00:00.000Z'));
    await plant(real[1]!, manifest(real[1]!, '2026-09-01T00:00:00.000Z', { comment: '\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\\x1b[1A\x1b[2K' }));
    await plant('zz_backup_20991231_000000', { ...manifest('zz_backup_20991231_000000', '2099-12-31T00:00:00Z', { type: 'manual' }), services: [] });
    await plant('evil\x1b[2J\x1b]0;pwned\x07', manifest('evil\x1b[2J\x1b]0;pwned\x07', '2026-11-30T00:00:00Z'));
    await plant('sv_backup_20260602_000000', manifest('sv_backup_20260602_000000', '2026-06-02T00:00:00Z', { status: 5 }));
    await plant('sv_backup_20260603_000000', manifest('sv_backup_20260603_000000', '2026-06-03T00:00:00Z', { services: [{ ...service, status: 'ok\x1b[2J\x07' }] }));
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
    const raw = /\x1b|\x07|\r/;

    const all = await bot(['backup', 'list', '--all', '--dir', dir]);
    expect(all.exitCode).toBe(0);
    expect(String(all.stdout)).not.toMatch(raw);
    expect(String(all.stdout)).toMatch(/2 backups in .*newest first:\n\nsv_backup_20260901_000000 /);
    expect(String(all.stdout)).toContain('zz_backup_20991231_000000: manifest.json is not a valid stackvault manifest: services is empty');
    expect(String(all.stdout)).toContain('evil\\x1b[2J\\x1b]0;pwned\\x07: manifest.json is not a valid stackvault manifest: id is not a backup name');
    expect(String(all.stdout)).toContain("sv_backup_20260602_000000: manifest.json is not a valid stackvault manifest: status is not 'ok' or 'partial'.");
    expect(String(all.stdout)).toContain("sv_backup_20260603_000000: manifest.json is not a valid stackvault manifest: services[0].status is 'ok\\x1b[2J\\x07'.");
    // --json carries the reason as it is (JSON escapes its control characters itself), not \xNN text.
    const json = await bot(['backup', 'list', '--all', '--json', '--dir', dir]);
    expect(json.exitCode).toBe(0);
    expect(String(json.stdout)).not.toMatch(raw);
    const reasons = (JSON.parse(String(json.stdout)) as { incomplete: Array<{ name: string; reason: string }> }).incomplete;
    expect(reasons.find((d) => d.name === 'sv_backup_20260603_000000')?.reason).toBe("manifest.json is not a valid stackvault manifest: services[0].status is 'ok\x1b[2J\x07'.");

    // Asked for by name, an invalid backup is an integrity error (exit 5) in one sentence.
    const named = await bot(['backup', 'verify', '20260602_000000', '--dir', dir]);
    expect(named.exitCode).toBe(5);
    expect(String(named.stderr)).toMatch(/^stackvault: sv_backup_20260602_000000 is not a usable backup: manifest.json is not a valid stackvault manifest: status is not 'ok' or 'partial'\.\n$/);
    const escaped = await bot(['backup', 'verify', '20260603_000000', '--dir', dir]);
    expect(escaped.exitCode).toBe(5);
    expect(String(escaped.stderr)).toContain("services[0].status is 'ok\\x1b[2J\\x07'");
    expect(String(escaped.stderr)).not.toMatch(raw);
    const typo = await bot(['backup', 'restore', 'nope\x1b[31m', '--dir', dir]);
    expect(typo.exitCode).toBe(4);
    expect(String(typo.stderr)).not.toMatch(raw);
    expect(String(typo.stderr)).toContain("No backup 'nope\\x1b[31m'");

    for (const command of [
      ['backup', 'stats'],
      ['backup', 'report'],
      ['backup', 'list', '--json'],
    ]) {
      const r = await bot([...command, '--dir', dir]);
      expect(r.exitCode, `${command.join(' ')}: ${String(r.stderr)}`).toBe(0);
      expect(String(r.stdout) + String(r.stderr)).not.toMatch(/unexpected error/);
    }

    // Typed numbers are decimal digits only; the planted backup does not move "newest successful".
    const hex = await bot(['backup', 'cleanup', '0x1E', '--dir', dir]);
    expect(hex.exitCode).toBe(2);
    expect(String(hex.stderr)).toBe("stackvault: DAYS must be a whole number of at least 1, not '0x1E'.\n");
    const cleanup = await bot(['backup', 'cleanup', '30', '--dir', dir]);
    expect(cleanup.exitCode, String(cleanup.stderr)).toBe(0);
    expect(String(cleanup.stdout)).toContain(`removed ${real[0]}`);
    expect(await readdir(dir)).toContain(real[1]);

    // A retention.json that is not a policy: one sentence naming the file, exit 2.
    await writeFile(join(dir, 'retention.json'), 'null');
    const prune = await bot(['backup', 'prune', '--dry-run', '--dir', dir]);
    expect(prune.exitCode).toBe(2);
    expect(String(prune.stderr)).toBe(`stackvault: ${join(dir, 'retention.json')} must hold a JSON object, e.g. {"dailyDays": 14}.\n`);
  });

  it('a crafted scheduler state file: status and report say it is not one stackvault wrote, and nothing of it reaches the terminal raw', async () => {
    const dir = await tempDir('crafted-state');
    const state = join(dir, '.scheduler-state.json');
    const written = { at: '2026-06-01T02:00:00.000Z', type: 'daily', result: 'failed', error: 'disk \u001b]0;owned\u0007full', backupId: 'x\u001b[2J', durationMs: 5 };
    await writeFile(state, JSON.stringify(written));
    const escaped = await bot(['scheduler', 'status', '--dir', dir]);
    expect(escaped.exitCode).toBe(0);
    expect(String(escaped.stdout)).toContain('failed');
    expect(String(escaped.stdout)).not.toContain('\u001b');
    expect(String(escaped.stdout)).not.toContain('\u0007');
    expect(JSON.parse(String((await bot(['scheduler', 'status', '--dir', dir, '--json'])).stdout)).lastRun.error).toBe(written.error);
    for (const crafted of ['{not json', JSON.stringify({ ...written, at: 5 }), JSON.stringify({ ...written, result: 'great' }), 'null', '[]']) {
      await writeFile(state, crafted);
      const status = await bot(['scheduler', 'status', '--dir', dir]);
      expect(status.exitCode, crafted).toBe(0);
      expect(String(status.stdout)).toMatch(/Last run: +unknown/);
      expect(String(status.stdout)).toMatch(/warning: .*scheduler-state\.json is not a state file stackvault wrote/);
      const report = await bot(['backup', 'report', '--dir', dir, '--out', join(dir, 'report.html')]);
      expect(report.exitCode, `${crafted}: ${report.stderr}`).toBe(0);
    }
  });
});
