import { execa } from 'execa';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/artifacts.js';
import { bot, REPO_ROOT } from '../support/cli.js';
import { newProjectName, psql, startPostgres } from '../support/containers.js';
import { type ResticServer, startResticServer } from '../support/restic-server.js';

const DAY = 86_400_000;

/**
 * `./bot.sh ARGS` as a user runs it on a host whose clock says `at` (libfaketime: the process
 * and its children see that time, running on from it; Docker and the containers keep the real
 * one). `@<epoch seconds>` names the instant whatever the time zone, which is `tz`, as the host's.
 */
function botAt(at: Date, tz: string, args: string[], env: Record<string, string> = {}) {
  return execa('faketime', ['--exclude-monotonic', `@${Math.floor(at.getTime() / 1000)}`, './bot.sh', ...args], {
    cwd: REPO_ROOT,
    env: { ...env, TZ: tz },
    reject: false,
    timeout: 240_000,
  });
}

/**
 * Hunt: time, through the CLI on a real Postgres. The host's clock jumps years ahead (a wrong
 * RTC), the scheduled job runs under it, and NTP sets it back: the history must survive the run,
 * and the backup made under the wrong clock must still restore.
 */
describe('a clock that jumped ahead and was set back', () => {
  let pg: StartedTestContainer;
  let dir: string;
  const project = newProjectName('clock');
  const history: string[] = [];
  let ahead = '';

  beforeAll(async () => {
    pg = await startPostgres({ project });
    dir = await tempDir('clock');
    await psql(pg, 'bot', "CREATE TABLE t (v text); INSERT INTO t VALUES ('history')");
    // A week of backups by a right clock, in the time zones of the hosts that made them
    // (names and dates are UTC, so the zone must not matter).
    const now = Date.now();
    const made: Array<[number, string, string]> = [
      [6, 'weekly', 'America/St_Johns'],
      [5, 'monthly', 'Pacific/Chatham'],
      [4, 'daily', 'Asia/Kolkata'],
      [3, 'daily', 'Europe/Berlin'],
      [2, 'daily', 'UTC'],
      [1, 'daily', 'Asia/Kolkata'],
    ];
    for (const [daysAgo, type, tz] of made) {
      const r = await botAt(new Date(now - daysAgo * DAY), tz, ['backup', 'create', '--json', '--type', type, '--project', project, '--dir', dir]);
      expect(r.exitCode, String(r.stderr)).toBe(0);
      history.push((JSON.parse(String(r.stdout)) as { id: string }).id);
    }
  });
  afterAll(async () => {
    await pg?.stop();
  });

  it('the scheduled run under a clock five years ahead keeps every backup made before it', async () => {
    await psql(pg, 'bot', "INSERT INTO t VALUES ('made under the wrong clock')");
    const run = await botAt(new Date(Date.now() + 5 * 365 * DAY), 'Europe/Berlin', ['scheduler', 'trigger', '--type', 'daily', '--project', project, '--dir', dir]);
    expect(run.exitCode, String(run.stdout) + String(run.stderr)).toBe(0);
    // Before: "retention removed …" for each daily, the weekly and the monthly: by age, every one was years old.
    expect(String(run.stdout)).not.toMatch(/retention removed/);
    const names = await readdir(dir);
    for (const id of history) expect(names).toContain(id);
    ahead = names.find((n) => n.startsWith('stackvault_backup_20') && !history.includes(n))!;
    expect(ahead).toMatch(/^stackvault_backup_20(2[6-9]|3\d)/);
  });

  it('once the clock is right again, that backup is listed apart and restored by its ID, by content; it is never "latest"', async () => {
    await psql(pg, 'bot', "INSERT INTO t VALUES ('after the clock was fixed')");
    const list = await bot(['backup', 'list', '--dir', dir]);
    expect(list.exitCode).toBe(0);
    expect(String(list.stdout)).toContain(`Restore the newest with: ./bot.sh backup restore ${history.at(-1)}`);
    expect(String(list.stdout)).toMatch(new RegExp(`1 backup dated ahead of this clock [^\\n]*restore, verify or delete it by its ID:\\n\\n${ahead} `));

    // Before: "… is not a usable backup: … createdAt lies in the future", exit 5, for restore, verify and delete alike.
    const restored = await bot(['backup', 'restore', ahead, '--yes', '--dir', dir]);
    expect(restored.exitCode, String(restored.stdout) + String(restored.stderr)).toBe(0);
    expect(await psql(pg, 'bot', 'SELECT v FROM t ORDER BY v')).toBe('history\nmade under the wrong clock');

    const latest = await bot(['backup', 'verify', 'latest', '--dir', dir]);
    expect(latest.exitCode, String(latest.stderr)).toBe(0);
    expect(String(latest.stdout)).toContain(`Backup ${history.at(-1)}: all`);
  });

  it('stats, report and the metrics file count that backup and say it is dated ahead; the last success is never later than now', async () => {
    const all = JSON.parse(String((await bot(['backup', 'list', '--all', '--json', '--dir', dir])).stdout)) as { backups: Array<{ id: string }>; ahead: Array<{ id: string }> };
    expect(all.ahead.map((b) => b.id)).toEqual([ahead]);
    // Before: stats, report and metrics knew only the backups they could place in time: that one was in no count.
    const stats = await bot(['backup', 'stats', '--json', '--dir', dir]);
    expect(stats.exitCode, String(stats.stderr)).toBe(0);
    const s = JSON.parse(String(stats.stdout)) as { backups: number; ahead: Array<{ id: string }>; newest: { id: string }; lastSuccessful: { id: string } };
    expect(s.backups).toBe(all.backups.length + 1);
    expect(s.ahead.map((b) => b.id)).toEqual([ahead]);
    expect(s.newest.id).not.toBe(ahead);
    expect(s.lastSuccessful.id).not.toBe(ahead);
    const text = String((await bot(['backup', 'stats', '--dir', dir])).stdout);
    expect(text).toMatch(new RegExp(`^${all.backups.length + 1} backups \\(1 dated ahead of this clock, below\\)`));
    expect(text).toMatch(new RegExp(`Dated ahead of this clock [^\\n]*\\n  ${ahead} \\(`));

    const html = join(dir, 'report-clock.html');
    const report = await bot(['backup', 'report', '--out', html, '--dir', dir]);
    expect(report.exitCode, String(report.stderr)).toBe(0);
    expect(String(report.stdout)).toContain(`Report of ${all.backups.length + 1} backups`);
    expect(await readFile(html, 'utf8')).toMatch(new RegExp(`<h2 id="ahead">Dated ahead of this clock</h2>[\\s\\S]*<td>${ahead}</td>`));

    const metricsFile = join(dir, 'clock.prom');
    const made = await bot(['backup', 'create', '--metrics', metricsFile, '--project', project, '--dir', dir]);
    expect(made.exitCode, String(made.stderr)).toBe(0);
    const metrics = await readFile(metricsFile, 'utf8');
    expect(metrics).toContain(`stackvault_backups{project="${project}"} ${all.backups.length + 2}`);
    expect(metrics).toContain(`stackvault_backups_ahead_of_clock{project="${project}"} 1`);
    const lastSuccess = Number(new RegExp(`^stackvault_last_success_timestamp_seconds\\{project="${project}"\\} (\\d+)$`, 'm').exec(metrics)?.[1]);
    const lastRun = Number(new RegExp(`^stackvault_last_run_timestamp_seconds\\{project="${project}"\\} (\\d+)$`, 'm').exec(metrics)?.[1]);
    expect(lastSuccess).toBeGreaterThan(0);
    expect(lastSuccess).toBeLessThanOrEqual(lastRun);
  });

  it('a backup made now says the clock is behind that one; cleanup leaves it; delete removes it', async () => {
    const made = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(made.exitCode, String(made.stderr)).toBe(0);
    const id = (JSON.parse(String(made.stdout)) as { id: string }).id;
    // --json: warnings go to stderr
    expect(String(made.stdout) + String(made.stderr)).toMatch(new RegExp(`This clock \\([^)]*\\) is behind the time in the name of ${ahead} .*restore this one by its ID, ${id}\\.`));

    const cleanup = await bot(['backup', 'cleanup', '1', '--dir', dir]);
    expect(cleanup.exitCode, String(cleanup.stderr)).toBe(0);
    expect(await readdir(dir)).toContain(ahead);
    expect(await readdir(dir)).toContain(id);

    const deleted = await bot(['backup', 'delete', ahead, '--yes', '--dir', dir]);
    expect(deleted.exitCode, String(deleted.stderr)).toBe(0);
    expect(await readdir(dir)).not.toContain(ahead);
  });

  it("a run that sees this host's clock two minutes past another live run's last refresh of the lock (an NTP step, a resumed VM) does not take it over", async () => {
    // A process that holds the lock the way stackvault does (dist/ is what bot.sh runs).
    const holder = execa(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { acquireLock } = await import(${JSON.stringify(join(REPO_ROOT, 'dist/core/lock.js'))});
        await acquireLock(process.argv[1], 'backup restore (a long one)');
        console.log('locked');
        setInterval(() => {}, 1000);`,
        dir,
      ],
      { reject: false },
    );
    try {
      await new Promise<void>((resolve) => holder.stdout!.on('data', (d: Buffer) => String(d).includes('locked') && resolve()));
      const owner = await readFile(join(dir, '.stackvault.lock', 'owner.json'), 'utf8');
      // Before: the lock's mtime looked two minutes old, so it was stale: removed, taken, and this backup ran beside the restore.
      const r = await botAt(new Date(Date.now() + 120_000), 'UTC', ['backup', 'create', '--project', project, '--dir', dir]);
      expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(8);
      expect(String(r.stderr)).toMatch(new RegExp(`Another stackvault run \\(backup restore \\(a long one\\), pid ${holder.pid}, since `));
      expect(await readFile(join(dir, '.stackvault.lock', 'owner.json'), 'utf8')).toBe(owner);
    } finally {
      holder.kill('SIGKILL');
      await holder;
    }
  });
});

/**
 * A backup made under a clock years ahead while the restic server was down is still a backup
 * whose offsite copy failed: the next `create --offsite` under the right clock stores it too.
 */
describe('an offsite copy that failed for a backup dated ahead of this clock', () => {
  let pg: StartedTestContainer;
  let server: ResticServer;
  let dir: string;
  const project = newProjectName('clock-offsite');

  beforeAll(async () => {
    [pg, server] = await Promise.all([startPostgres({ project }), startResticServer()]);
    dir = await tempDir('clock-offsite');
  });
  afterAll(async () => {
    await pg?.stop();
    await server?.stop();
  });

  it('is stored by the next create --offsite, after the new one', async () => {
    server.set('down');
    const failed = await botAt(new Date(Date.now() + 5 * 365 * DAY), 'UTC', ['backup', 'create', '--json', '--offsite', '--project', project, '--dir', dir], {
      ...server.env,
      STACKVAULT_OFFSITE_RETRY_SECONDS: '5',
    }).finally(() => server.set('up'));
    expect(failed.exitCode, String(failed.stderr)).toBe(10);
    const aheadId = (JSON.parse(String(failed.stdout)) as { id: string }).id;
    const manifestOf = async (id: string) => JSON.parse(await readFile(join(dir, id, 'manifest.json'), 'utf8')) as { offsite?: { ok: boolean } };
    expect((await manifestOf(aheadId)).offsite).toMatchObject({ ok: false });

    const next = await bot(['backup', 'create', '--json', '--offsite', '--project', project, '--dir', dir], { env: server.env, timeout: 300_000 });
    expect(next.exitCode, String(next.stderr)).toBe(0);
    const newId = (JSON.parse(String(next.stdout)) as { id: string }).id;
    // Before: only the backups placed in time were retried; this one stayed "NOT stored offsite" for good.
    expect(String(next.stderr)).toMatch(new RegExp(`✅ ${newId} stored offsite[^]*✅ ${aheadId} stored offsite`));
    expect((await manifestOf(aheadId)).offsite).toMatchObject({ ok: true });
    const listed = JSON.parse(String((await bot(['backup', 'list', '--remote', '--json', '--dir', dir], { env: server.env })).stdout)) as { remote: Array<{ id: string }> };
    expect(listed.remote.map((r) => r.id).sort()).toEqual([aheadId, newId].sort());
    // The repository dates each by when it was made, as the backup directory does: the one stored
    // last is not its latest for that, nor is one dated ahead of this clock (before: the ahead one).
    const verified = await bot(['backup', 'verify', 'latest', '--remote', '--read-data-subset', '100%', '--dir', dir], { env: server.env, timeout: 300_000 });
    expect(verified.exitCode, `${verified.stdout}${verified.stderr}`).toBe(0);
    expect(String(verified.stdout)).toContain(newId);
    expect(String(verified.stdout)).not.toContain(aheadId);
  });
});
