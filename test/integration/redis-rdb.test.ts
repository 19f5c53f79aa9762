import Docker from 'dockerode';
import fc from 'fast-check';
import { GenericContainer, type StartedTestContainer, Wait } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceEntry } from '../../src/core/manifest.js';
import { DockerodeEngine } from '../../src/docker/dockerode-engine.js';
import type { Fingerprint } from '../../src/drivers/fingerprint.js';
import { redisDriver } from '../../src/drivers/redis.js';
import { redisFingerprintAt } from '../../src/drivers/redis-fingerprint.js';
import { rdbFingerprint } from '../../src/drivers/redis-rdb.js';
import { findTarEntry } from '../../src/util/tar-build.js';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, populateRedis, run, startRedis } from '../support/containers.js';
import { IMAGES } from '../support/images.js';

/**
 * The host's RDB reader (drivers/redis-rdb.ts) against the servers that write RDBs: for data
 * fast-check makes up (binary and empty keys, integers that Redis stores as integers, values
 * past every small-encoding limit, scores of every kind, expiries, hash fields that expire,
 * streams with deleted entries and consumer groups with pending entries),
 * the fingerprint read from the server's own SAVE must equal the one the server gives key by
 * key. Each server writes its own encodings: 6.0 ziplists and intsets, 7.0 listpacks, Valkey 8
 * listpack sets, 8.0 hashes with fields that expire.
 */
const SERVERS = [
  { name: 'Redis 6.0', image: IMAGES.redis6, fieldTtl: false },
  { name: 'Redis 7.0', image: IMAGES.redis, fieldTtl: false },
  { name: 'Redis 8.0', image: IMAGES.redis8, fieldTtl: true },
  { name: 'Valkey 8.1', image: IMAGES.valkey, fieldTtl: false },
];

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** A key's expiry: none, within a day (left out of fingerprints) or days ahead. */
const expiry = fc.oneof(fc.constant(undefined), fc.integer({ min: 2 * HOUR, max: 20 * HOUR }), fc.integer({ min: 2 * DAY, max: 4000 * DAY }));
const bytes = (max: number) => fc.uint8Array({ minLength: 0, maxLength: max }).map((a) => Buffer.from(a));
/** Elements: binary, integers (stored as integers when they fit), long ones (past the 64-byte listpack limit). */
const element = fc.oneof(
  bytes(12),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((n) => Buffer.from(n.toString())),
  fc.integer({ min: -5000, max: 5000 }).map((n) => Buffer.from(String(n))),
  fc.constantFrom('007', '-0', '+1', '1e3', ' 1').map((s) => Buffer.from(s)),
  fc.integer({ min: 60, max: 300 }).map((n) => Buffer.alloc(n, 'ab')),
);
const many = <T>(arb: fc.Arbitrary<T>) => fc.oneof(fc.array(arb, { minLength: 1, maxLength: 8 }), fc.array(arb, { minLength: 120, maxLength: 300 }));
const score = fc.oneof(
  fc.double({ noNaN: true }),
  fc.integer({ min: -1000, max: 1000 }),
  fc.constantFrom(0.1, -0, 0, 1e17, 2 ** 53 + 2, 5e-324, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
  // Exact ties at the 17th digit (18 digits, the last a 5), which %.17g rounds half to even.
  fc.integer({ min: 1, max: 8999 }).map((k) => 1e13 + k * 7919 + 0.5625),
);

const value = fc.oneof(
  fc.record({
    type: fc.constant('string' as const),
    value: fc.oneof(
      element,
      fc.integer({ min: 20_000, max: 80_000 }).map((n) => Buffer.alloc(n, 'lzf compresses this. ')),
    ),
  }),
  fc.record({ type: fc.constant('list' as const), items: many(element) }),
  fc.record({ type: fc.constant('set' as const), items: many(element) }),
  fc.record({ type: fc.constant('intset' as const), items: many(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((n) => Buffer.from(n.toString()))) }),
  fc.record({ type: fc.constant('zset' as const), pairs: many(fc.tuple(element, score)) }),
  fc.record({ type: fc.constant('hash' as const), pairs: many(fc.tuple(element, element)), fieldExpiries: fc.array(expiry, { maxLength: 6 }) }),
  fc.record({
    type: fc.constant('stream' as const),
    // Entries with the node's first fields share them (stored once); others carry their own.
    entries: fc.array(fc.array(fc.tuple(fc.constantFrom('f', 'g', 'h'), element), { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 150 }),
    deletes: fc.array(fc.nat(160), { minLength: 1, maxLength: 6 }),
    groups: fc.uniqueArray(fc.record({ name: fc.uint8Array({ minLength: 1, maxLength: 6 }).map((a) => Buffer.from(a)), read: fc.nat(12), acks: fc.nat(4) }), {
      maxLength: 2,
      selector: (g) => g.name.toString('hex'),
    }),
  }),
);
/**
 * A collection past the items one SCAN step reads (10,000), which the server's side reads in
 * steps of its own: sizes at and around its step and piece boundaries. Made by the server
 * (EVAL) from a seed: binary members, tied scores, deleted stream entries, a consumer group
 * with pending entries, and (8.0) hash fields that expire after days or within a day.
 */
const bigValue = fc.record({
  type: fc.constantFrom('list', 'set', 'zset', 'hash', 'stream'),
  n: fc.constantFrom(10_000, 10_001, 11_999, 20_000, 20_001, 25_321),
  key: bytes(8),
  seed: fc.nat(1000),
  expiry,
});
const MAKE_BIG = `
local k, t, n, seed, fieldTtl, now = KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1', tonumber(ARGV[5])
local function v(i) return string.char(i % 251, (i * 7 + seed) % 256) .. tostring(i * 31 + seed) end
for i = 1, n, 1000 do
  local args = {}
  for j = i, math.min(i + 999, n) do
    if t == 'list' or t == 'set' then args[#args + 1] = v(j)
    elseif t == 'zset' then args[#args + 1] = tostring((j * 7919 + seed) % 1000 / 8); args[#args + 1] = v(j)
    elseif t == 'hash' then args[#args + 1] = v(j); args[#args + 1] = v(j * 3)
    else redis.call('XADD', k, j .. '-' .. seed, 'f', v(j), 'g', v(j + 1)) end
  end
  if t == 'list' then redis.call('RPUSH', k, unpack(args))
  elseif t == 'set' then redis.call('SADD', k, unpack(args))
  elseif t == 'zset' then redis.call('ZADD', k, unpack(args))
  elseif t == 'hash' then redis.call('HSET', k, unpack(args)) end
end
if t == 'stream' then
  for j = 7, n, 4099 do redis.call('XDEL', k, j .. '-' .. seed) end
  redis.call('XGROUP', 'CREATE', k, 'readers', '0')
  redis.call('XREADGROUP', 'GROUP', 'readers', 'r', 'COUNT', 5, 'STREAMS', k, '>')
end
if t == 'hash' and fieldTtl then
  for j = 1, n, 97 do redis.call('HPEXPIREAT', k, now + 3 * 86400000 + j, 'FIELDS', 1, v(j)) end
  for j = 2, n, 101 do redis.call('HPEXPIREAT', k, now + 7200000, 'FIELDS', 1, v(j)) end
end
return 1
`;

const MAKE_MEDIUM = `
local types = {'list', 'set', 'zset', 'hash', 'stream'}
for k = 1, tonumber(ARGV[1]) do
  local t, key = types[k % 5 + 1], 'medium:' .. k
  for i = 1, 500 do
    if t == 'list' then redis.call('RPUSH', key, i)
    elseif t == 'set' then redis.call('SADD', key, 'm' .. i)
    elseif t == 'zset' then redis.call('ZADD', key, i % 7, 'm' .. i)
    elseif t == 'hash' then redis.call('HSET', key, 'f' .. i, i * k)
    else redis.call('XADD', key, i .. '-' .. k, 'n', i) end
  end
end
return 1
`;

const dataset = fc.record({
  big: fc.array(bigValue, { maxLength: 2 }),
  keys: fc.uniqueArray(fc.record({ db: fc.integer({ min: 0, max: 3 }), key: bytes(20), value, expiry }), { maxLength: 25, selector: (k) => `${k.db}:${k.key.toString('hex')}` }),
  /** Plain keys past the 1000 a database names one by one: the rest is summed. */
  bulk: fc.constantFrom(0, 0, 1200),
  /**
   * Collections of 500 items of each type: more items than one SCAN step reads, so the keys it
   * finds after its budget (strings, small collections) are left to steps of their own.
   */
  medium: fc.constantFrom(0, 0, 60),
});

/** One command in Redis's protocol, bytes as they are (redis-cli --pipe sends them). */
const resp = (...args: Array<string | Buffer>) => {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(a);
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
};

function commands(data: typeof dataset extends fc.Arbitrary<infer D> ? D : never, now: number, fieldTtl: boolean): Buffer {
  const out: Buffer[] = [resp('FLUSHALL')];
  for (const { db, key, value: v, expiry: e } of data.keys) {
    out.push(resp('SELECT', String(db)));
    if (v.type === 'string') out.push(resp('SET', key, v.value));
    else if (v.type === 'list') out.push(resp('RPUSH', key, ...v.items));
    else if (v.type === 'set' || v.type === 'intset') out.push(resp('SADD', key, ...v.items));
    else if (v.type === 'stream') {
      for (const [i, fields] of v.entries.entries()) out.push(resp('XADD', key, `${1000 + i}-1`, ...fields.flat()));
      for (const d of v.deletes) out.push(resp('XDEL', key, `${1000 + (d % Math.max(1, v.entries.length))}-1`));
      for (const g of v.groups) {
        out.push(resp('XGROUP', 'CREATE', key, g.name, '0', 'MKSTREAM'));
        if (g.read) out.push(resp('XREADGROUP', 'GROUP', g.name, 'reader', 'COUNT', String(g.read), 'STREAMS', key, '>'));
        for (let a = 0; a < g.acks; a++) out.push(resp('XACK', key, g.name, `${1000 + a}-1`));
      }
    } else if (v.type === 'zset') out.push(resp('ZADD', key, ...v.pairs.flatMap(([m, s]) => [Object.is(s, -0) ? '-0' : String(s), m])));
    else {
      out.push(resp('HSET', key, ...v.pairs.flat()));
      if (fieldTtl)
        v.fieldExpiries.forEach((fe, i) => {
          const field = v.pairs[i]?.[0];
          if (fe !== undefined && field) out.push(resp('HPEXPIREAT', key, String(now + fe), 'FIELDS', '1', field));
        });
    }
    if (e !== undefined) out.push(resp('PEXPIREAT', key, String(now + e)));
  }
  for (const b of data.big) {
    out.push(resp('SELECT', '0'), resp('DEL', Buffer.concat([Buffer.from('big:'), b.key])));
    out.push(resp('EVAL', MAKE_BIG, '1', Buffer.concat([Buffer.from('big:'), b.key]), b.type, String(b.n), String(b.seed), fieldTtl ? '1' : '0', String(now)));
    if (b.expiry !== undefined) out.push(resp('PEXPIREAT', Buffer.concat([Buffer.from('big:'), b.key]), String(now + b.expiry)));
  }
  if (data.medium) out.push(resp('SELECT', '0'), resp('EVAL', MAKE_MEDIUM, '0', String(data.medium)));
  if (data.bulk) out.push(resp('SELECT', '0'), resp('EVAL', "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'bulk:' .. i, i) end", '0', String(data.bulk)));
  out.push(resp('SAVE'));
  return Buffer.concat(out);
}

describe('the host RDB reader gives the server key-by-key fingerprint', () => {
  const engine = new DockerodeEngine();
  const servers: StartedTestContainer[] = [];
  beforeAll(async () => {
    servers.push(
      ...(await Promise.all(SERVERS.map((s) => new GenericContainer(s.image).withCommand(['redis-server', '--save', '']).withWaitStrategy(Wait.forSuccessfulCommand('redis-cli ping')).start()))),
    );
  }, 180_000);
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  const live = async (c: StartedTestContainer): Promise<Fingerprint> =>
    redisDriver.liveFingerprint!({ engine, container: await engine.inspect(c.getId()), entry: {} as ServiceEntry, signal: new AbortController().signal });
  const fromRdb = async (c: StartedTestContainer): Promise<Fingerprint> => {
    const rdb = await findTarEntry(await engine.getArchive(c.getId(), '/data/dump.rdb'), 'dump.rdb');
    return rdbFingerprint(rdb.stream, rdb.size);
  };

  SERVERS.forEach((server, i) => {
    it(`${server.name}: made-up data`, async () => {
      const c = servers[i]!;
      await fc.assert(
        fc.asyncProperty(dataset, async (data) => {
          const now = Date.now();
          await c.copyContentToContainer([{ content: commands(data, now, server.fieldTtl), target: '/tmp/commands' }]);
          const piped = await run(c, ['sh', '-c', 'redis-cli --pipe < /tmp/commands']);
          expect(piped).toMatch(/errors: 0, replies:/);
          const [host, server_] = await Promise.all([fromRdb(c), live(c)]);
          if (server.image === IMAGES.redis6) {
            // Redis 6 cannot tell when a key expires: both sides as they compare, without those keys.
            const at = new Date();
            expect(redisFingerprintAt(host, at, server_)).toEqual(redisFingerprintAt(server_, at, host));
          } else expect(host).toEqual(server_);
        }),
        { numRuns: 12 },
      );
    }, 600_000);
  });
});

/**
 * A restore's check reads the backup's side from the RDB on the host: no throwaway Redis is
 * started for it. An RDB holding a key bigger than the reader holds at once (300 k members)
 * still gets one, and both restores are checked equal.
 */
describe('Redis restore: the backup side read on the host, a huge key through a server', () => {
  const project = newProjectName('redisrdb');
  let redis: StartedTestContainer;
  beforeAll(async () => {
    redis = await startRedis({ project, password: false });
    await populateRedis(redis, 1500, 32);
  });
  afterAll(async () => {
    await redis?.stop();
  });

  /**
   * Throwaway servers for backups in `dir` created while `work` runs (other test files start
   * their own at the same time). Watched live: the engine keeps only its last 256 events for
   * a later query, and a busy run (every exec is three) pushes a create out of them.
   */
  const throwawaysCreatedDuring = async (dir: string, work: () => Promise<void>) => {
    const events = (await new Docker().getEvents({ filters: { type: ['container'], event: ['create'], label: [`stackvault.throwaway-for=${dir}`] } })) as NodeJS.ReadableStream & { destroy(): void };
    let created = 0;
    events.on('data', (chunk: Buffer) => {
      created += chunk.toString().split('\n').filter(Boolean).length;
    });
    try {
      await work();
      await new Promise((r) => setTimeout(r, 1000)); // an event is sent just after its create returns
    } finally {
      events.destroy();
    }
    return created;
  };

  const backUpAndRestore = async (dir: string) => {
    const created = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(created.exitCode, String(created.stderr)).toBe(0);
    const id = (JSON.parse(String(created.stdout)) as Manifest).id;
    await run(redis, ['redis-cli', 'FLUSHALL']);
    let restored!: Awaited<ReturnType<typeof bot>>;
    const throwaways = await throwawaysCreatedDuring(dir, async () => {
      restored = await bot(['backup', 'restore', id, '--yes', '--json', '--dir', dir], { timeout: 300_000 });
    });
    expect(restored.exitCode, String(restored.stdout) + String(restored.stderr)).toBe(0);
    expect(JSON.parse(String(restored.stdout)).services[0]).toMatchObject({ status: 'restored', check: 'equal' });
    return throwaways;
  };

  it('restores checked equal without a throwaway server; with a 300 k-member set, through one', async () => {
    const dir = await tempDir('redisrdb');
    expect(await backUpAndRestore(dir)).toBe(0);
    expect((await run(redis, ['redis-cli', 'DBSIZE'])).trim()).toBe('1500');
    await run(redis, ['redis-cli', 'EVAL', "for i = 1, 300000 do redis.call('SADD', 'big', 'member:' .. i) end", '0']);
    expect(await backUpAndRestore(dir)).toBeGreaterThan(0);
    expect((await run(redis, ['redis-cli', 'SCARD', 'big'])).trim()).toBe('300000');
  });
});

/**
 * Redis 7.2+ collates strings (Lua's `<`) by the locale of its environment. Under en_US.UTF-8
 * 'a' sorts before 'B'; the fingerprint sorts members and fields by their bytes all the same,
 * or the restored server's side would differ from the RDB's and a good restore be rolled back.
 * The locale is compiled in the container from the host's definitions (the `locales` package,
 * which the test command installs).
 */
describe('Redis under en_US.UTF-8 collation', () => {
  const engine = new DockerodeEngine();
  let redis: StartedTestContainer;
  beforeAll(async () => {
    redis = await new GenericContainer(IMAGES.redis8)
      .withBindMounts([{ source: '/usr/share/i18n', target: '/usr/share/i18n', mode: 'ro' }])
      .withEnvironment({ LANG: 'en_US.UTF-8' })
      .withUser('0')
      .withEntrypoint(['sh', '-c', 'localedef -i en_US -f UTF-8 en_US.UTF-8 && exec redis-server --save ""'])
      .withWaitStrategy(Wait.forSuccessfulCommand('redis-cli ping'))
      .start();
  }, 180_000);
  afterAll(async () => {
    await redis?.stop();
  });

  it('gives the same fingerprint from the server as from its RDB', async () => {
    // The server's Lua does collate this way here (else this test would prove nothing).
    expect((await run(redis, ['redis-cli', 'EVAL', "return tostring('a' < 'B')", '0'])).trim()).toBe('true');
    const odd = ['a', 'B', '_', 'Z', 'é', 'e', 'E', '10', '9', 'a b', 'ab'];
    await run(redis, ['redis-cli', 'SADD', 'names', ...odd]);
    await run(redis, ['redis-cli', 'HSET', 'fields', ...odd.flatMap((f, i) => [f, String(i)])]);
    await run(redis, ['redis-cli', 'SAVE']);
    const rdb = await findTarEntry(await engine.getArchive(redis.getId(), '/data/dump.rdb'), 'dump.rdb');
    const fromRdb = await rdbFingerprint(rdb.stream, rdb.size);
    const live = await redisDriver.liveFingerprint!({ engine, container: await engine.inspect(redis.getId()), entry: {} as ServiceEntry, signal: new AbortController().signal });
    expect(Object.keys(live.parts).sort()).toEqual(['db0 key fields', 'db0 key names']);
    expect(live).toEqual(fromRdb);
  });
});
