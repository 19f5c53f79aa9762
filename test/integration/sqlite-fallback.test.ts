import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { afterAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { extractArtifact, tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName } from '../support/containers.js';
import { IMAGES } from '../support/images.js';

/** An app container WITHOUT sqlite3: the frozen-copy fallback, recovered and checked on the host. */
describe('sqlite backup without sqlite3 in the container', () => {
  let app: StartedTestContainer;
  afterAll(async () => {
    await app?.stop();
  });

  it('captures rows that are only in the -wal file, and the copy passes integrity_check', async () => {
    const stage = await tempDir('walsrc');
    const live = new DatabaseSync(join(stage, 'live.db'));
    live.exec('PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE memo(id INTEGER PRIMARY KEY, body TEXT)');
    live.exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) INSERT INTO memo(body) SELECT 'row ' || i FROM n");
    // Still open and never checkpointed: the rows live in live.db-wal, not in live.db.
    const files = await tempDir('walcopy');
    await copyFile(join(stage, 'live.db'), join(files, 'app.db'));
    await copyFile(join(stage, 'live.db-wal'), join(files, 'app.db-wal'));
    live.close();
    const alone = await tempDir('walless');
    await copyFile(join(files, 'app.db'), join(alone, 'app.db')); // a plain copy without its -wal
    const plainOnly = new DatabaseSync(join(alone, 'app.db'), { readOnly: true });
    expect(() => plainOnly.prepare('SELECT count(*) FROM memo').get()).toThrow(); // the table is not even in the main file yet
    plainOnly.close();

    const project = newProjectName('sqlfallback');
    // The Neo4j stand-in image has no sqlite3: any image without it would do.
    app = await new GenericContainer(IMAGES.neo4j)
      .withLabels({ 'com.docker.compose.project': project, 'com.docker.compose.service': 'legacy-app', 'stackvault.sqlite.paths': '/data/app.db' })
      .withCopyFilesToContainer([
        { source: join(files, 'app.db'), target: '/data/app.db' },
        { source: join(files, 'app.db-wal'), target: '/data/app.db-wal' },
      ])
      .withWaitStrategy(Wait.forHealthCheck())
      .start();
    expect((await app.exec(['sqlite3', '-version'])).exitCode).not.toBe(0);

    const dir = await tempDir('sqlfallback');
    const r = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const m = JSON.parse(String(r.stdout)) as Manifest;
    const entry = m.services[0]!;
    expect(entry.details).toMatchObject({ method: 'frozen copy, recovered on host', files: [{ path: '/data/app.db', tables: { memo: 500 } }] });
    const out = await extractArtifact(join(dir, m.id, entry.artifact!));
    const copy = new DatabaseSync(join(out, 'sqlite', '0-app.db'), { readOnly: true });
    expect(copy.prepare('PRAGMA integrity_check').get()).toEqual({ integrity_check: 'ok' });
    expect(copy.prepare('SELECT count(*) AS n FROM memo').get()).toEqual({ n: 500 });
    copy.close();
    // the container was paused only during the copy
    expect((await app.exec(['true'])).exitCode).toBe(0);
  });
});
