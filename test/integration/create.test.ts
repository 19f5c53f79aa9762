import { createHash } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { extractArtifact, decompressToString, tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { NEO4J_PASSWORD, newProjectName, PG_PASSWORD, PG_SUPERUSER, psql, REDIS_PASSWORD, run, sqlite, startChroma, startNeo4j, startPostgres, startRedis, startAll } from '../support/containers.js';
import { snapshotHostFiles } from '../support/host-files.js';
import { seedRedis, snapshotChroma, snapshotFiles, snapshotPostgres, snapshotRedis, startSeededStack } from '../support/seed.js';

const sha256 = async (file: string) =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex');

describe('backup create against a real stack', () => {
  const project = newProjectName('create');
  const started: StartedTestContainer[] = [];
  let pg: StartedTestContainer, redis: StartedTestContainer, chroma: StartedTestContainer, neo4j: StartedTestContainer, app: StartedTestContainer;
  let dir: string;
  let manifest: Manifest;
  let backupPath: string;
  let stdout: string, stderr: string;
  const seen: Record<string, string> = {};
  let eventsBefore = 0,
    eventsAfter = 0;

  beforeAll(async () => {
    const stack = await startSeededStack(project);
    ({ pg, redis, chroma, neo4j, app } = stack);
    started.push(pg, redis, chroma, neo4j, app);
    Object.assign(seen, stack.seen);
    dir = await tempDir('create');
    eventsBefore = Number(await sqlite(app, '/app/data/app.db', 'SELECT count(*) FROM events'));
    const result = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir, '--comment', 'integration seed']);
    eventsAfter = Number(await sqlite(app, '/app/data/app.db', 'SELECT count(*) FROM events'));
    stdout = String(result.stdout);
    stderr = String(result.stderr);
    expect(result.exitCode, stderr).toBe(0);
    manifest = JSON.parse(stdout) as Manifest;
    backupPath = join(dir, manifest.id);
  });

  afterAll(async () => {
    await Promise.all(started.map((c) => c.stop().catch(() => undefined)));
  });

  it('writes a complete manifest: every service ok, sizes, checksums that match the files', async () => {
    expect(manifest).toMatchObject({ schemaVersion: 1, type: 'manual', comment: 'integration seed', status: 'ok', tool: { name: 'stackvault' } });
    expect(manifest.id).toMatch(/^stackvault_backup_\d{8}_\d{6}$/);
    expect(new Date(manifest.createdAt).toISOString()).toBe(manifest.createdAt);
    expect(manifest.docker.version).toBeTruthy();
    expect(manifest.services.map((s) => [s.name, s.driver, s.status])).toEqual([
      ['app', 'sqlite', 'ok'],
      ['chroma', 'chroma', 'ok'],
      ['neo4j', 'neo4j', 'ok'],
      ['postgres', 'postgres', 'ok'],
      ['redis', 'redis', 'ok'],
    ]);
    for (const s of manifest.services) {
      const file = join(backupPath, s.artifact!);
      expect(await sha256(file)).toBe(s.sha256);
      expect((await stat(file)).size).toBe(s.bytes);
      expect(s.rawBytes).toBeGreaterThan(0);
      expect(s.container).toBeTruthy();
      expect(s.image).toContain('stackvault-local/');
      expect((await stat(file)).mode & 0o777).toBe(0o600);
    }
    expect((await stat(backupPath)).mode & 0o777).toBe(0o700);
    expect(await readdir(dir)).not.toContainEqual(expect.stringMatching(/^\.tmp-/));
    const info = await readFile(join(backupPath, 'backup_info.txt'), 'utf8');
    expect(info).toContain('✅ postgres');
    expect(info).toContain('integration seed');
  });

  it('keeps no secret in the manifest, backup_info.txt or the output', async () => {
    const info = await readFile(join(backupPath, 'backup_info.txt'), 'utf8');
    for (const secret of [PG_PASSWORD, REDIS_PASSWORD, NEO4J_PASSWORD]) {
      for (const text of [stdout, stderr, info, await readFile(join(backupPath, 'manifest.json'), 'utf8')]) expect(text).not.toContain(secret);
    }
  });

  it('postgres: the SQL replays into a fresh PostgreSQL with the same databases, roles and rows', async () => {
    const sql = await decompressToString(join(backupPath, 'postgres.sql.zst'));
    expect(sql).toContain('PostgreSQL database cluster dump');
    expect(sql).toContain('DROP DATABASE IF EXISTS "analytics"');
    const fresh = await startPostgres({ project: newProjectName('pgfresh') });
    started.push(fresh);
    await fresh.copyContentToContainer([{ content: sql, target: '/tmp/dump.sql' }]);
    await run(fresh, ['psql', '-U', PG_SUPERUSER, '-d', 'postgres', '-q', '-f', '/tmp/dump.sql']);
    expect(await snapshotPostgres(fresh)).toBe(seen.postgres);
    expect(await psql(fresh, 'crm data', 'SELECT name FROM contacts WHERE id = 1')).toBe('Zoë Ünïcode ✓');
  });

  it('redis: the RDB loads into a fresh Redis with the same keys, values and TTLs', async () => {
    const files = await extractArtifact(join(backupPath, 'redis.tar.zst'));
    expect(await readdir(files)).toEqual(expect.arrayContaining(['dump.rdb', 'appendonlydir']));
    const fresh = await startRedis({ project: newProjectName('redisfresh'), files: [{ source: join(files, 'dump.rdb'), target: '/data/dump.rdb' }] });
    started.push(fresh);
    expect(await snapshotRedis(fresh)).toBe(seen.redis);
    expect(manifest.services.find((s) => s.name === 'redis')!.details).toMatchObject({ aofDir: 'appendonlydir', keysAtBackup: seen.redis!.split('\n').length });
  });

  it('redis: the captured AOF directory alone also brings the data back', async () => {
    const files = await extractArtifact(join(backupPath, 'redis.tar.zst'));
    const fresh = await startRedis({ project: newProjectName('aoffresh'), appendonly: true, directories: [{ source: join(files, 'appendonlydir'), target: '/data/appendonlydir' }] });
    started.push(fresh);
    expect(await snapshotRedis(fresh)).toBe(seen.redis);
  });

  it('chroma: the archive extracts to a data directory a fresh Chroma serves with the same records', async () => {
    const files = await extractArtifact(join(backupPath, 'chroma.tar.zst'));
    expect(await readdir(join(files, 'data'))).toContain('chroma.sqlite3');
    const fresh = await startChroma({ project: newProjectName('chromafresh'), directories: [{ source: join(files, 'data'), target: '/data' }] });
    started.push(fresh);
    expect(await snapshotChroma(fresh)).toBe(seen.chroma);
    expect(manifest.services.find((s) => s.name === 'chroma')!.details).toMatchObject({ stopped: true, paths: ['/data'] });
  });

  it('neo4j: the archive extracts to the same files, owners and modes', async () => {
    const files = await extractArtifact(join(backupPath, 'neo4j.tar.zst'));
    expect(await snapshotHostFiles(join(files, 'data'))).toBe(seen.neo4j);
    // and the container was started again after the stopped copy
    expect(await snapshotFiles(neo4j)).toBe(seen.neo4j);
  });

  it('sqlite: the copies of a database being written in WAL mode pass integrity_check with the rows', async () => {
    const files = await extractArtifact(join(backupPath, 'app.tar.zst'));
    const app = new DatabaseSync(join(files, 'sqlite', '0-app.db'), { readOnly: true });
    const notes = new DatabaseSync(join(files, 'sqlite', '1-notes.db'), { readOnly: true });
    try {
      expect(app.prepare('PRAGMA integrity_check').get()).toEqual({ integrity_check: 'ok' });
      const events = Number(app.prepare('SELECT count(*) AS n FROM events').get()!.n);
      expect(events).toBeGreaterThanOrEqual(eventsBefore);
      expect(events).toBeLessThanOrEqual(eventsAfter);
      const entry = manifest.services.find((s) => s.name === 'app')!;
      expect((entry.details!.files as Array<{ tables: Record<string, number> }>)[0]!.tables.events).toBe(events);
      const rows = notes
        .prepare('SELECT id, body FROM notes ORDER BY id')
        .all()
        .map((r) => `${r.id}|${r.body}`)
        .join('\n');
      expect(rows).toBe(seen.notes);
    } finally {
      app.close();
      notes.close();
    }
  });

  it('--metrics writes Prometheus metrics after a good run and after a failed one, atomically', async () => {
    const metricsDir = await tempDir('metrics');
    const file = join(metricsDir, 'stackvault.prom');
    const good = await bot(['backup', 'create', '--project', project, '--only', 'redis', '--dir', dir, '--metrics', file]);
    expect(good.exitCode, String(good.stderr)).toBe(0);
    const first = await readFile(file, 'utf8');
    expect(first).toMatch(new RegExp(`^stackvault_last_run_success\\{project="${project}"\\} 1$`, 'm'));
    expect(first).toMatch(/^stackvault_service_bytes\{service="redis",driver="redis",project="[^"]+"\} [1-9]\d*$/m);
    expect(first).toMatch(/^# TYPE stackvault_service_downtime_seconds gauge$|^stackvault_service_duration_seconds\{service="redis"/m);
    const lastSuccess = /^stackvault_last_success_timestamp_seconds\{[^}]*\} (\d+)$/m.exec(first)?.[1];
    expect(Number(lastSuccess)).toBeGreaterThan(1.7e9);
    // Docker unreachable: the run fails (exit 6), and the metrics say so, still naming the last good backup.
    const failed = await bot(['backup', 'create', '--project', project, '--dir', dir, '--metrics', file], { env: { DOCKER_HOST: 'unix:///nonexistent.sock' } });
    expect(failed.exitCode).toBe(6);
    const second = await readFile(file, 'utf8');
    expect(second).toMatch(/^stackvault_last_run_success\{[^}]*\} 0$/m);
    expect(second).toMatch(/^stackvault_last_run_exit_code\{[^}]*\} 6$/m);
    expect(second).toContain(`stackvault_last_success_timestamp_seconds{project="${project}"} ${lastSuccess}`);
    expect(await readdir(metricsDir)).toEqual(['stackvault.prom']);
  });

  it('leaves every container running', async () => {
    for (const c of [pg, redis, chroma, neo4j, app]) {
      const r = await c.exec(['true']);
      expect(r.exitCode).toBe(0);
    }
  });
});

describe('backup create when a datastore dies mid-dump', () => {
  const project = newProjectName('killed');
  const started: StartedTestContainer[] = [];
  afterAll(async () => {
    await Promise.all(started.map((c) => c.stop().catch(() => undefined)));
  });

  it('marks the dead one failed, keeps no partial artifact, and finishes the others (exit 3)', async () => {
    const [pg, redis, neo4j] = await startAll([startPostgres({ project }), startRedis({ project }), startNeo4j({ project })]);
    started.push(pg, redis, neo4j);
    // Enough rows that pg_dumpall runs for several seconds.
    await psql(pg, 'bot', 'CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g*7)::text) AS v FROM generate_series(1, 3000000) g');
    await seedRedis(redis);
    const dir = await tempDir('killed');
    const running = bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    // Kill PostgreSQL once its artifact has started to grow.
    for (let i = 0; i < 600; i++) {
      const tmp = (await readdir(dir)).find((n) => n.startsWith('.tmp-'));
      const size = tmp
        ? await stat(join(dir, tmp, 'postgres.sql.zst')).then(
            (s) => s.size,
            () => 0,
          )
        : 0;
      if (size > 64 * 1024) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const Docker = (await import('dockerode')).default;
    await new Docker().getContainer(pg.getId()).kill();
    const result = await running;
    expect(result.exitCode, String(result.stderr)).toBe(3);
    const manifest = JSON.parse(String(result.stdout)) as Manifest;
    const byName = Object.fromEntries(manifest.services.map((s) => [s.name, s]));
    expect(byName.postgres!.status).toBe('failed');
    // Whichever notices first: the exec's end, its exit code, or the dump lacking pg_dumpall's last line.
    expect(byName.postgres!.error).toMatch(/pg_dumpall (was cut off: the container stopped|exited with code)|ended without pg_dumpall's final line/);
    expect(byName.redis!.status).toBe('ok');
    expect(byName.neo4j!.status).toBe('ok');
    expect(manifest.status).toBe('partial');
    const files = await readdir(join(dir, manifest.id));
    expect(files).not.toContain('postgres.sql.zst');
    expect(files).toEqual(expect.arrayContaining(['redis.tar.zst', 'neo4j.tar.zst', 'manifest.json']));
    expect(String(result.stderr)).toMatch(/warning: not backed up: postgres/);
    await writeFile(join(dir, 'probe'), ''); // the directory is still writable and usable
  });
});
