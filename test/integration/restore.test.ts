import { readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { chromaApi, newProjectName, PG_PASSWORD, psql, REDIS_PASSWORD, redisCli, run, sqlite } from '../support/containers.js';
import { CHROMA_COLLECTION, snapshotChroma, snapshotFiles, snapshotNotes, snapshotPostgres, snapshotRedis, startSeededStack, type SeededStack } from '../support/seed.js';
import { flipByte, handMadeTar, replaceArtifact, rewriteArtifact } from '../support/tamper.js';

/** seed -> backup -> change everything -> restore -> the data equals the seed, per datastore. */
describe('backup restore round trips', () => {
  const project = newProjectName('restore');
  let pg: StartedTestContainer, redis: StartedTestContainer, chroma: StartedTestContainer, neo4j: StartedTestContainer, app: StartedTestContainer;
  let dir: string;
  let backup: Manifest;
  let seen: SeededStack['seen'];
  let eventsInBackup = 0;

  const _events = async () => Number(await sqlite(app, '/app/data/app.db', 'SELECT count(*) FROM events'));
  const eventsUpTo = async (n: number) => Number(await sqlite(app, '/app/data/app.db', `SELECT count(*) FROM events WHERE id <= ${n}`));

  async function mutateEverything(): Promise<void> {
    await psql(pg, 'bot', "INSERT INTO users VALUES (9999, 'intruder', null)");
    await psql(pg, 'bot', "UPDATE users SET name = 'changed' WHERE id = 1");
    await psql(pg, 'bot', 'DROP TABLE conversations');
    await psql(pg, 'bot', 'DELETE FROM users WHERE id BETWEEN 100 AND 120');
    await psql(pg, 'analytics', 'TRUNCATE events');
    await psql(pg, 'bot', 'CREATE DATABASE "made later"');
    await psql(pg, 'bot', 'CREATE ROLE latecomer LOGIN');
    await redisCli(redis, 'FLUSHALL');
    await redisCli(redis, 'SET', 'new-key', 'after backup');
    const api = chromaApi(chroma);
    await api(`/collections/${CHROMA_COLLECTION}`, { method: 'DELETE' });
    await api('/collections', { body: { name: 'created-after-backup' } });
    await run(neo4j, ['bash', '-c', 'rm /data/databases/neo4j/neostore.nodestore.db && echo changed > "/data/databases/neo4j/label tokens ✓.db" && touch /data/databases/neo4j/new-after-backup']);
    await sqlite(app, '/app/data/notes.db', "DELETE FROM notes WHERE id = 1; UPDATE notes SET body = 'edited' WHERE id = 2; INSERT INTO notes(body) VALUES ('later')");
    await sqlite(app, '/app/data/app.db', 'DELETE FROM events WHERE id < 10');
  }

  beforeAll(async () => {
    ({ pg, redis, chroma, neo4j, app, seen } = await startSeededStack(project));
    dir = await tempDir('restore');
    const created = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(created.exitCode, String(created.stderr)).toBe(0);
    backup = JSON.parse(String(created.stdout)) as Manifest;
    const appEntry = backup.services.find((s) => s.name === 'app')!;
    eventsInBackup = (appEntry.details!.files as Array<{ tables: Record<string, number> }>)[0]!.tables.events!;
  });

  afterAll(async () => {
    await Promise.all([pg, redis, chroma, neo4j, app].filter(Boolean).map((c) => c.stop().catch(() => undefined)));
  });

  it('restores every datastore to exactly the backed-up data, after a restore point', async () => {
    await mutateEverything();
    const before = await snapshotPostgres(pg);
    expect(before).not.toBe(seen.postgres);
    const r = await bot(['backup', 'restore', backup.id, '--dir', dir, '--yes', '--json']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const result = JSON.parse(String(r.stdout)) as { restorePointId: string; services: Array<{ service: string; status: string }> };
    expect(result.services.map((s) => [s.service, s.status])).toEqual([
      ['app', 'restored'],
      ['chroma', 'restored'],
      ['neo4j', 'restored'],
      ['postgres', 'restored'],
      ['redis', 'restored'],
    ]);

    expect(await snapshotPostgres(pg)).toBe(seen.postgres);
    expect(await psql(pg, 'postgres', "SELECT count(*) FROM pg_database WHERE datname = 'made later'")).toBe('0');
    expect(await psql(pg, 'postgres', "SELECT count(*) FROM pg_roles WHERE rolname = 'latecomer'")).toBe('0');
    expect(await snapshotRedis(redis)).toBe(seen.redis);
    expect(await redisCli(redis, 'EXISTS', 'new-key')).toBe('(integer) 0');
    expect(await snapshotChroma(chroma)).toBe(seen.chroma);
    expect(await snapshotFiles(neo4j)).toBe(seen.neo4j);
    expect(await snapshotNotes(app)).toBe(seen.notes);
    expect(await eventsUpTo(eventsInBackup)).toBe(eventsInBackup); // the deleted rows are back
    expect(await sqlite(app, '/app/data/app.db', 'PRAGMA integrity_check')).toBe('ok');

    // The restore point holds the state that was replaced, and is listed like any backup.
    const list = JSON.parse(String((await bot(['backup', 'list', '--dir', dir, '--json'])).stdout)) as Manifest[];
    const point = list.find((m) => m.id === result.restorePointId)!;
    expect(point.type).toBe('restore-point');
    expect(point.services.filter((s) => s.status === 'ok')).toHaveLength(5);
    expect(String(r.stderr)).not.toContain(PG_PASSWORD);
    expect(String(r.stderr)).not.toContain(REDIS_PASSWORD);

    // A restore point records no Postgres or SQLite fingerprint (it is only needed to put the
    // point back); restoring it computes them from its artifacts and proves the content by them.
    const byDriver = (driver: string) => point.services.find((s) => s.driver === driver)!;
    expect(['postgres', 'sqlite', 'neo4j'].map((d) => 'fingerprint' in byDriver(d))).toEqual([false, false, true]);
    const appInPoint = byDriver('sqlite').name;
    const back = await bot(['backup', 'restore', result.restorePointId, '--dir', dir, '--yes', '--json', '--only', appInPoint]);
    expect(back.exitCode, String(back.stderr)).toBe(0);
    expect((JSON.parse(String(back.stdout)) as { services: Array<{ check: string }> }).services[0]!.check).toBe('equal');
    expect(String(back.stderr)).toContain(`${appInPoint}: computed the backup's content fingerprint from its artifact`);
    expect(await sqlite(app, '/app/data/notes.db', 'SELECT body FROM notes WHERE id = 2')).toBe('edited'); // the state the restore replaced
    const again = await bot(['backup', 'restore', backup.id, '--dir', dir, '--yes', '--only', 'app']);
    expect(again.exitCode, String(again.stderr)).toBe(0);
    expect(await snapshotNotes(app)).toBe(seen.notes);
  });

  it('Redis restarted after the restore keeps the restored data (AOF rebuilt from the RDB)', async () => {
    const Docker = (await import('dockerode')).default;
    await new Docker().getContainer(redis.getId()).restart();
    for (let i = 0; i < 50 && (await redis.exec(['redis-cli', 'PING'], { env: { REDISCLI_AUTH: REDIS_PASSWORD } })).output.indexOf('PONG') < 0; i++) await new Promise((r) => setTimeout(r, 200));
    expect(await snapshotRedis(redis)).toBe(seen.redis);
  });

  it('--only restores a subset and leaves the rest alone', async () => {
    await redisCli(redis, 'SET', 'only-marker', '1');
    await psql(pg, 'bot', "UPDATE users SET name = 'subset' WHERE id = 2");
    const r = await bot(['backup', 'restore', backup.id.replace(/^stackvault_backup_/, ''), '--dir', dir, '--yes', '--only', 'redis']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(await redisCli(redis, 'EXISTS', 'only-marker')).toBe('(integer) 0');
    expect(await psql(pg, 'bot', 'SELECT name FROM users WHERE id = 2')).toBe('subset');
    await psql(pg, 'bot', "UPDATE users SET name = 'user 2' WHERE id = 2");
  });

  it('a restore that fails midway leaves the service running on its restore point', async () => {
    const failing = await tempDir('failing');
    const r0 = await bot(['backup', 'create', '--json', '--project', project, '--dir', failing, '--only', 'postgres']);
    const bad = JSON.parse(String(r0.stdout)) as Manifest;
    // A dump that passes every check but stops with an error half-way through the replay.
    await rewriteArtifact(join(failing, bad.id), 'postgres', (sql) => sql.replace('\\connect "analytics"', '\\connect "analytics"\nSELECT * FROM no_such_table_here;'));
    await psql(pg, 'bot', "UPDATE users SET name = 'current state' WHERE id = 3");
    const current = await snapshotPostgres(pg);
    const r = await bot(['backup', 'restore', bad.id, '--dir', failing, '--yes']);
    expect(r.exitCode, String(r.stderr)).toBe(1);
    expect(String(r.stdout), String(r.stderr)).toMatch(/❌ postgres .*NOT restored, back on the restore point: replaying the dump stopped at an error: .*no_such_table_here/);
    expect(await snapshotPostgres(pg)).toBe(current);
    expect(await psql(pg, 'bot', 'SELECT name FROM users WHERE id = 3')).toBe('current state');
    await psql(pg, 'bot', "UPDATE users SET name = 'user 3' WHERE id = 3");
  });

  describe('damaged backups are refused before anything changes', () => {
    const damages: Array<[string, (path: string) => Promise<void>, RegExp]> = [
      ['a flipped byte', (p) => flipByte(join(p, 'redis.tar.zst')), /(SHA-256 of redis|redis.*does not open)/],
      ['a truncated file', (p) => truncate(join(p, 'redis.tar.zst'), 100), /redis.*(truncated|bytes)/],
      ['a missing file', (p) => rm(join(p, 'redis.tar.zst')), /redis.*missing/],
      [
        'an edited manifest',
        async (p) => {
          const m = JSON.parse(await readFile(join(p, 'manifest.json'), 'utf8')) as Manifest;
          m.services.find((s) => s.name === 'redis')!.sha256 = '0'.repeat(64);
          await writeFile(join(p, 'manifest.json'), JSON.stringify(m));
        },
        /SHA-256 of redis/,
      ],
    ];

    it.each(damages)('%s: verify and restore exit 5 naming the service; no restore point is taken', async (_what, damage, message) => {
      const copy = await tempDir('damaged');
      const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', copy, '--only', 'redis,postgres']);
      const m = JSON.parse(String(c.stdout)) as Manifest;
      await damage(join(copy, m.id));
      await redisCli(redis, 'SET', 'untouched', 'yes');
      const v = await bot(['backup', 'verify', m.id, '--dir', copy]);
      expect(v.exitCode).toBe(5);
      expect(String(v.stdout) + String(v.stderr)).toMatch(message);
      expect(String(v.stdout)).toMatch(/✅ postgres/);
      const r = await bot(['backup', 'restore', m.id, '--dir', copy, '--yes']);
      expect(r.exitCode).toBe(5);
      expect(String(r.stderr)).toMatch(message);
      expect(await redisCli(redis, 'GET', 'untouched')).toBe('"yes"');
      expect((await readdir(copy)).filter((n) => n.startsWith('restore-point'))).toEqual([]);
      await redisCli(redis, 'DEL', 'untouched');
    });
  });

  describe('hostile archives are refused, naming the entry', () => {
    const hostile: Array<[string, Parameters<typeof handMadeTar>[0], RegExp]> = [
      [
        'a .. path',
        [
          { path: 'data/', type: 'Directory' },
          { path: 'data/../../etc/cron.d/evil', data: 'x' },
        ],
        /entry 'data\/\.\.\/\.\.\/etc\/cron.d\/evil' is unsafe: path contains \.\./,
      ],
      ['an absolute path', [{ path: '/etc/evil', data: 'x' }], /'\/etc\/evil', which is not under any recorded path/],
      [
        'a symlink out of the volume',
        [
          { path: 'data/', type: 'Directory' },
          { path: 'data/shadow', type: 'SymbolicLink', linkpath: '/etc/shadow' },
        ],
        /the symlink 'data\/shadow' points to \/etc\/shadow, outside \/data/,
      ],
      [
        'a hard link out of the volume',
        [
          { path: 'data/', type: 'Directory' },
          { path: 'data/pw', type: 'Link', linkpath: 'etc/passwd' },
        ],
        /hard link to etc\/passwd points outside data\//,
      ],
      [
        'a device file',
        [
          { path: 'data/', type: 'Directory' },
          { path: 'data/mem', type: 'CharacterDevice' },
        ],
        /CharacterDevice entries/,
      ],
    ];
    it.each(hostile)('%s', async (_what, entries, message) => {
      const copy = await tempDir('hostile');
      const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', copy, '--only', 'neo4j']);
      const m = JSON.parse(String(c.stdout)) as Manifest;
      await replaceArtifact(join(copy, m.id), 'neo4j', handMadeTar(entries));
      const before = await snapshotFiles(neo4j);
      const r = await bot(['backup', 'restore', m.id, '--dir', copy, '--yes']);
      expect(r.exitCode).toBe(5);
      expect(String(r.stderr)).toMatch(message);
      expect((await bot(['backup', 'verify', m.id, '--dir', copy])).exitCode).toBe(5);
      expect(await snapshotFiles(neo4j)).toBe(before);
    });
  });

  it('asks on a terminal: "n" changes nothing (exit 9), "y" restores', async () => {
    const { execa } = await import('execa');
    const { REPO_ROOT } = await import('../support/cli.js');
    await redisCli(redis, 'SET', 'tty-marker', '1');
    const cmd = `./bot.sh backup restore ${backup.id} --dir ${dir} --only redis`;
    // script(1) runs the command on a real pseudo-terminal and feeds it our answer.
    const no = await execa('script', ['-qec', cmd, '/dev/null'], { cwd: REPO_ROOT, input: 'n\n', reject: false });
    expect(no.exitCode).toBe(9);
    expect(no.stdout).toMatch(/This REPLACES the current data of:[\s\S]*redis/);
    expect(no.stdout).toMatch(/Replace this data\? A restore point is taken first\. \[y\/N\]/);
    expect(no.stdout).toMatch(/Restore cancelled; nothing was changed/);
    expect(await redisCli(redis, 'GET', 'tty-marker')).toBe('"1"');
    const yes = await execa('script', ['-qec', cmd, '/dev/null'], { cwd: REPO_ROOT, input: 'y\n', reject: false });
    expect(yes.exitCode, yes.stdout).toBe(0);
    expect(await redisCli(redis, 'EXISTS', 'tty-marker')).toBe('(integer) 0');
  });

  it('backup create on a terminal shows live progress with bytes and rate, then one line per service', async () => {
    const { execa } = await import('execa');
    const { REPO_ROOT } = await import('../support/cli.js');
    const out = await tempDir('ttyprogress');
    const cmd = `stty cols 100 rows 30; ./bot.sh backup create --dir ${out} --project ${project}`;
    const r = await execa('script', ['-qec', cmd, '/dev/null'], { cwd: REPO_ROOT, reject: false, env: { CI: '' } });
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/\d+(\.\d)? (B|KB|MB)\/s/); // a rate in the live lines
    for (const svc of ['app', 'chroma', 'neo4j', 'postgres', 'redis']) expect(r.stdout).toMatch(new RegExp(`✅ ${svc}: .* in .*\\(`));
    expect(r.stdout.length).toBeLessThan(200_000); // redraws stay bounded
  });

  it('refuses without a terminal and without --yes (exit 9), changing nothing', async () => {
    await redisCli(redis, 'SET', 'unconfirmed', '1');
    const r = await bot(['backup', 'restore', 'latest', '--dir', dir, '--only', 'redis']);
    expect(r.exitCode, String(r.stderr)).toBe(9);
    expect(String(r.stderr)).toMatch(/needs confirmation/);
    expect(await redisCli(redis, 'GET', 'unconfirmed')).toBe('"1"');
    await redisCli(redis, 'DEL', 'unconfirmed');
  });

  it('verify --deep restores every artifact into a throwaway container and sees the seeded data', async () => {
    const r = await bot(['backup', 'verify', backup.id, '--dir', dir, '--deep', '--json'], { timeout: 400_000 });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    // biome-ignore lint/suspicious/noExplicitAny: facts differ per driver; the test reads the ones it knows
    const out = JSON.parse(String(r.stdout)) as { deep: boolean; services: Array<{ service: string; ok: boolean; facts: Record<string, any> }> };
    const facts = Object.fromEntries(out.services.map((s) => [s.service, s.facts]));
    expect(out.services.every((s) => s.ok)).toBe(true);
    expect(facts.postgres.rows.bot['public.users']).toBe(250);
    expect(facts.postgres.rows.bot['public.conversations']).toBe(1000);
    expect(facts.postgres.rows.analytics['public.events']).toBe(2000);
    expect(facts.postgres.rows['crm data']['public.contacts']).toBe(2);
    expect(facts.redis.keys).toBe(seen.redis!.split('\n').length);
    expect(facts.chroma).toEqual({ collections: ['bot-memory', 'scratch-notes'], records: { 'bot-memory': 30, 'scratch-notes': 0 } });
    expect(facts.neo4j.files).toBeGreaterThanOrEqual(5);
    expect(facts.app.files['/app/data/notes.db']).toEqual({ notes: 3 });
    // recorded in the manifest, so the counts can be compared later
    const manifest = JSON.parse(await readFile(join(dir, backup.id, 'manifest.json'), 'utf8')) as Manifest;
    const last = manifest.verifications!.at(-1)!;
    expect(last).toMatchObject({ deep: true, ok: true });
    expect(last.services.postgres!.facts).toEqual(facts.postgres);
    // and no throwaway container is left behind
    const Docker = (await import('dockerode')).default;
    expect(await new Docker().listContainers({ all: true, filters: { label: [`stackvault.throwaway-for=${dir}`] } })).toEqual([]);
  });

  it('verify --deep fails a dump that replays with an error, naming the service (exit 5)', async () => {
    const copy = await tempDir('deepbad');
    const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', copy, '--only', 'postgres']);
    const m = JSON.parse(String(c.stdout)) as Manifest;
    await rewriteArtifact(join(copy, m.id), 'postgres', (sql) => sql.replace('\\connect "bot"', '\\connect "bot"\nSELECT broken_on_purpose();'));
    expect((await bot(['backup', 'verify', m.id, '--dir', copy])).exitCode).toBe(0); // checksums and structure are fine
    const r = await bot(['backup', 'verify', m.id, '--dir', copy, '--deep']);
    expect(r.exitCode).toBe(5);
    expect(String(r.stdout)).toMatch(/❌ postgres: replaying the dump stopped at an error: .*broken_on_purpose/);
  });

  it('unknown and ambiguous IDs, unknown services: clear errors', async () => {
    const unknown = await bot(['backup', 'restore', 'nope', '--dir', dir, '--yes']);
    expect(unknown.exitCode).toBe(4);
    expect(String(unknown.stderr)).toMatch(/No backup 'nope'/);
    const svc = await bot(['backup', 'restore', backup.id, '--dir', dir, '--yes', '--only', 'mysql']);
    expect(svc.exitCode).toBe(4);
    expect(String(svc.stderr)).toMatch(/has no service 'mysql'/);
  });
});
