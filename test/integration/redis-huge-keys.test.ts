import { Writable } from 'node:stream';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest, ServiceEntry } from '../../src/core/manifest.js';
import { DockerodeEngine } from '../../src/docker/dockerode-engine.js';
import { redisDriver } from '../../src/drivers/redis.js';
import { KEYS_LOOP, type RedisScanner, redisFingerprint } from '../../src/drivers/redis-fingerprint.js';
import { rdbFingerprint } from '../../src/drivers/redis-rdb.js';
import { finished } from '../../src/util/backpressure.js';
import { findTarEntry } from '../../src/util/tar-build.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, REDIS_PASSWORD, redisCli, startRedis } from '../support/containers.js';

/**
 * Made by the server in one script: a hash of 1 M fields; a sorted set, list and stream of
 * 200 k each; and 300 hashes of 3,000 fields, which one SCAN step found together.
 */
const MAKE = `
for i = 1, 1000000, 1000 do
  local args = {}
  for j = i, i + 999 do args[#args + 1] = 'field:' .. j; args[#args + 1] = string.char(j % 256) .. 'value ' .. j end
  redis.call('HSET', 'huge:hash', unpack(args))
end
for i = 1, 200000, 1000 do
  local z, l = {}, {}
  for j = i, i + 999 do z[#z + 1] = (j * 7919) % 5000; z[#z + 1] = 'member:' .. j; l[#l + 1] = 'item ' .. j end
  redis.call('ZADD', 'huge:zset', unpack(z))
  redis.call('RPUSH', 'huge:list', unpack(l))
  for j = i, i + 999 do redis.call('XADD', 'huge:stream', j .. '-1', 'n', j) end
end
for h = 1, 300 do
  local args = {}
  for j = 1, 3000 do args[#args + 1] = 'f' .. j; args[#args + 1] = 'value ' .. j .. ' of ' .. h end
  redis.call('HSET', 'medium:' .. h, unpack(args))
end
redis.call('XGROUP', 'CREATE', 'huge:stream', 'readers', '0')
redis.call('XREADGROUP', 'GROUP', 'readers', 'r', 'COUNT', 50, 'STREAMS', 'huge:stream', '>')
return redis.call('DBSIZE')
`;

/**
 * A restore's content check reads the restored server itself. A key of a million items read
 * in one script held that server for its whole length: every client got BUSY for minutes after
 * the restore said the store was back (redis-v4). Now a big key is read in steps, between which
 * the server answers, and a SCAN step reads keys up to a budget of items, leaving the rest to
 * such steps (300 keys of 3,000 items read in one script held the server for 6 s). The server
 * says BUSY to its clients after 1 s of one script here (5 s by default): a client pinging it
 * throughout the restore never gets BUSY, and does get answers while the check runs.
 */
describe('Redis restore with keys of a million items', () => {
  const project = newProjectName('redishuge');
  let redis: StartedTestContainer;
  beforeAll(async () => {
    redis = await startRedis({ project, args: ['--busy-reply-threshold', '1000'] });
    expect(await redisCli(redis, 'EVAL', MAKE, '0')).toContain('304');
  }, 300_000);
  afterAll(async () => {
    await redis?.stop();
  });

  it('is checked equal while the server keeps answering its clients', async () => {
    const dir = await tempDir('redishuge');
    const created = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir], { timeout: 600_000 });
    expect(created.exitCode, String(created.stderr)).toBe(0);
    const id = (JSON.parse(String(created.stdout)) as Manifest).id;
    await redisCli(redis, 'HSET', 'huge:hash', 'field:500000', 'changed after the backup');
    await redisCli(redis, 'DEL', 'huge:list');

    const replies: string[] = [];
    let restoring = true;
    const pinging = (async () => {
      while (restoring) {
        const started = Date.now();
        // The container is stopped for a while during the restore: no answer then, and that is not BUSY.
        const reply = await redis.exec(['redis-cli', 'PING']).then(
          (r) => (r.stdout || r.stderr).trim(),
          () => 'no container',
        );
        replies.push(reply);
        await new Promise((r) => setTimeout(r, Math.max(0, 300 - (Date.now() - started))));
      }
    })();
    const startedAt = Date.now();
    const restored = await bot(['backup', 'restore', id, '--yes', '--json', '--dir', dir], { timeout: 900_000 }).finally(() => {
      restoring = false;
    });
    await pinging;
    console.log(
      `huge keys: restore ${((Date.now() - startedAt) / 1000).toFixed(1)} s; pings ${replies.length}: ${[...new Set(replies)].map((r) => `${r.slice(0, 40)} x${replies.filter((x) => x === r).length}`).join(', ')}`,
    );
    expect(restored.exitCode, String(restored.stdout) + String(restored.stderr)).toBe(0);
    expect(JSON.parse(String(restored.stdout)).services[0]).toMatchObject({ status: 'restored', check: 'equal' });
    expect(replies.filter((r) => /BUSY/.test(r))).toEqual([]);
    // Answered after the restart, while the check read the server (it takes seconds at least).
    const lastDown = replies.findLastIndex((r) => r !== 'PONG');
    expect(replies.slice(lastDown + 1).length).toBeGreaterThan(2);
    expect(await redisCli(redis, 'HGET', 'huge:hash', 'field:500000')).toContain('value 500000');
    expect(await redisCli(redis, 'LLEN', 'huge:list')).toBe('(integer) 200000');
  });
});

/**
 * 20,000 small keys of every type (binary names), 2,000 sessions that expire in three days, and
 * 20 hashes of 9,000 fields: a SCAN step that meets such a hash has spent its budget, and leaves
 * the rest of its keys to be read after.
 */
const MAKE_MIX = `
for i = 1, 20000 do
  local k, t = 'small\\0' .. i, i % 6
  if t == 0 then redis.call('SET', k, 'v' .. i)
  elseif t == 1 then redis.call('SADD', k, i, '')
  elseif t == 2 then redis.call('HSET', k, '', i, 'f', 'x')
  elseif t == 3 then redis.call('RPUSH', k, '', i)
  elseif t == 4 then redis.call('ZADD', k, 0.1, i, 2, 'x')
  else redis.call('XADD', k, '5-18446744073709551615', '', i) end
  if i % 10 == 0 then redis.call('SET', 'session:' .. i, i, 'EX', 3 * 86400) end
end
for k = 1, 20 do
  for i = 1, 9000, 1000 do
    local a = {}
    for j = i, i + 999 do a[#a + 1] = 'f' .. j; a[#a + 1] = j end
    redis.call('HSET', 'h:' .. k, unpack(a))
  end
end
return redis.call('DBSIZE')
`;

/**
 * The keys a SCAN step leaves past its budget are read afterwards many to a script (redis-v5 at
 * first read each in a script of its own, through redis-cli: here 4,334 scripts and 47 s where
 * the whole reading now takes 29 scripts and 1.3 s; with a million keys, hours).
 */
describe('Redis content check: many small keys among collections of thousands of items', () => {
  const engine = new DockerodeEngine();
  let redis: StartedTestContainer;
  beforeAll(async () => {
    redis = await startRedis({ project: newProjectName('redismix') });
    expect(await redisCli(redis, 'EVAL', MAKE_MIX, '0')).toContain('22020');
  }, 120_000);
  afterAll(async () => {
    await redis?.stop();
  });

  it('reads the keys a step leaves many to a script, and gives what the RDB read on the host gives', async () => {
    await redisCli(redis, 'CONFIG', 'RESETSTAT');
    const live = await redisDriver.liveFingerprint!({ engine, container: await engine.inspect(redis.getId()), entry: {} as ServiceEntry, signal: new AbortController().signal });
    const scripts = Number(/cmdstat_eval:calls=(\d+)/.exec(await redisCli(redis, 'INFO', 'commandstats'))?.[1]);
    expect(scripts).toBeLessThan(100);
    expect(live).toEqual(await fromRdb());
  }, 300_000);

  it('a key that expires between the step that found it and its read is not held, not a key of type none', async () => {
    // The real loops and scripts, with the sessions a step left expired before they are read.
    let expired = 0;
    const scan: RedisScanner = async (loop, args, onLine) => {
      if (loop === KEYS_LOOP) {
        const sessions = args
          .slice(3)
          .map((hex) => Buffer.from(hex, 'hex').toString())
          .filter((k) => k.startsWith('session:'));
        const each = (command: string) =>
          redisCli(
            redis,
            'EVAL',
            `local n = 0 for _, k in ipairs(KEYS) do n = n + redis.call('${command}', k${command === 'PEXPIRE' ? ', 1' : ''}) end return n`,
            String(sessions.length),
            ...sessions,
          );
        await each('PEXPIRE');
        while ((await each('EXISTS')) !== '(integer) 0'); // gone once a millisecond has passed
        expired += sessions.length;
      }
      let rest = '';
      const lines = new Writable({
        write(chunk: Buffer, _e, cb) {
          const all = (rest + chunk.toString('latin1')).split('\n');
          rest = all.pop()!;
          for (const l of all) onLine(l);
          cb();
        },
      });
      const r = await engine.exec(redis.getId(), ['sh', '-c', loop, 'sh', ...args], { stdout: lines, env: { REDISCLI_AUTH: REDIS_PASSWORD } });
      await finished(lines);
      expect(r.exitCode, r.stderr).toBe(0);
    };
    const live = await redisFingerprint((...args) => redisCli(redis, ...args), scan);
    expect(expired).toBeGreaterThan(0);
    expect(live).toEqual(await fromRdb());
  }, 300_000);

  const fromRdb = async () => {
    await redisCli(redis, 'SAVE');
    const rdb = await findTarEntry(await engine.getArchive(redis.getId(), '/data/dump.rdb'), 'dump.rdb');
    return rdbFingerprint(rdb.stream, rdb.size);
  };
});
