import { describe, expect, it } from 'vitest';
import { DRIVERS } from '../../src/drivers/registry.js';
import { assignServiceKeys, imageRepoName, narrowToServices, parseServiceList, selectDriver } from '../../src/core/selection.js';
import { firstBadServiceName } from '../../src/core/manifest.js';
import type { ContainerSummary } from '../../src/docker/engine.js';
import { ExitCode, StackvaultError } from '../../src/errors.js';

type Looked = ContainerSummary & { env: Record<string, string>; cmd: string[] };
const container = (over: Partial<Looked>): Looked => ({ id: over.name ?? 'id', name: 'c', image: 'busybox', labels: {}, state: 'running', env: {}, cmd: [], ...over });

describe('driver selection', () => {
  it.each([
    ['postgres:17', 'postgres'],
    ['docker.io/library/postgres:17@sha256:abc', 'postgres'],
    ['postgis/postgis:16-3.4', 'postgres'],
    ['timescale/timescaledb-ha:pg16', 'postgres'],
    ['bitnami/postgresql', 'postgres'],
    ['redis:7-alpine', 'redis'],
    ['valkey/valkey:8', 'redis'],
    ['redis/redis-stack-server', 'redis'],
    ['chromadb/chroma:1.0.0', 'chroma'],
    ['neo4j:5-community', 'neo4j'],
    ['stackvault-local/neo4j:5-standin', 'neo4j'],
    ['localhost:5000/team/postgres:17', 'postgres'],
    ['pgvector/pgvector:pg16', 'postgres'],
    ['ankane/pgvector:latest', 'postgres'],
    ['nginx:latest', undefined],
    ['mypostgres:1', undefined],
    ['rediscover:1', undefined],
    ['prometheuscommunity/postgres-exporter:v0.15', undefined],
    ['rediscommander/redis-commander:latest', undefined],
    ['oliver006/redis_exporter', undefined],
    ['neo4j-admin-ui:1', undefined],
  ])('image %s -> %s', (image, driver) => {
    expect(selectDriver(container({ image }), DRIVERS)?.name).toBe(driver);
  });

  it.each([
    ['a custom build FROM postgres (PG_MAJOR in its environment)', { image: 'acme/db:3', env: { PG_MAJOR: '16', PG_VERSION: '16.4' } }, 'postgres'],
    ['a custom Redis build (REDIS_VERSION)', { image: 'acme/cache:1', env: { REDIS_VERSION: '7.2.4' } }, 'redis'],
    ['Valkey by its server program', { image: 'acme/kv:8', cmd: ['valkey-server', '--appendonly', 'yes'] }, 'redis'],
    ['Postgres by its server program', { image: 'acme/db:3', cmd: ['/usr/lib/postgresql/16/bin/postgres', '-D', '/data'] }, 'postgres'],
    ['the official Neo4j (NEO4J_HOME)', { image: 'acme/graph:5', env: { NEO4J_HOME: '/var/lib/neo4j' } }, 'neo4j'],
    ['an app that talks to Neo4j and Redis is not their server', { image: 'acme/app:1', env: { NEO4J_URI: 'bolt://neo4j', NEO4J_PASSWORD: 'x', REDIS_URL: 'redis://r' } }, undefined],
    ['an exporter that talks to Postgres', { image: 'acme/exporter:1', env: { DATA_SOURCE_NAME: 'postgresql://x' }, cmd: ['/bin/postgres_exporter'] }, undefined],
  ])('%s', (_what, over, driver) => {
    expect(selectDriver(container(over), DRIVERS)?.name).toBe(driver);
  });

  it('the stackvault.driver label wins over the image', () => {
    expect(selectDriver(container({ image: 'myorg/db:1', labels: { 'stackvault.driver': 'postgres' } }), DRIVERS)?.name).toBe('postgres');
  });
  it('a SQLite paths label makes an app container a sqlite service', () => {
    expect(selectDriver(container({ image: 'myapp:1', labels: { 'stackvault.sqlite.paths': '/data/a.db' } }), DRIVERS)?.name).toBe('sqlite');
  });
  it('stackvault.exclude=true skips a datastore', () => {
    expect(selectDriver(container({ image: 'postgres:17', labels: { 'stackvault.exclude': 'true' } }), DRIVERS)).toBeUndefined();
  });
  it('an unknown driver label is a usage error naming the container', () => {
    expect(() => selectDriver(container({ name: 'db1', labels: { 'stackvault.driver': 'mongo' } }), DRIVERS)).toThrow(/db1.*mongo/);
  });
  it('repo names are lower-cased', () => expect(imageRepoName('Registry/Org/Postgres:17')).toBe('postgres'));
});

describe('service keys', () => {
  const pg = DRIVERS[0]!;
  const c = (name: string, project?: string, service?: string, num?: string, engine?: string) => ({
    container: container({
      name,
      id: `${name}${engine ?? ''}`.padEnd(12, '0').replace(/[^a-z0-9]/g, '0'),
      ...(engine ? { engine } : {}),
      labels: {
        ...(project ? { 'com.docker.compose.project': project } : {}),
        ...(service ? { 'com.docker.compose.service': service } : {}),
        ...(num ? { 'com.docker.compose.container-number': num } : {}),
      },
    }),
    driver: pg,
  });

  it.each([
    ['compose service name', [c('bot_postgres_1', 'bot', 'postgres')], ['postgres']],
    ['container name outside compose', [c('legacy-db')], ['legacy-db']],
    ['same service in two projects', [c('a_pg_1', 'a', 'pg'), c('b_pg_1', 'b', 'pg')], ['a-pg', 'b-pg']],
    ['scaled service', [c('bot_pg_1', 'bot', 'pg', '1'), c('bot_pg_2', 'bot', 'pg', '2')], ['bot-pg-1', 'bot-pg-2']],
    ['same project and service on two engines', [c('bot_pg_1', 'bot', 'pg', '1', 'nas'), c('bot_pg_1', 'bot', 'pg', '1', 'local')], ['bot-pg@local', 'bot-pg@nas']],
    ['one service per engine keeps its plain name', [c('bot_pg_1', 'bot', 'pg', '1', 'nas'), c('bot_redis_1', 'bot', 'redis', '1', 'local')], ['pg', 'redis']],
    ['scaled on two engines', [c('bot_pg_1', 'bot', 'pg', '1', 'a'), c('bot_pg_2', 'bot', 'pg', '2', 'a'), c('bot_pg_1', 'bot', 'pg', '1', 'b')], ['bot-pg@a-1', 'bot-pg@a-2', 'bot-pg@b']],
    ['odd names kept as given', [c('x', 'p', 'my service ✓')], ['my service ✓']],
  ])('%s', (_what, items, keys) => {
    expect(assignServiceKeys(items).map((k) => k.service)).toEqual(keys);
  });

  it.each([
    // shop and blog each run redis, and a legacy project has a service literally named shop-redis.
    ['shop+redis, blog+redis and a service shop-redis', [c('shop_redis_1', 'shop', 'redis', '1'), c('blog_redis_1', 'blog', 'redis', '1'), c('legacy_shop-redis_1', 'legacy', 'shop-redis', '1')]],
    ['projects q and q-a', [c('q1', 'q', 'a-redis', '1'), c('q2', 'q-a', 'redis', '1'), c('q3', 'z', 'redis', '1'), c('q4', 'z2', 'a-redis', '1')]],
    ['a qualified key equal to a plain container name', [c('a_pg_1', 'a', 'pg'), c('b_pg_1', 'b', 'pg'), c('a-pg')]],
    ['a numbered key equal to another service', [c('x_pg_1', 'x', 'pg', '1'), c('x_pg_2', 'x', 'pg', '2'), c('pg-1', 'y', 'x-pg-1')]],
    ['an empty service label', [c('lonely', 'p', '')]],
  ])('keys are unique by the manifest reader rule: %s', (_what, items) => {
    const keys = assignServiceKeys(items).map((k) => k.service);
    expect(firstBadServiceName(keys)).toBeUndefined();
    expect(keys).toHaveLength(items.length);
  });

  it('only the keys that clashed change; unique ones stay as before', () => {
    const keys = assignServiceKeys([
      c('shop_redis_1', 'shop', 'redis', '1'),
      c('blog_redis_1', 'blog', 'redis', '1'),
      c('legacy_shop-redis_1', 'legacy', 'shop-redis', '1'),
      c('pg', 'shop', 'postgres'),
    ]).map((k) => k.service);
    expect(keys).toContain('blog-redis');
    expect(keys).toContain('postgres');
    expect(keys.filter((k) => k.startsWith('shop-redis-'))).toHaveLength(2);
  });

  it('keys are unique for any mix of dashed project and service names', () => {
    const parts = ['a', 'b', 'a-b', 'b-a', 'a-b-a', '1'];
    for (let seed = 1; seed <= 300; seed++) {
      let x = seed;
      const next = () => {
        x = (x * 1103515245 + 12345) % 2 ** 31;
        return x;
      };
      const items = Array.from({ length: 2 + (next() % 6) }, (_, i) => c(`c${seed}-${i}`, parts[next() % parts.length], parts[next() % parts.length], String(1 + (next() % 2))));
      expect(firstBadServiceName(assignServiceKeys(items).map((k) => k.service)), `seed ${seed}`).toBeUndefined();
    }
  });

  it('--only naming an excluded container says it is labelled stackvault.exclude=true', () => {
    const all = assignServiceKeys([c('hl_app_1', 'hl', 'app')]);
    const excluded = [{ name: 'hunt-labels-redis', project: 'hl', service: 'redis' }];
    for (const name of ['redis', 'hunt-labels-redis', 'hl-redis']) {
      expect(() => narrowToServices(all, [name], excluded)).toThrow(/redis \(hunt-labels-redis\) is labelled stackvault\.exclude=true/);
    }
  });

  it('--only keeps named services and rejects unknown names with exit code 4', () => {
    const all = assignServiceKeys([c('bot_pg_1', 'bot', 'postgres'), c('bot_redis_1', 'bot', 'redis')]);
    expect(narrowToServices(all, ['redis']).map((k) => k.service)).toEqual(['redis']);
    expect(narrowToServices(all, ['bot_pg_1']).map((k) => k.service)).toEqual(['postgres']);
    try {
      narrowToServices(all, ['mysql']);
      expect.fail('should throw');
    } catch (err) {
      expect(err).toBeInstanceOf(StackvaultError);
      expect((err as StackvaultError).exitCode).toBe(ExitCode.notFound);
      expect((err as Error).message).toContain("'mysql'");
    }
  });

  it.each([
    ['a,b', ['a', 'b']],
    [' a , b ,a', ['a', 'b']],
  ])('parses --only %j', (v, out) => expect(parseServiceList(v)).toEqual(out));
  it('rejects an empty --only', () => expect(() => parseServiceList(' , ')).toThrow(/at least one/));
});
