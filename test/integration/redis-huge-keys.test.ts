import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, redisCli, startRedis } from '../support/containers.js';

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
