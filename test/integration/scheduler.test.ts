import { execa } from 'execa';
import { createServer, type Server } from 'node:http';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot, REPO_ROOT } from '../support/cli.js';
import { newProjectName, startRedis } from '../support/containers.js';

const OTHER_LINES = ['# a comment someone keeps', "17 5 * * * /bin/true # somebody else's job"];

/** A real cron daemon (Debian's cron) fires the installed schedule. */
describe('scheduler with a real cron daemon', () => {
  let redis: StartedTestContainer;
  let server: Server;
  const pings: string[] = [];
  let saved = '';

  beforeAll(async () => {
    if ((await execa('pgrep', ['-x', 'cron'], { reject: false })).exitCode !== 0) {
      const started = await execa('cron', [], { reject: false });
      if (started.exitCode !== 0) throw new Error(`the scheduler test needs Debian's cron daemon: ${started.stderr}`);
    }
    saved = (await execa('crontab', ['-l'], { reject: false })).stdout;
    await execa('crontab', ['-'], { input: `${OTHER_LINES.join('\n')}\n` });
    redis = await startRedis({ project: newProjectName('sched') });
    server = createServer((req, res) => {
      pings.push(req.url ?? '');
      res.end('ok');
    }).listen(0, '127.0.0.1');
  });

  afterAll(async () => {
    await bot(['scheduler', 'uninstall']);
    await execa('crontab', ['-'], { input: saved ? `${saved}\n` : '' });
    server?.close();
    await redis?.stop();
  });

  it('installs one marked entry, fires within two minutes with the right type and a log, and uninstalls cleanly', async () => {
    const dir = await tempDir('sched');
    const project = await inspectProject(redis);
    const port = (server.address() as { port: number }).port;
    const install = await bot(['scheduler', 'install', '* * * * *', '--type', 'weekly', '--dir', dir, '--project', project, '--ping', `http://127.0.0.1:${port}/hc`]);
    expect(install.exitCode, String(install.stderr)).toBe(0);
    const again = await bot(['scheduler', 'install', '* * * * *', '--type', 'weekly', '--dir', dir, '--project', project, '--ping', `http://127.0.0.1:${port}/hc`]);
    expect(again.exitCode).toBe(0);
    const tab = (await execa('crontab', ['-l'])).stdout.split('\n');
    expect(tab.filter((l) => l.includes('# stackvault-scheduler'))).toHaveLength(1); // replaced, not duplicated
    expect(tab).toEqual(expect.arrayContaining(OTHER_LINES));
    // The ping URL (its path is a healthchecks key) is read from a file at each run, never written into the line.
    expect(tab.join('\n')).not.toContain(`127.0.0.1:${port}/hc`);

    let manifest: Manifest | undefined;
    for (let i = 0; i < 75 && !manifest; i++) {
      await new Promise((r) => setTimeout(r, 2000));
      const id = (await readdir(dir)).find((n) => n.startsWith('stackvault_backup_'));
      if (id) manifest = JSON.parse(await readFile(join(dir, id, 'manifest.json'), 'utf8')) as Manifest;
    }
    expect(manifest, 'cron did not run the scheduled backup within 150 s').toBeDefined();
    expect(manifest!.type).toBe('weekly');
    expect(manifest!.services.map((s) => s.name)).toEqual(['redis']);
    for (let i = 0; i < 20 && !(await readFile(join(dir, 'scheduler.log'), 'utf8').catch(() => '')).includes('backup ok'); i++) await new Promise((r) => setTimeout(r, 500));
    const log = await readFile(join(dir, 'scheduler.log'), 'utf8');
    expect(log).toMatch(/scheduled weekly backup starting/);
    expect(log).toMatch(/scheduled weekly backup ok \(stackvault_backup_/);
    expect(pings).toEqual(expect.arrayContaining(['/hc/start', '/hc']));
    const { stat } = await import('node:fs/promises');
    expect((await stat(join(dir, 'scheduler.log'))).mode & 0o777).toBe(0o600);

    const status = await bot(['scheduler', 'status', '--dir', dir]);
    expect(String(status.stdout)).toMatch(/Installed: weekly backups cron "\* \* \* \* \*"/);
    expect(String(status.stdout)).toMatch(/Last run: .*: ok \(stackvault_backup_/);
    expect(String(status.stdout)).toContain(`Log:         ${dir}/scheduler.log`);

    const removed = await bot(['scheduler', 'uninstall']);
    expect(String(removed.stdout)).toMatch(/Removed/);
    const after = (await execa('crontab', ['-l'])).stdout.split('\n').filter(Boolean);
    expect(after).toEqual(OTHER_LINES);
  });

  it('scripts/backup_scheduler.sh is the same front door', async () => {
    const r = await execa(join(REPO_ROOT, 'scripts', 'backup_scheduler.sh'), ['--help'], { reject: false });
    expect(r.exitCode).toBe(0);
    for (const verb of ['install', 'uninstall', 'status', 'trigger']) expect(r.stdout).toContain(verb);
  });
});

async function inspectProject(c: StartedTestContainer): Promise<string> {
  const Docker = (await import('dockerode')).default;
  return (await new Docker().getContainer(c.getId()).inspect()).Config.Labels['com.docker.compose.project']!;
}

describe('scheduler trigger: retention only after a fully successful backup', () => {
  const started: StartedTestContainer[] = [];
  afterAll(async () => {
    await Promise.all(started.map((c) => c.stop().catch(() => undefined)));
  });

  /** A daily backup of January `day`, 2020 (midnight UTC), copied from a real one. */
  async function oldDaily(dir: string, source: Manifest, day = 1) {
    const { cp, writeFile } = await import('node:fs/promises');
    const id = `stackvault_backup_2020010${day}_000000`;
    await cp(join(dir, source.id), join(dir, id), { recursive: true });
    await writeFile(join(dir, id, 'manifest.json'), JSON.stringify({ ...source, id, type: 'daily', createdAt: `2020-01-0${day}T00:00:00.000Z` }));
    return id;
  }

  it('prunes after success, keeps everything after a partial run', async () => {
    const project = newProjectName('trigger');
    const redis = await startRedis({ project });
    started.push(redis);
    const dir = await tempDir('trigger');
    const first = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    const source = JSON.parse(String(first.stdout)) as Manifest;
    const old = await oldDaily(dir, source);
    // Six newer dailies: with the run's own, the 7 newer ones after which the policy lets a daily older than 7 days go.
    for (let day = 2; day <= 7; day++) await oldDaily(dir, source, day);

    // A service that cannot be backed up makes the run partial: retention must not run.
    const { GenericContainer } = await import('testcontainers');
    const { IMAGES } = await import('../support/images.js');
    const broken = await new GenericContainer(IMAGES.app).withLabels({ 'com.docker.compose.project': project, 'com.docker.compose.service': 'fake-pg', 'stackvault.driver': 'postgres' }).start();
    started.push(broken);
    const partial = await bot(['scheduler', 'trigger', '--type', 'daily', '--dir', dir, '--project', project]);
    expect(partial.exitCode).toBe(3);
    expect(String(partial.stdout)).toMatch(/backup was partial: retention skipped/);
    expect(await readdir(dir)).toContain(old);

    await broken.stop();
    const ok = await bot(['scheduler', 'trigger', '--type', 'daily', '--dir', dir, '--project', project]);
    expect(ok.exitCode, String(ok.stdout) + String(ok.stderr)).toBe(0);
    expect(String(ok.stdout)).toMatch(new RegExp(`retention removed ${old}: daily: older than 7 days and 7 newer successful daily backups exist`));
    expect(String(ok.stdout)).not.toMatch(/retention removed stackvault_backup_2020010[2-7]/);
    expect(await readdir(dir)).not.toContain(old);
  });
});
