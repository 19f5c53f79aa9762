import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { GenericContainer, type StartedTestContainer, Wait } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { readJson, tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, run } from '../support/containers.js';
import { IMAGES } from '../support/images.js';
import { seedStack, stackContent } from '../support/stack-content.js';

/** Two databases, one in a directory the app makes only when it first writes. */
const PATHS = ['/srv/db/app.db', '/srv/db/state/jobs'];
const LABELS = { 'stackvault.sqlite.paths': PATHS.join(',') };

/** The files a restore writes at a database's path. */
const written = (path: string) => ['', '-wal', '-shm', '-journal'].map((s) => path + s);

/** An app stand-in on `dir` (a bind at /srv/db), as compose starts it; `entrypoint` replaces the stand-in's own. */
function startApp(project: string, dir: string, entrypoint?: string): Promise<StartedTestContainer> {
  let c = new GenericContainer(IMAGES.appstub)
    .withLabels({ 'com.docker.compose.project': project, 'com.docker.compose.service': 'app', ...LABELS })
    .withBindMounts([{ source: dir, target: '/srv/db', mode: 'rw' }]);
  if (entrypoint) c = c.withEntrypoint(['sh', '-c', entrypoint]).withHealthCheck({ test: ['CMD', 'true'], interval: 1000, timeout: 1000, retries: 30, startPeriod: 0 });
  return c.withWaitStrategy(Wait.forHealthCheck()).start();
}

/** What is in the app's bind on the host (read there, not through the container or stackvault). */
async function onHost(dir: string): Promise<string[]> {
  const names: string[] = [];
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) names.push(join(e.parentPath, e.name).slice(dir.length));
  return names.sort();
}

/**
 * Disaster recovery of a SQLite app: the backup is restored into the app as `docker compose up`
 * makes it on a new host, on an empty volume where it has not created its databases yet (many
 * apps create them on their first request). The restore point records them as absent; putting it
 * back removes exactly the files the restore wrote there.
 */
describe('a SQLite app restored on a new host, before it created its databases', () => {
  const source = newProjectName('fresh-src');
  const target = newProjectName('fresh-dst');
  let old: StartedTestContainer;
  let fresh: StartedTestContainer;
  let freshDir: string;
  let dir: string;
  let seeded: Record<string, string>;

  beforeAll(async () => {
    old = await startApp(source, await tempDir('fresh-src'));
    await seedStack(source);
    await run(old, ['chown', '-R', '1000:1000', '/srv/db']);
    seeded = await stackContent(source);
    expect(Object.keys(seeded)).toEqual(expect.arrayContaining(PATHS.map((p) => `app ${p} sv_seed`)));
    dir = await tempDir('fresh-backups');
    const created = await bot(['backup', 'create', '--project', source, '--dir', dir]);
    expect(created.exitCode, String(created.stderr)).toBe(0);
    freshDir = await tempDir('fresh-dst');
    fresh = await startApp(target, freshDir);
  });

  afterAll(async () => {
    await Promise.all([old, fresh].filter(Boolean).map((c) => c.stop()));
  });

  it('a backup of it still refuses the missing files: a missing path may be a typo in the label', async () => {
    const r = await bot(['backup', 'create', '--json', '--project', target, '--dir', await tempDir('fresh-none')]);
    expect(r.exitCode, String(r.stderr)).toBe(1);
    expect(String(r.stderr)).toContain('/srv/db/app.db does not exist in the container');
    expect(await onHost(freshDir)).toEqual([]);
  });

  it('is restored whole, with the directory it lacked, owned as its database is', async () => {
    const r = await bot(['backup', 'restore', 'latest', '--into-project', target, '--yes', '--json', '--dir', dir]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const result = JSON.parse(String(r.stdout)) as { restorePointId: string; services: Array<{ service: string; status: string; check: string }> };
    expect(result.services.map((s) => `${s.service} ${s.status} ${s.check}`)).toEqual(['app restored equal']);
    expect(await stackContent(target)).toEqual(seeded);
    const state = await stat(join(freshDir, 'state'));
    expect([state.uid, state.gid, state.mode & 0o777]).toEqual([1000, 1000, 0o755]);
    // The restore point says the files were not there, and holds nothing of them.
    const point = await readJson<Manifest>(join(dir, result.restorePointId, 'manifest.json'));
    expect(point.services.map((s) => [s.status, s.details?.files])).toEqual([['ok', PATHS.map((path) => ({ path, absent: true }))]]);
    for (const args of [[], ['--deep']]) {
      const v = await bot(['backup', 'verify', result.restorePointId, ...args, '--dir', dir]);
      expect(v.exitCode, `${args.join(' ')} ${String(v.stdout)}${String(v.stderr)}`).toBe(0);
    }

    // Putting the restore point back (by its ID, as the output says) removes exactly what the
    // restore wrote: the databases and their -wal, -shm and -journal; the directory it made stays.
    const undo = await bot(['backup', 'restore', result.restorePointId, '--yes', '--json', '--dir', dir]);
    expect(undo.exitCode, String(undo.stderr)).toBe(0);
    const undone = JSON.parse(String(undo.stdout)) as { services: Array<{ service: string; status: string; check: string }> };
    expect(undone.services.map((s) => `${s.status} ${s.check}`)).toEqual(['restored equal']);
    expect(await onHost(freshDir)).toEqual(['/state']);
  });
});

/**
 * The same, where the restore fails once its files are written (the app exits when it finds a
 * database at start): the restore point is put back, and the app's volume is empty again.
 */
describe('a failed restore into an app that had not created its databases', () => {
  const source = newProjectName('fresh-rsrc');
  const target = newProjectName('fresh-rdst');
  let old: StartedTestContainer;
  let fresh: StartedTestContainer;
  let freshDir: string;
  let dir: string;

  beforeAll(async () => {
    old = await startApp(source, await tempDir('fresh-rsrc'));
    await seedStack(source);
    dir = await tempDir('fresh-rbackups');
    const created = await bot(['backup', 'create', '--project', source, '--dir', dir]);
    expect(created.exitCode, String(created.stderr)).toBe(0);
    freshDir = await tempDir('fresh-rdst');
    // Runs while it has no database; exits at once when it starts with one.
    fresh = await startApp(target, freshDir, 'while [ ! -e /srv/db/app.db ]; do sleep 0.2; done; exit 3');
  });

  afterAll(async () => {
    await Promise.all([old, fresh].filter(Boolean).map((c) => c.stop()));
  });

  it('is put back from its restore point: the files it wrote are removed, the app runs again', async () => {
    const r = await bot(['backup', 'restore', 'latest', '--into-project', target, '--yes', '--json', '--dir', dir]);
    expect(r.exitCode, String(r.stderr)).toBe(1);
    const result = JSON.parse(String(r.stdout)) as { services: Array<{ service: string; status: string; error: string }> };
    expect(result.services.map((s) => `${s.service} ${s.status}`)).toEqual(['app rolled-back']);
    expect(result.services[0]!.error).toMatch(/exited/);
    const left = await onHost(freshDir);
    for (const path of PATHS.flatMap(written)) expect(left).not.toContain(path.replace('/srv/db', ''));
    expect(left).toEqual(['/state']);
    expect((await fresh.exec(['true'])).exitCode).toBe(0); // running again
  });
});
