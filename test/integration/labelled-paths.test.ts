import { execa } from 'execa';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GenericContainer, type StartedTestContainer, Wait } from 'testcontainers';
import { afterAll, describe, expect, it } from 'vitest';
import { extractArtifact, tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, run, sqlite } from '../support/containers.js';
import { IMAGES } from '../support/images.js';

/**
 * `stackvault.paths` names exactly what to archive. A SQLite file named there is a database, and
 * a WAL database's recent rows live in its -wal: the two are copied in the same pause. Values
 * that cannot be archived are refused before the app is paused, naming the label.
 */
const started: StartedTestContainer[] = [];
afterAll(async () => {
  await Promise.all(started.map((c) => c.stop().catch(() => undefined)));
});

/** The app image (a writer committing to /app/data/app.db in WAL mode), with the labels given instead of its own. */
async function app(project: string, labels: Record<string, string>, entrypoint?: string): Promise<StartedTestContainer> {
  let c = new GenericContainer(IMAGES.app)
    .withLabels({ 'com.docker.compose.project': project, 'com.docker.compose.service': 'app', 'stackvault.driver': '', 'stackvault.sqlite.paths': '', ...labels })
    .withEnvironment({ WRITE_INTERVAL: '0.05' });
  // Its own entrypoint runs no app-writer, so the image's healthcheck (of the writer) would never pass: a restore waits for health.
  if (entrypoint)
    c = c
      .withEntrypoint(['sh', '-c', entrypoint])
      .withHealthCheck({ test: ['CMD-SHELL', 'test -f /srv/ready'], interval: 1000, timeout: 1000, retries: 30, startPeriod: 0 })
      .withWaitStrategy(Wait.forHealthCheck());
  else c = c.withWaitStrategy(Wait.forHealthCheck());
  const s = await c.start();
  started.push(s);
  return s;
}

/**
 * `backup create` of the project says `warning` exactly once, under the service's line, as a
 * plan (--dry-run, also --json) and as a backup (plain, --verbose, --json: the lines on stderr),
 * and the manifest holds it once. It was said twice (the driver's own line as it arose, then
 * under the service's line), three times with --verbose or in a partial backup (again after the
 * summary).
 */
async function warnsOnce(project: string, warning: string): Promise<void> {
  const times = (text: unknown) => String(text).split(warning).length - 1;
  const dry = await bot(['backup', 'create', '--project', project, '--dry-run']);
  expect(times(dry.stdout), String(dry.stdout)).toBe(1);
  const dryJson = await bot(['backup', 'create', '--project', project, '--dry-run', '--json']);
  expect(times(dryJson.stdout) + times(dryJson.stderr), String(dryJson.stdout)).toBe(1);
  const dir = await tempDir(`${project}-once`);
  for (const flags of [[], ['--verbose']]) {
    const r = await bot(['backup', 'create', '--project', project, '--dir', dir, ...flags]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(times(r.stdout) + times(r.stderr), String(r.stdout)).toBe(1);
    expect(String(r.stdout)).toContain(`warning: app: ${warning}`);
  }
  const j = await bot(['backup', 'create', '--project', project, '--dir', dir, '--json']);
  expect(j.exitCode, String(j.stderr)).toBe(0);
  expect(times(j.stderr), String(j.stderr)).toBe(1);
  const m = JSON.parse(String(j.stdout)) as { services: Array<{ warnings?: string[] }> };
  expect(m.services[0]!.warnings?.filter((w) => w.includes(warning))).toHaveLength(1);
}

const rows = async (file: string) => Number((await execa('sqlite3', [file, 'SELECT count(*) FROM events'])).stdout.trim());

describe('stackvault.paths', () => {
  it('a labelled WAL database is archived with its -wal: the artifact and the restore hold its rows', async () => {
    const project = newProjectName('label-wal');
    const c = await app(project, { 'stackvault.paths': '/app/data/app.db' });
    await new Promise((r) => setTimeout(r, 3000));
    const live = Number(await sqlite(c, '/app/data/app.db', 'SELECT count(*) FROM events'));
    expect(live).toBeGreaterThan(10);
    const dir = await tempDir('label-wal');
    const created = await bot(['backup', 'create', '--project', project, '--dir', dir]);
    expect(created.exitCode, String(created.stderr)).toBe(0);
    expect(String(created.stdout)).not.toMatch(/copied while stopped/);

    // Read by sqlite3 from the extracted artifact, without stackvault.
    const id = (await readdir(dir)).find((n) => n.includes('_backup_'))!;
    const extracted = await extractArtifact(join(dir, id, 'app.tar.zst'));
    expect((await readdir(extracted)).sort()).toContain('app.db-wal');
    const archived = await rows(join(extracted, 'app.db'));
    expect(archived).toBeGreaterThanOrEqual(live);
    const maxId = Number((await execa('sqlite3', [join(extracted, 'app.db'), 'SELECT max(id) FROM events'])).stdout.trim());

    await run(c, ['sqlite3', '-cmd', '.timeout 10000', '/app/data/app.db', 'DELETE FROM events']); // the writer holds the lock now and then
    const restored = await bot(['backup', 'restore', id, '--yes', '--dir', dir]);
    expect(restored.exitCode, String(restored.stderr)).toBe(0);
    // The writer goes on after the restore: the backup's rows are those up to its last id.
    expect(Number(await sqlite(c, '/app/data/app.db', `SELECT count(*) FROM events WHERE id <= ${maxId}`))).toBe(archived);
    expect(await sqlite(c, '/app/data/app.db', 'PRAGMA integrity_check')).toBe('ok');
  });

  it('a missing path, a glob, / and a path named twice are refused before the app is paused, naming the label', async () => {
    const cases: Array<[string, RegExp]> = [
      ['/app/data/nope', /stackvault\.paths names \/app\/data\/nope, which does not exist in \S+ \(check the stackvault\.paths label of \S+\)/],
      ['/app/data/*', /stackvault\.paths names \/app\/data\/\*, a pattern: globs are not expanded/],
      ['/', /stackvault\.paths names \/, the container's whole filesystem/],
      ['/app/data,/app/data', /stackvault\.paths names \/app\/data twice/],
    ];
    const projects = cases.map(() => newProjectName('label-bad'));
    await Promise.all(cases.map(([label], i) => app(projects[i]!, { 'stackvault.paths': label }, 'mkdir -p /srv && touch /srv/ready && exec sleep infinity')));
    for (const [i, [, message]] of cases.entries()) {
      const project = projects[i]!;
      const dir = await tempDir('label-bad');
      const dry = await bot(['backup', 'create', '--project', project, '--dry-run']);
      expect(String(dry.stdout)).toMatch(message);
      const r = await bot(['backup', 'create', '--project', project, '--dir', dir]);
      expect(r.exitCode).toBe(1);
      expect(String(r.stdout)).toMatch(message);
      expect(String(r.stdout)).not.toMatch(/down \d|HTTP code|no such container|\.\.$/m);
    }
  });

  it('a labelled file that is not a database is copied while paused, and the output says paused', async () => {
    const project = newProjectName('label-file');
    await app(project, { 'stackvault.paths': '/app/data/notes.txt' }, 'echo hello > /app/data/notes.txt && mkdir -p /srv && touch /srv/ready && exec sleep infinity');
    const r = await bot(['backup', 'create', '--project', project, '--dir', await tempDir('label-file')]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stdout)).toMatch(/copied while paused \(no pre-copy: /);
    expect(String(r.stdout)).not.toMatch(/copied while stopped/);
  });

  it('stackvault.sqlite.paths on a database off every volume warns that it is lost when the container is recreated', async () => {
    const project = newProjectName('sqlite-off');
    await app(
      project,
      { 'stackvault.driver': 'sqlite', 'stackvault.sqlite.paths': '/srv/app.db' },
      "mkdir -p /srv && sqlite3 /srv/app.db 'CREATE TABLE t(x); INSERT INTO t VALUES (1)' && touch /srv/ready && exec sleep infinity",
    );
    await warnsOnce(project, '/srv/app.db is not on a volume: its data is lost when the container is recreated');
  });

  it('stackvault.paths on a directory off every volume warns once, in every form of the output', async () => {
    const project = newProjectName('files-off');
    await app(project, { 'stackvault.paths': '/srv/data' }, 'mkdir -p /srv/data && echo x > /srv/data/f && touch /srv/ready && exec sleep infinity');
    await warnsOnce(project, '/srv/data is not on a volume: its data is lost when the container is recreated');
  });

  it('a manifest that calls a labelled directory a SQLite file makes a restore touch no -wal, -shm or -journal beside it', async () => {
    const project = newProjectName('label-crafted');
    const c = await app(
      project,
      { 'stackvault.paths': '/app/data/uploads' },
      // Seeded once: the restore stops and starts the container, which runs this again.
      'if [ ! -e /app/data/.seeded ]; then mkdir -p /app/data/uploads /app/data/uploads-shm && echo one > /app/data/uploads/a && echo keep > /app/data/uploads-wal && echo keep > /app/data/uploads-journal && touch /app/data/.seeded; fi; mkdir -p /srv && touch /srv/ready && exec sleep infinity',
    );
    const dir = await tempDir('label-crafted');
    const created = await bot(['backup', 'create', '--project', project, '--dir', dir]);
    expect(created.exitCode, String(created.stderr)).toBe(0);
    const id = (await readdir(dir)).find((n) => n.includes('_backup_'))!;
    const file = join(dir, id, 'manifest.json');
    const manifest = JSON.parse(await readFile(file, 'utf8')) as { services: Array<{ details: Record<string, unknown> }> };
    manifest.services[0]!.details.sqliteFiles = ['/app/data/uploads'];
    await writeFile(file, JSON.stringify(manifest));
    const restored = await bot(['backup', 'restore', id, '--yes', '--dir', dir]);
    expect(restored.exitCode, String(restored.stdout) + String(restored.stderr)).toBe(0);
    expect(await run(c, ['cat', '/app/data/uploads-wal', '/app/data/uploads-journal'])).toBe('keep\nkeep\n');
    expect((await c.exec(['test', '-d', '/app/data/uploads-shm'])).exitCode).toBe(0);
    expect(await run(c, ['cat', '/app/data/uploads/a'])).toBe('one\n');
  });
});
