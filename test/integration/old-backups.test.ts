import { cp, readFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { GenericContainer, type StartedTestContainer, Wait } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { NEO4J_PASSWORD, PG_PASSWORD, REDIS_PASSWORD, startAll, startChroma, startNeo4j, startPostgres, startRedis } from '../support/containers.js';
import { IMAGES } from '../support/images.js';
import { execIn, stackContent } from '../support/stack-content.js';

/**
 * Backups written by earlier stackvault versions (test/fixtures/old-backups, made by
 * scripts/old-backups/make-fixtures.mjs with the old code itself), read by today's: listed,
 * verified, and restored into fresh containers of the same Compose project and services, as a
 * user finds them after `git pull`; the content is read back with the stores' own tools
 * (test/support/stack-content.ts) and compared with what the stack held when the old version
 * backed it up. A new manifest field, details schema or method must keep these restoring.
 */
const FIXTURES = fileURLToPath(new URL('../fixtures/old-backups', import.meta.url));
/** The root password the fixtures' MariaDB had (a test password, like those of containers.ts). */
const MARIADB_PASSWORD = 'mariadb-Secret-4242';
const SQLITE_PATHS = '/srv/db/app.db,/srv/db/state/jobs';

interface Fixture {
  version: string;
  project: string;
  id: string;
  content: Record<string, string>;
  manifest: Manifest;
}

const fixtures: Fixture[] = readdirSync(FIXTURES, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => {
    const expected = JSON.parse(readFileSync(join(FIXTURES, d.name, 'expected-content.json'), 'utf8')) as Omit<Fixture, 'version' | 'manifest'>;
    const manifest = JSON.parse(readFileSync(join(FIXTURES, d.name, expected.id, 'manifest.json'), 'utf8')) as Manifest;
    return { version: d.name, ...expected, manifest };
  })
  .sort((a, b) => a.version.localeCompare(b.version));

/** Content keys are `<service> ...` (stack-content.ts): those of the services a backup holds. */
const ofServices = (content: Record<string, string>, services: string[]) => Object.fromEntries(Object.entries(content).filter(([k]) => services.some((s) => k.startsWith(`${s} `))));
const okServices = (f: Fixture) => f.manifest.services.filter((s) => s.status === 'ok').map((s) => s.name);

/** A fresh, empty container for each service the old backup names, as `docker compose up` on a new host makes them. */
async function freshStack(f: Fixture): Promise<StartedTestContainer[]> {
  const docker = new Docker();
  // A killed earlier run of this file may have left containers of the fixture's fixed project name.
  for (const c of await docker.listContainers({ all: true, filters: { label: [`com.docker.compose.project=${f.project}`] } })) await docker.getContainer(c.Id).remove({ force: true, v: true });
  const project = f.project;
  const starts = f.manifest.services.map(async (s): Promise<StartedTestContainer> => {
    const service = s.name;
    if (s.driver === 'postgres') return startPostgres({ project, service });
    if (s.driver === 'redis') return startRedis({ project, service });
    if (s.driver === 'chroma') return startChroma({ project, service });
    if (s.driver === 'neo4j') return startNeo4j({ project, service });
    if (s.driver === 'mariadb')
      return new GenericContainer(IMAGES.mariadb)
        .withLabels({ 'com.docker.compose.project': project, 'com.docker.compose.service': service })
        .withEnvironment({ MARIADB_ROOT_PASSWORD: MARIADB_PASSWORD, MARIADB_DATABASE: 'app' })
        .withWaitStrategy(Wait.forHealthCheck())
        .start();
    if (s.driver === 'sqlite')
      return new GenericContainer(IMAGES.appstub)
        .withLabels({ 'com.docker.compose.project': project, 'com.docker.compose.service': service, 'stackvault.sqlite.paths': SQLITE_PATHS })
        .withBindMounts([{ source: await tempDir('old-backups-app'), target: '/srv/db', mode: 'rw' }])
        .withWaitStrategy(Wait.forHealthCheck())
        .start();
    throw new Error(`no fresh container for driver ${s.driver} (a new fixture needs a line here)`);
  });
  return startAll(starts);
}

/** The app starts on its new volume and creates its databases, as apps do (with a table of its own, not the backup's). */
async function appCreatesItsDatabases(app: StartedTestContainer): Promise<void> {
  const py = `import os, sqlite3
for p in ${JSON.stringify(SQLITE_PATHS.split(','))}:
    os.makedirs(os.path.dirname(p), exist_ok=True)
    db = sqlite3.connect(p)
    db.execute('CREATE TABLE made_by_the_new_app (x)')
    db.commit()
`;
  await execIn(app.getId(), ['python3', '-c', py], {}, '0');
}

describe('backups written by earlier versions', () => {
  let dir: string;

  beforeAll(async () => {
    // One backup directory holding all of them, as last month's backups are found; a copy, since
    // restore and verify write into it (restore points, verification records).
    dir = await tempDir('old-backups');
    for (const f of fixtures) await cp(join(FIXTURES, f.version, f.id), join(dir, f.id), { recursive: true });
  });

  it('are there, one per era, and their manifests hold none of the test passwords', async () => {
    expect(fixtures.map((f) => f.version.slice(-7))).toEqual(['301e1a8', '9261f20', '2d73fdf', '492a2dd']);
    // Their records of then: content fingerprints in forms today's code no longer writes (or none),
    // verifications and drills, and a partial backup.
    const methods = fixtures.flatMap((f) => f.manifest.services.map((s) => s.fingerprint?.method ?? 'none'));
    expect(methods).toEqual(expect.arrayContaining(['none', 'chroma-api-v1', 'redis-v2', 'sqlite-v2', 'postgres-copy-v2', 'mariadb-checksum-v1']));
    expect(fixtures.map((f) => [f.manifest.status, f.manifest.verifications?.length ?? 0, f.manifest.drills?.length ?? 0])).toEqual([
      ['partial', 1, 0],
      ['ok', 1, 0],
      ['ok', 1, 1],
      ['ok', 1, 1],
    ]);
    for (const f of fixtures) {
      const text = (await readFile(join(FIXTURES, f.version, f.id, 'manifest.json'), 'utf8')) + (await readFile(join(FIXTURES, f.version, f.id, 'backup_info.txt'), 'utf8'));
      for (const secret of [PG_PASSWORD, REDIS_PASSWORD, NEO4J_PASSWORD, MARIADB_PASSWORD]) expect(text).not.toContain(secret);
    }
  });

  it('are listed as they were written, in text and JSON, and each verifies', async () => {
    const json = await bot(['backup', 'list', '--json', '--dir', dir]);
    expect(json.exitCode, String(json.stderr)).toBe(0);
    const listed = JSON.parse(String(json.stdout)) as Manifest[];
    expect(listed.map((m) => [m.id, m.status]).sort()).toEqual(fixtures.map((f) => [f.id, f.manifest.status]).sort());
    const text = await bot(['backup', 'list', '--dir', dir]);
    expect(text.exitCode, String(text.stderr)).toBe(0);
    expect(String(text.stdout)).toContain(`${fixtures.length} backups in ${dir}`);
    expect(String(text.stderr)).toBe('');
    for (const f of fixtures) {
      const r = await bot(['backup', 'verify', f.id, '--dir', dir]);
      expect(r.exitCode, `${f.version}: ${String(r.stdout)}${String(r.stderr)}`).toBe(0);
      expect(String(r.stdout)).toContain(`all ${okServices(f).length} artifacts verified`);
    }
  });

  describe.each(fixtures)('$version, restored into a fresh stack of its project', (f) => {
    let containers: StartedTestContainer[] = [];
    const container = (service: string) => containers[f.manifest.services.findIndex((s) => s.name === service)]!;

    beforeAll(async () => {
      containers = await freshStack(f);
    });
    afterAll(async () => {
      await Promise.all(containers.map((c) => c.stop()));
    });

    it('restores the app before it has created its database files (and the directory of one): its restore point records them as absent', async () => {
      const r = await bot(['backup', 'restore', f.id, '--only', 'app', '--yes', '--json', '--dir', dir], { timeout: 300_000 });
      expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
      const result = JSON.parse(String(r.stdout)) as { restorePointId: string; services: Array<{ service: string; status: string; check: string }> };
      expect(result.services.map((s) => `${s.service} ${s.status} ${s.check}`)).toEqual(['app restored equal']);
      const point = JSON.parse(await readFile(join(dir, result.restorePointId, 'manifest.json'), 'utf8')) as Manifest;
      expect(point.services[0]!.details!.files).toEqual(SQLITE_PATHS.split(',').map((path) => ({ path, absent: true })));
      expect(ofServices(await stackContent(f.project), ['app'])).toEqual(ofServices(f.content, ['app']));
    });

    it('restores exactly what the old version backed up, read back with the stores’ own tools', async () => {
      await appCreatesItsDatabases(container('app'));
      const r = await bot(['backup', 'restore', f.id, '--yes', '--json', '--dir', dir], { timeout: 400_000 });
      expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
      const result = JSON.parse(String(r.stdout)) as { services: Array<{ service: string; status: string; check: string }> };
      expect(result.services.map((s) => `${s.service} ${s.status} ${s.check}`)).toEqual(okServices(f).map((s) => `${s} restored equal`));
      const content = await stackContent(f.project);
      expect(ofServices(content, okServices(f))).toEqual(ofServices(f.content, okServices(f)));
      // What the backup does not hold is said before anything changes, and left as it was (empty).
      for (const missing of f.manifest.services.filter((s) => s.status !== 'ok')) {
        expect(String(r.stderr)).toContain(`Not in this backup, so left as they are now:\n  ${missing.name}  (${missing.status} when it was made`);
        expect(ofServices(content, [missing.name])).toEqual(missing.driver === 'chroma' ? { [`${missing.name} collections`]: '' } : {});
      }
    });

    it('a backup made now sits beside it in the same directory', async () => {
      const r = await bot(['backup', 'create', '--json', '--project', f.project, '--only', 'postgres', '--dir', dir], { timeout: 300_000 });
      expect(r.exitCode, String(r.stderr)).toBe(0);
      const list = JSON.parse(String((await bot(['backup', 'list', '--json', '--dir', dir])).stdout)) as Manifest[];
      expect(list[0]!.id).toBe((JSON.parse(String(r.stdout)) as Manifest).id);
      expect(list.map((m) => m.id)).toEqual(expect.arrayContaining(fixtures.map((x) => x.id)));
    });
  });

  it('stats, prune and cleanup read them with the newer backups, and remove none of them', async () => {
    const stats = await bot(['backup', 'stats', '--json', '--dir', dir]);
    expect(stats.exitCode, String(stats.stderr)).toBe(0);
    for (const args of [['prune'], ['cleanup', '1']]) {
      const r = await bot(['backup', ...args, '--dir', dir]);
      expect(r.exitCode, `${args.join(' ')}: ${String(r.stdout)}${String(r.stderr)}`).toBe(0);
    }
    const list = JSON.parse(String((await bot(['backup', 'list', '--json', '--dir', dir])).stdout)) as Manifest[];
    expect(list.map((m) => m.id)).toEqual(expect.arrayContaining(fixtures.map((f) => f.id)));
  });
});
