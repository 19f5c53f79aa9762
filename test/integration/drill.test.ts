import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import { GenericContainer, type StartedTestContainer, Wait } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, startNeo4j, startPostgres, startRedis } from '../support/containers.js';
import { IMAGES } from '../support/images.js';
import { seedStack, stackContent } from '../support/stack-content.js';
import { rewriteArtifact } from '../support/tamper.js';

const docker = new Docker();
/** The drill copies of backup `id` (other test files drill at the same time). */
const drillContainers = (id: string) => docker.listContainers({ all: true, filters: { label: [`stackvault.drill-for=${id}`] } });

/** `backup drill`: the backup restored into a throwaway copy of its services, checked, removed. */
describe('backup drill', () => {
  const project = newProjectName('drill');
  let containers: StartedTestContainer[] = [];
  let dir: string;
  let id: string;

  beforeAll(async () => {
    containers = await Promise.all([
      startPostgres({ project }),
      startRedis({ project }),
      startNeo4j({ project }),
      new GenericContainer(IMAGES.appstub)
        .withLabels({ 'com.docker.compose.project': project, 'com.docker.compose.service': 'app' })
        .withBindMounts([{ source: await tempDir('drill-uploads'), target: '/srv/uploads', mode: 'rw' }])
        .withWaitStrategy(Wait.forHealthCheck())
        .start(),
      // A SQLite app (no sqlite3 in its image; WAL rows; a database in a subdirectory).
      new GenericContainer(IMAGES.appstub)
        .withLabels({ 'com.docker.compose.project': project, 'com.docker.compose.service': 'notes', 'stackvault.sqlite.paths': '/srv/db/app.db,/srv/db/state/jobs' })
        .withBindMounts([{ source: await tempDir('drill-sqlite'), target: '/srv/db', mode: 'rw' }])
        .withWaitStrategy(Wait.forHealthCheck())
        .start(),
    ]);
    await seedStack(project);
    dir = await tempDir('drill');
    const r = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir], { timeout: 300_000 });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    id = (JSON.parse(String(r.stdout)) as Manifest).id;
  });
  afterAll(async () => {
    await Promise.all(containers.map((c) => c.stop()));
  });

  it('restores every service into a throwaway copy, finds it equal, removes the copy, records the drill; production untouched', async () => {
    const before = await stackContent(project);
    expect(before['notes /srv/db/app.db sv_seed']).toMatch(/^500 /);
    const startedAt = await Promise.all(containers.map(async (c) => (await docker.getContainer(c.getId()).inspect()).State.StartedAt));
    const r = await bot(['backup', 'drill', id, '--json', '--dir', dir], { timeout: 400_000 });
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    const result = JSON.parse(String(r.stdout)) as { ok: boolean; services: Record<string, { ok: boolean; check: string }> };
    expect(result.services).toEqual({
      app: { ok: true, check: 'equal' },
      neo4j: { ok: true, check: 'equal' },
      notes: { ok: true, check: 'equal' },
      postgres: { ok: true, check: 'equal' },
      redis: { ok: true, check: 'equal' },
    });
    expect(await drillContainers(id)).toEqual([]);
    const list = JSON.parse(String((await bot(['backup', 'list', '--json', '--dir', dir])).stdout)) as Manifest[];
    expect(list.map((m) => m.id)).toEqual([id]); // the restore point of the empty copy is not kept
    expect(list[0]!.drills?.map((d) => d.ok)).toEqual([true]);
    expect(await stackContent(project)).toEqual(before);
    expect(await Promise.all(containers.map(async (c) => (await docker.getContainer(c.getId()).inspect()).State.StartedAt))).toEqual(startedAt);
  });

  it('a backup whose dump was changed after it was written fails the drill (exit 5), and says where', async () => {
    await rewriteArtifact(join(dir, id), 'postgres', (sql) => sql.replace('naïve', 'naive'));
    const r = await bot(['backup', 'drill', id, '--dir', dir], { timeout: 400_000 });
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(5);
    expect(String(r.stdout)).toMatch(/❌ postgres: .*sv_seed/);
    expect(String(r.stdout)).toMatch(/Drill FAILED/);
    expect(await drillContainers(id)).toEqual([]);
    const m = (JSON.parse(String((await bot(['backup', 'list', '--json', '--dir', dir])).stdout)) as Manifest[]).find((x) => x.id === id)!;
    expect(m.drills?.map((d) => d.ok)).toEqual([true, false]);
  });

  it('a manifest recording a SQLite file in a system directory is refused (exit 5) before any container starts', async () => {
    const file = join(dir, id, 'manifest.json');
    const manifest = JSON.parse(await readFile(file, 'utf8')) as Manifest;
    const files = manifest.services.find((s) => s.name === 'notes')!.details!.files as Array<{ path: string }>;
    files[1]!.path = '/etc/cron.d/jobs';
    await writeFile(file, JSON.stringify(manifest));
    const r = await bot(['backup', 'drill', id, '--dir', dir], { timeout: 300_000 });
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(5);
    expect(String(r.stderr)).toContain('"/etc/cron.d/jobs", which a throwaway copy will not hold (inside the system directory /etc)');
    expect(String(r.stdout) + String(r.stderr)).not.toContain('starting an empty');
    expect(await drillContainers(id)).toEqual([]);
    const m = (JSON.parse(String((await bot(['backup', 'list', '--json', '--dir', dir])).stdout)) as Manifest[]).find((x) => x.id === id)!;
    expect(m.drills?.map((d) => d.ok)).toEqual([true, false, false]);
    expect(m.drills![2]!.services.notes!.check).toContain('/etc/cron.d/jobs');
  });

  it('a manifest recording an app path over the programs a throwaway runs (/usr/bin) is refused (exit 5) before any container starts', async () => {
    const file = join(dir, id, 'manifest.json');
    const manifest = JSON.parse(await readFile(file, 'utf8')) as Manifest;
    (manifest.services.find((s) => s.name === 'notes')!.details!.files as Array<{ path: string }>)[1]!.path = '/srv/db/state/jobs'; // as written
    const app = manifest.services.find((s) => s.name === 'app')!;
    app.details!.paths = [...(app.details!.paths as string[]), '/usr/bin'];
    await writeFile(file, JSON.stringify(manifest));
    // Before, the drill mounted a volume at /usr/bin in its throwaway and filled it from the archive.
    const r = await bot(['backup', 'drill', id, '--dir', dir], { timeout: 300_000 });
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(5);
    expect(String(r.stderr)).toContain('app: the backup records the path /usr/bin, which is over /usr/bin, where the programs a throwaway container runs are');
    expect(String(r.stdout) + String(r.stderr)).not.toContain('starting an empty');
    expect(await drillContainers(id)).toEqual([]);
  });
});
