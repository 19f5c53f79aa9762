import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AdminClient, ChromaClient } from 'chromadb';
import Docker from 'dockerode';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { afterAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, PG_SUPERUSER, psql, run, startChroma, startPostgres } from '../support/containers.js';
import { IMAGES } from '../support/images.js';
import { independentFingerprint } from '../support/pg.js';

/**
 * Round trips on data written by other people's tools: redis-benchmark, pgbench and the
 * official Chroma client. Each is checked by a fingerprint that is not stackvault's code:
 * Redis's own DEBUG DIGEST, the server-side md5 per table, the Chroma client's own reads.
 */
async function createAndRestore(
  project: string,
  change: () => Promise<void>,
  extra: string[] = [],
): Promise<{ created: Manifest; restored: { services: Array<{ status: string; check: string }> }; dir: string }> {
  const dir = await tempDir('corpus');
  const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir, ...extra], { timeout: 400_000 });
  expect(c.exitCode, String(c.stderr)).toBe(0);
  const created = JSON.parse(String(c.stdout)) as Manifest;
  await change();
  const r = await bot(['backup', 'restore', created.id, '--dir', dir, '--yes', '--json'], { timeout: 400_000 });
  expect(r.exitCode, String(r.stderr)).toBe(0);
  return { created, restored: JSON.parse(String(r.stdout)), dir };
}

/**
 * Fills a Redis with redis-benchmark's data plus every byte value in keys and values, a stream
 * with a consumer group and pending entries, several databases and TTLs in ms.
 */
async function seedRedis(redis: StartedTestContainer): Promise<void> {
  const cli = (...args: string[]) => run(redis, ['redis-cli', ...args]);
  await run(redis, ['redis-benchmark', '-q', '-n', '20000', '-r', '5000', '-d', '64', '-t', 'set,lpush,sadd,hset,zadd,rpush,incr']);
  // Every byte value in keys and values, through stdin (-x), never argv.
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const file = join(await tempDir('redisbytes'), 'all.bin');
  await writeFile(file, Buffer.concat([bytes, randomBytes(100_000)]));
  await redis.copyFilesToContainer([{ source: file, target: '/tmp/all.bin' }]);
  await run(redis, ['sh', '-c', 'redis-cli -x SET "bin:\\x00\\xff key" < /tmp/all.bin && redis-cli -n 3 -x HSET bytes field < /tmp/all.bin && redis-cli -n 15 -x SET last < /tmp/all.bin']);
  for (let i = 0; i < 50; i++) await cli('XADD', 'events', '*', 'n', String(i), 'body', `évènement ${i}`);
  await cli('XGROUP', 'CREATE', 'events', 'workers', '0');
  await cli('XREADGROUP', 'GROUP', 'workers', 'alice', 'COUNT', '7', 'STREAMS', 'events', '>');
  await cli('SET', 'session', 'x', 'PX', '86400123');
  await cli('-n', '3', 'PEXPIRE', 'bytes', '90000777');
}

describe('Redis: redis-benchmark, every byte, streams with groups, several databases, ms TTLs', () => {
  const started: StartedTestContainer[] = [];
  afterAll(async () => {
    await Promise.all(started.map((c) => c.stop().catch(() => undefined)));
  });

  const startRedisWithAof = async (project: string, image: string, extra: string[]) => {
    const redis = await new GenericContainer(image)
      .withLabels({ 'com.docker.compose.project': project, 'com.docker.compose.service': 'cache' })
      .withCommand(['redis-server', '--appendonly', 'yes', ...extra])
      .withWaitStrategy(Wait.forSuccessfulCommand('redis-cli ping'))
      .start();
    started.push(redis);
    return { redis, cli: (...args: string[]) => run(redis, ['redis-cli', ...args]).then((s) => s.trim()) };
  };

  it("comes back with the same DEBUG DIGEST (Redis's own hash of the dataset) after --verify and restore", async () => {
    const project = newProjectName('rediscorpus');
    const { redis, cli } = await startRedisWithAof(project, IMAGES.redis, ['--enable-debug-command', 'yes']);
    await seedRedis(redis);
    // A key that expires a day and a minute from now: --verify records it, and by the time of
    // the restore it expires within a day, which a check comparing as of then must allow for.
    const crossing = Date.now() + 86_400_000 + 60_000;
    await cli('-n', '5', 'SET', 'crossing', 'y', 'PXAT', String(crossing));
    const digest = await cli('DEBUG', 'DIGEST');

    const { created, restored, dir } = await createAndRestore(project, async () => {
      await new Promise((r) => setTimeout(r, Math.max(0, crossing - 86_400_000 - Date.now() + 1000)));
      await cli('FLUSHALL');
      await cli('SET', 'after', 'the backup');
    }, ['--verify']);
    expect(created.verifications?.at(-1)).toMatchObject({ deep: true, ok: true });
    expect(created.services[0]!.fingerprint?.method).toBe('redis-v5'); // recorded by --verify
    // Recorded while more than a day was left, so the restore below crossed that line.
    expect(created.services[0]!.fingerprint?.parts[`db5 expiring ${new Date(crossing).toISOString().slice(0, 10)}`]).toMatch(/^n=1 /);
    // And a deep verify now compares the recorded fingerprint with the loaded copy as of now too.
    const again = await bot(['backup', 'verify', created.id, '--deep', '--dir', dir], { timeout: 400_000 });
    expect(again.exitCode, String(again.stdout) + String(again.stderr)).toBe(0);
    expect(restored.services).toEqual([expect.objectContaining({ status: 'restored', check: 'equal' })]);
    expect(await cli('DEBUG', 'DIGEST')).toBe(digest);
    expect(Number(await cli('PEXPIRETIME', 'session'))).toBeGreaterThan(Date.now());
  });

  it('Redis 6, whose AOF is one appendonly.aof file: restored, and still there after a restart that loads the AOF', async () => {
    const project = newProjectName('redis6');
    const { redis, cli } = await startRedisWithAof(project, IMAGES.redis6, []);
    expect(await cli('INFO', 'server')).toContain('redis_version:6.');
    await seedRedis(redis);
    const digest = await cli('DEBUG', 'DIGEST');

    const { created, restored } = await createAndRestore(project, async () => {
      await cli('FLUSHALL');
      await cli('SET', 'after', 'the backup');
    });
    expect(created.services[0]!.details).toMatchObject({ aofFile: 'appendonly.aof' });
    expect(restored.services).toEqual([expect.objectContaining({ status: 'restored', check: 'equal' })]);
    expect(await cli('DEBUG', 'DIGEST')).toBe(digest);
    // Redis 6 with AOF on reads only appendonly.aof at start: the data must be in it.
    await new Docker().getContainer(redis.getId()).restart();
    for (let i = 0; i < 60 && (await redis.exec(['redis-cli', 'ping'])).stdout.trim() !== 'PONG'; i++) await new Promise((r) => setTimeout(r, 250));
    expect(await cli('DEBUG', 'DIGEST')).toBe(digest);
    expect(await cli('CONFIG', 'GET', 'appendonly')).toBe('appendonly\nyes');
  });
});

describe('PostgreSQL: pgbench', () => {
  const project = newProjectName('pgbench');
  let pg: StartedTestContainer;
  afterAll(async () => {
    await pg?.stop().catch(() => undefined);
  });

  it('pgbench -i plus a minute of its transactions come back exactly (server-side md5 per table)', async () => {
    pg = await startPostgres({ project });
    await run(pg, ['pgbench', '-i', '-s', '3', '-U', PG_SUPERUSER, 'bot']);
    await run(pg, ['pgbench', '-U', PG_SUPERUSER, '-c', '2', '-t', '500', 'bot']);
    const before = await independentFingerprint(pg);
    const { restored } = await createAndRestore(project, async () => {
      await run(pg, ['pgbench', '-U', PG_SUPERUSER, '-c', '2', '-t', '200', 'bot']);
      await psql(pg, 'bot', 'DROP TABLE pgbench_history');
    });
    expect(restored.services).toEqual([expect.objectContaining({ status: 'restored', check: 'equal' })]);
    expect(await independentFingerprint(pg)).toBe(before);
  });
});

describe('Chroma: written by the official JS client', () => {
  const project = newProjectName('chromaclient');
  let chroma: StartedTestContainer;
  afterAll(async () => {
    await chroma?.stop().catch(() => undefined);
  });

  const port = async () => Number((await new Docker().getContainer(chroma.getId()).inspect()).NetworkSettings.Ports['8000/tcp']![0]!.HostPort);

  /** Everything the client can read back, in a stable form: tenants, databases, collections, records. */
  async function readAll(): Promise<string> {
    const out: unknown[] = [];
    for (const tenant of ['default_tenant', 'acme']) {
      for (const database of tenant === 'acme' ? ['prod', 'staging'] : ['default_database']) {
        const client = new ChromaClient({ host: '127.0.0.1', port: await port(), tenant, database });
        for (const c of (await client.listCollections()).sort((a, b) => a.name.localeCompare(b.name))) {
          const got = await c.get({ include: ['embeddings', 'documents', 'metadatas'] as never });
          const order = got.ids.map((_, i) => i).sort((a, b) => got.ids[a]!.localeCompare(got.ids[b]!));
          out.push([tenant, database, c.name, c.metadata, order.map((i) => [got.ids[i], got.embeddings?.[i], got.documents?.[i], got.metadatas?.[i]])]);
        }
      }
    }
    // Chroma returns metadata keys in no fixed order: compare with keys sorted.
    return JSON.stringify(out, (_k, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v));
  }

  it('several tenants and databases, collections with metadata, 384-dimension embeddings', async () => {
    chroma = await startChroma({ project });
    const admin = new AdminClient({ host: '127.0.0.1', port: await port(), ssl: false });
    await admin.createTenant({ name: 'acme' });
    for (const name of ['prod', 'staging']) await admin.createDatabase({ name, tenant: 'acme' });
    const rnd = (seed: number) => Array.from({ length: 384 }, (_, i) => Math.fround(Math.sin(seed * 997 + i) * 0.5));
    for (const [tenant, database, n] of [
      ['default_tenant', 'default_database', 300],
      ['acme', 'prod', 150],
      ['acme', 'staging', 20],
    ] as const) {
      const client = new ChromaClient({ host: '127.0.0.1', port: await port(), tenant, database });
      const c = await client.createCollection({ name: `memories-${database}`, metadata: { owner: 'bot', 'hnsw:space': 'cosine', note: 'ünïcødé ✓' }, embeddingFunction: null });
      await c.add({
        ids: Array.from({ length: n }, (_, i) => `doc-${i}`),
        embeddings: Array.from({ length: n }, (_, i) => rnd(i)),
        documents: Array.from({ length: n }, (_, i) => `Document ${i}: naïve café ☕ ${'x'.repeat(i % 50)}`),
        metadatas: Array.from({ length: n }, (_, i) => ({ i, even: i % 2 === 0, score: i / 7, tag: `t${i % 5}` })),
      });
      await client.createCollection({ name: `empty-${database}`, embeddingFunction: null });
    }
    const before = await readAll();
    const { restored } = await createAndRestore(project, async () => {
      await untilReady();
      const client = new ChromaClient({ host: '127.0.0.1', port: await port(), tenant: 'acme', database: 'prod' });
      await client.deleteCollection({ name: 'memories-prod' });
      const d = new ChromaClient({ host: '127.0.0.1', port: await port() });
      await (await d.getCollection({ name: 'memories-default_database', embeddingFunction: null as never })).delete({ ids: ['doc-1', 'doc-2'] });
    });
    expect(restored.services).toEqual([expect.objectContaining({ status: 'restored', check: 'equal' })]);
    await untilReady();
    expect(await readAll()).toBe(before);
  });

  async function untilReady(): Promise<void> {
    for (let i = 0; ; i++) {
      try {
        await new ChromaClient({ host: '127.0.0.1', port: await port() }).heartbeat();
        return;
      } catch (err) {
        if (i > 60) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }
});
