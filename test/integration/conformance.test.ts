import { join } from 'node:path';
import { GenericContainer, type StartedTestContainer, Wait } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import type { BackupPlanResult } from '../../src/core/plan.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, startChroma, startNeo4j, startPostgres, startRedis } from '../support/containers.js';
import { IMAGES } from '../support/images.js';
import { changeStack, seedStack, stackContent } from '../support/stack-content.js';
import { rawArtifact, replaceArtifact } from '../support/tamper.js';

const compose = (project: string, service: string) => ({ 'com.docker.compose.project': project, 'com.docker.compose.service': service });

/** Every datastore stackvault backs up, each a real server on the local images. Adding a driver = one more row. */
const STORES: Array<{ store: string; driver: string; start(project: string): Promise<StartedTestContainer> }> = [
  { store: 'postgres', driver: 'postgres', start: (project) => startPostgres({ project }) },
  {
    store: 'mariadb',
    driver: 'mariadb',
    start: (project) =>
      new GenericContainer(IMAGES.mariadb)
        .withLabels(compose(project, 'mariadb'))
        .withEnvironment({ MARIADB_ROOT_PASSWORD: 'conformance-Root-4242', MARIADB_DATABASE: 'app' })
        .withWaitStrategy(Wait.forHealthCheck())
        .start(),
  },
  { store: 'redis', driver: 'redis', start: (project) => startRedis({ project }) },
  {
    store: 'redis8',
    driver: 'redis',
    start: (project) => new GenericContainer(IMAGES.redis8).withLabels(compose(project, 'redis8')).withWaitStrategy(Wait.forSuccessfulCommand('redis-cli ping')).start(),
  },
  {
    store: 'valkey',
    driver: 'redis',
    start: (project) => new GenericContainer(IMAGES.valkey).withLabels(compose(project, 'valkey')).withWaitStrategy(Wait.forSuccessfulCommand('valkey-cli ping')).start(),
  },
  { store: 'chroma', driver: 'chroma', start: (project) => startChroma({ project }) },
  { store: 'neo4j', driver: 'neo4j', start: (project) => startNeo4j({ project }) },
  {
    // An app container with a data mount (the bundled app image is a SQLite app: restore.test.ts).
    store: 'app',
    driver: 'files',
    start: async (project) =>
      new GenericContainer(IMAGES.appstub)
        .withLabels(compose(project, 'app'))
        .withBindMounts([{ source: await tempDir('conf-app-data'), target: '/srv/uploads', mode: 'rw' }])
        .withWaitStrategy(Wait.forHealthCheck())
        .start(),
  },
  {
    // An app that keeps SQLite files named by the label (one in WAL mode with committed rows
    // still in its -wal, one without an extension in a subdirectory), idle so it can be compared.
    store: 'sqlite',
    driver: 'sqlite',
    start: async (project) =>
      new GenericContainer(IMAGES.appstub)
        .withLabels({ ...compose(project, 'sqlite'), 'stackvault.sqlite.paths': '/srv/db/app.db,/srv/db/state/jobs' })
        .withBindMounts([{ source: await tempDir('conf-sqlite-data'), target: '/srv/db', mode: 'rw' }])
        .withWaitStrategy(Wait.forHealthCheck())
        .start(),
  },
];

/**
 * The same contract for every driver, on data seeded and read back by the stores' own tools
 * (test/support/stack-content.ts, none of stackvault's code): recognised by what it is, backed up
 * with no secret in the manifest, restored exactly after everything changed (and said to be
 * equal by the content check), proven by verify --deep, and a cut-off artifact refused before
 * anything changes.
 */
describe.each(STORES)('driver conformance: $store', ({ store, driver, start }) => {
  const project = newProjectName(`conf-${store}`);
  let container: StartedTestContainer;
  let dir: string;
  let id: string;
  let seeded: Record<string, string>;

  beforeAll(async () => {
    container = await start(project);
    dir = await tempDir(`conf-${store}`);
    await seedStack(project);
    seeded = await stackContent(project);
  });
  afterAll(async () => {
    await container?.stop();
  });

  it('is recognised by what it is', async () => {
    const r = await bot(['backup', 'create', '--dry-run', '--json', '--project', project, '--dir', dir]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const plan = JSON.parse(String(r.stdout)) as BackupPlanResult;
    expect(plan.services.map((s) => [s.service, s.driver])).toEqual([[store, driver]]);
  });

  it('backs up with a checksum and no secret of the container in the manifest', async () => {
    const r = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir], { timeout: 300_000 });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const m = JSON.parse(String(r.stdout)) as Manifest;
    id = m.id;
    expect(m.services).toHaveLength(1);
    expect(m.services[0]).toMatchObject({ name: store, driver, status: 'ok' });
    expect(m.services[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
    const env = (await container.exec(['env'])).stdout;
    const secrets = [...env.matchAll(/^\w*(PASSWORD|SECRET|AUTH)\w*=(.+)$/gm)].map((x) => x[2]!).filter((v) => v.length >= 6);
    for (const secret of secrets) expect(JSON.stringify(m) + String(r.stderr)).not.toContain(secret);
  });

  it('restores exactly what was seeded after everything changed, and its check says equal', async () => {
    await changeStack(project);
    expect(await stackContent(project)).not.toEqual(seeded);
    const r = await bot(['backup', 'restore', id, '--yes', '--dir', dir], { timeout: 300_000 });
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    expect(String(r.stdout)).toMatch(/equal/);
    expect(await stackContent(project)).toEqual(seeded);
  });

  it('verify --deep proves the artifact loads, and the manifest then holds its content fingerprint', async () => {
    const r = await bot(['backup', 'verify', id, '--deep', '--dir', dir], { timeout: 300_000 });
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    const listed = JSON.parse(String((await bot(['backup', 'list', '--json', '--dir', dir])).stdout)) as Manifest[];
    expect(listed.find((m) => m.id === id)!.services[0]!.fingerprint?.parts).toBeTruthy();
  });

  it('a cut-off artifact (with a checksum to match) is refused before anything changes', async () => {
    const path = join(dir, id);
    const manifest = JSON.parse(String((await bot(['backup', 'list', '--json', '--dir', dir])).stdout)) as Manifest[];
    const entry = manifest.find((m) => m.id === id)!.services[0]!;
    const raw = await rawArtifact(path, entry.artifact!);
    // Cut inside the content, not only in a tar's closing blocks (1024 bytes, after up to 511 of padding).
    await replaceArtifact(path, store, raw.subarray(0, Math.max(1, Math.min(Math.floor(raw.length * 0.6), raw.length - 1537))));
    const before = await stackContent(project);
    const r = await bot(['backup', 'restore', id, '--yes', '--dir', dir], { timeout: 300_000 });
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(5);
    expect(await stackContent(project)).toEqual(before);
  });
});
