import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StartedTestContainer } from 'testcontainers';
import { chromaApi, newProjectName, NEO4J_PASSWORD, PG_SUPERUSER, psql, redisCli, run, sqlite, startApp, startChroma, startNeo4j, startPostgres, startRedis } from '../support/containers.js';
import { IMAGES } from '../support/images.js';

/** The local images behave like the official ones in the ways stackvault relies on. */
describe('local datastore images', () => {
  const project = newProjectName('images');
  let pg: StartedTestContainer, redis: StartedTestContainer, chroma: StartedTestContainer, neo4j: StartedTestContainer, app: StartedTestContainer;

  beforeAll(async () => {
    [pg, redis, chroma, neo4j, app] = await Promise.all([
      startPostgres({ project }),
      startRedis({ project, appendonly: true }),
      startChroma({ project }),
      startNeo4j({ project }),
      startApp({ project }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([pg, redis, chroma, neo4j, app].filter(Boolean).map((c) => c.stop()));
  });

  it('postgres: POSTGRES_USER is the superuser, POSTGRES_DB exists, rows round-trip', async () => {
    expect(await psql(pg, 'bot', 'SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user')).toBe(`${PG_SUPERUSER}|t`);
    await psql(pg, 'bot', "CREATE TABLE t(id int primary key, v text); INSERT INTO t VALUES (1,'a'),(2,'b')");
    expect(await psql(pg, 'bot', "SELECT string_agg(v, ',' ORDER BY id) FROM t")).toBe('a,b');
    expect(await psql(pg, 'bot', 'SHOW server_version_num')).toMatch(/^17/);
  });

  it('redis: requires its password, keeps /data as dir, writes an AOF directory', async () => {
    const noAuth = await redis.exec(['env', '-u', 'REDISCLI_AUTH', 'redis-cli', 'ping']);
    expect(noAuth.output).toContain('NOAUTH');
    await redisCli(redis, 'SET', 'greeting', 'hello');
    expect(await redisCli(redis, 'GET', 'greeting')).toBe('"hello"');
    expect(await redisCli(redis, 'CONFIG', 'GET', 'dir')).toContain('/data');
    expect(await run(redis, ['ls', '/data/appendonlydir'])).toContain('appendonly.aof');
  });

  it('chroma: the real server stores a collection with embeddings and answers queries', async () => {
    const api = chromaApi(chroma);
    const col = await api<{ id: string }>('/collections', { body: { name: 'probe-docs', metadata: { topic: 'images' } } });
    await api(`/collections/${col.id}/add`, {
      body: {
        ids: ['a', 'b'],
        embeddings: [
          [1, 0, 0],
          [0, 1, 0],
        ],
        documents: ['alpha', 'beta'],
        metadatas: [{ n: 1 }, { n: 2 }],
      },
    });
    const got = await api<{ ids: string[][] }>(`/collections/${col.id}/query`, { body: { query_embeddings: [[0.9, 0.1, 0]], n_results: 1 } });
    expect(got.ids[0]).toEqual(['a']);
    expect(await run(chroma, ['ls', '/data'])).toContain('chroma.sqlite3');
  });

  it('neo4j stand-in: official layout owned by 7474, auth hashed, clean SIGTERM stop', async () => {
    expect((await run(neo4j, ['stat', '-c', '%u:%g', '/data/databases/neo4j/neostore'])).trim()).toBe('7474:7474');
    expect(await run(neo4j, ['ls', '/data/transactions'])).toContain('neo4j');
    const auth = await run(neo4j, ['cat', '/data/dbms/auth']);
    expect(auth).toMatch(/^neo4j:SHA-256,[0-9a-f]{64}:/);
    expect(auth).not.toContain(NEO4J_PASSWORD);
  });

  it('app: writes to WAL-mode SQLite databases continuously', async () => {
    const before = Number(await sqlite(app, '/app/data/app.db', 'SELECT count(*) FROM events'));
    await new Promise((r) => setTimeout(r, 1000));
    const after = Number(await sqlite(app, '/app/data/app.db', 'SELECT count(*) FROM events'));
    expect(after).toBeGreaterThan(before);
    expect(await sqlite(app, '/app/data/app.db', 'PRAGMA journal_mode')).toBe('wal');
    expect(await run(app, ['ls', '/app/data'])).toContain('app.db-wal');
  });

  it('neo4j stand-in exits 0 on SIGTERM', async () => {
    const stopped = await neo4j.stop({ remove: false, timeout: 10_000 } as never);
    expect(stopped).toBeTruthy();
    const Docker = (await import('dockerode')).default;
    const info = await new Docker().getContainer(neo4j.getId()).inspect();
    expect(info.State.ExitCode).toBe(0);
    await new Docker().getContainer(neo4j.getId()).remove({ v: true });
  });

  it("the official images' version variables are set (PG_MAJOR/PG_VERSION, REDIS_VERSION, VALKEY_VERSION)", async () => {
    const Docker = (await import('dockerode')).default;
    const env = async (image: string) => Object.fromEntries(((await new Docker().getImage(image).inspect()).Config.Env ?? []).map((e) => e.split(/=(.*)/s).slice(0, 2)));
    for (const image of [IMAGES.postgres, IMAGES.pgvector]) {
      expect((await env(image)).PG_MAJOR).toBe('17');
      expect((await env(image)).PG_VERSION).toMatch(/^17\.\d+-/);
    }
    expect((await env(IMAGES.redis)).REDIS_VERSION).toMatch(/^7\.\d+\.\d+$/);
    expect((await env(IMAGES.valkey)).VALKEY_VERSION).toMatch(/^8\.\d+\.\d+$/);
  });
});
