import { readdir } from 'node:fs/promises';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, run, startPostgres } from '../support/containers.js';
import { IMAGES } from '../support/images.js';

/**
 * An app container with no stackvault label, keeping a SQLite database in a volume and
 * uploaded files on a bind mount, next to an exporter-like container that only talks to
 * Postgres: the app's data is backed up and restored whole; the exporter is left out, and said so.
 */
describe('the whole stack: app data without labels', () => {
  const project = newProjectName('whole');
  let app: StartedTestContainer;
  let exporter: StartedTestContainer;
  let pg: StartedTestContainer;
  let dir: string;
  let backup: Manifest;
  let before: string;

  // sha256 of every file and the SQLite rows, read with the container's own tools.
  const snapshot = async () =>
    `${await run(app, ['sh', '-c', 'find /srv/uploads /app/data -type f ! -name "state*" -print0 | sort -z | xargs -0 sha256sum'])}\n${await run(app, ['sqlite3', '/app/data/state', "SELECT count(*), group_concat(id || ':' || hex(payload), ',') FROM (SELECT * FROM events ORDER BY id)"])}`;

  beforeAll(async () => {
    const labels = { 'com.docker.compose.project': project };
    pg = await startPostgres({ project });
    app = await new GenericContainer(IMAGES.app)
      // The demo image labels itself as a SQLite app; this one is an unlabelled app.
      .withLabels({ ...labels, 'com.docker.compose.service': 'api', 'stackvault.driver': '', 'stackvault.sqlite.paths': '' })
      .withBindMounts([{ source: await tempDir('uploads'), target: '/srv/uploads' }])
      .withEntrypoint(['sh', '-c', 'touch /app/data/.ready && exec sleep infinity'])
      .withWaitStrategy(Wait.forHealthCheck())
      .start();
    await run(app, ['sh', '-c', 'for i in $(seq 1 40); do head -c $((i * 1000)) /dev/urandom > "/srv/uploads/file $i ✓.bin"; done']);
    // A database with no extension, as Cognee keeps one, in WAL mode.
    await run(app, [
      'sqlite3',
      '/app/data/state',
      'PRAGMA journal_mode=WAL; CREATE TABLE events(id INTEGER PRIMARY KEY, payload BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 300) INSERT INTO events(payload) SELECT randomblob(200) FROM n;',
    ]);
    exporter = await new GenericContainer('stackvault-local/base:bookworm')
      .withLabels({ ...labels, 'com.docker.compose.service': 'postgres-exporter' })
      .withEnvironment({ DATA_SOURCE_NAME: 'postgresql://postgres@pg/postgres' })
      .withCommand(['sleep', 'infinity'])
      .start();
    before = await snapshot();
    dir = await tempDir('whole');
  });

  afterAll(async () => {
    await Promise.all([app, exporter, pg].map((c) => c?.stop().catch(() => undefined)));
  });

  it('--dry-run shows the plan and what is left out, and touches nothing', async () => {
    const r = await bot(['backup', 'create', '--dry-run', '--json', '--project', project, '--dir', dir]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const plan = JSON.parse(String(r.stdout));
    expect(plan.services).toEqual([
      expect.objectContaining({ service: 'api', driver: 'files', interrupts: 'paused', paths: ['/app/data', '/srv/uploads'], estimatedBytes: expect.any(Number) }),
      expect.objectContaining({ service: 'postgres', driver: 'postgres', interrupts: 'online', estimatedBytes: expect.any(Number) }),
    ]);
    expect(plan.leftOut).toEqual([expect.objectContaining({ service: 'postgres-exporter', reason: expect.stringContaining('no mounts') })]);
    expect(await readdir(dir)).toEqual([]);
    const human = await bot(['backup', 'create', '--dry-run', '--project', project, '--dir', dir]);
    expect(String(human.stdout)).toContain('api (files');
    expect(String(human.stdout)).toContain('paused while copied');
    expect(String(human.stdout)).toContain('left out: postgres-exporter');
  });

  it('backs up the app container data and says what it left out', async () => {
    const r = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    backup = JSON.parse(String(r.stdout)) as Manifest;
    const api = backup.services.find((s) => s.name === 'api')!;
    expect(api).toMatchObject({ driver: 'files', status: 'ok' });
    expect(api.details!.paths).toEqual(['/app/data', '/srv/uploads']);
    expect(backup.leftOut).toEqual([expect.objectContaining({ service: 'postgres-exporter', reason: expect.stringContaining('no mounts') })]);
    expect(backup.services.map((s) => s.name).sort()).toEqual(['api', 'postgres']);
  });

  it('restores the files and the database exactly', async () => {
    await run(app, ['sh', '-c', 'rm "/srv/uploads/file 3 ✓.bin" && echo new > /srv/uploads/late.txt && sqlite3 /app/data/state "DELETE FROM events WHERE id < 50"']);
    expect(await snapshot()).not.toBe(before);
    const r = await bot(['backup', 'restore', backup.id, '--dir', dir, '--yes', '--json', '--only', 'api']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(JSON.parse(String(r.stdout)).services).toEqual([expect.objectContaining({ status: 'restored', check: 'equal' })]);
    expect(await snapshot()).toBe(before);
  });
});
