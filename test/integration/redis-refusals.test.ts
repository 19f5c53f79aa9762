import { GenericContainer, type StartedTestContainer, Wait } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceEntry } from '../../src/core/manifest.js';
import { DockerodeEngine } from '../../src/docker/dockerode-engine.js';
import { redisDriver } from '../../src/drivers/redis.js';
import { backupDirEntries, tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, run, startRedis } from '../support/containers.js';
import { IMAGES } from '../support/images.js';

/**
 * A restore's content check reads the restored server key by key (liveFingerprint). A server
 * that refuses to answer must fail that check with its own reason: not loop for ever (a refusal
 * the shell loop did not know went round as the next SCAN cursor and was refused again), and
 * not read as an empty server (every key of the backup then "missing", and a good restore
 * rolled back for it).
 */
describe('Redis content check: a server that refuses', () => {
  const engine = new DockerodeEngine();
  let redis: StartedTestContainer;
  const cli = (...args: string[]) => run(redis, ['redis-cli', ...args]).then((s) => s.trim());
  const live = async () => redisDriver.liveFingerprint!({ engine, container: await engine.inspect(redis.getId()), entry: {} as ServiceEntry, signal: new AbortController().signal });

  beforeAll(async () => {
    // BUSY after 100 ms of another client's script, not 5 s.
    redis = await new GenericContainer(IMAGES.redis8)
      .withCommand(['redis-server', '--save', '', '--busy-reply-threshold', '100'])
      .withWaitStrategy(Wait.forSuccessfulCommand('redis-cli ping'))
      .start();
    await cli('EVAL', "for i = 1, 300 do redis.call('SET', 'k' .. i, i) end for i = 1, 20001 do redis.call('SADD', 'big', i) end return 1", '0');
  }, 180_000);
  afterAll(async () => {
    await redis?.stop();
  });

  it('a replica cut off from its master (MASTERDOWN) fails the check with that reason, and leaves no loop behind', async () => {
    await cli('CONFIG', 'SET', 'replica-serve-stale-data', 'no');
    await cli('REPLICAOF', '127.0.0.1', '1'); // nothing listens there: the link stays down, the keys stay
    try {
      expect(await cli('EVAL', "return redis.call('SCAN', '0')", '0')).toMatch(/^MASTERDOWN/);
      await expect(live()).rejects.toThrow(/reading Redis key by key failed: MASTERDOWN Link with MASTER is down/);
      const loops = await run(redis, ['sh', '-c', 'grep -l "cursor=[0]" /proc/[0-9]*/cmdline 2>/dev/null | wc -l']);
      expect(loops.trim()).toBe('0');
    } finally {
      await cli('REPLICAOF', 'NO', 'ONE');
      await cli('CONFIG', 'SET', 'replica-serve-stale-data', 'yes');
    }
    expect(Object.keys((await live()).parts)).toHaveLength(301);
  }, 120_000);

  it("a server busy with another client's script fails the check with BUSY, not as a server without keys", async () => {
    // Started in the background; the server says BUSY to everyone else until it is killed.
    await run(redis, ['sh', '-c', 'redis-cli EVAL "while true do end" 0 >/dev/null 2>&1 &']);
    try {
      while (!(await cli('PING')).startsWith('BUSY')) await new Promise((r) => setTimeout(r, 50));
      await expect(live()).rejects.toThrow(/BUSY Redis is busy running a script/);
    } finally {
      await cli('SCRIPT', 'KILL');
    }
    expect(Object.keys((await live()).parts)).toHaveLength(301);
  }, 120_000);
});

/** A Redis of its own Compose project for one describe block, started before its tests and stopped after; `cli` asks it as a user would. */
function redisForBlock(prefix: string, options: Omit<Parameters<typeof startRedis>[0], 'project'>) {
  const held: { redis?: StartedTestContainer; project: string } = { project: newProjectName(prefix) };
  const cli = (...args: string[]) => run(held.redis!, ['redis-cli', ...args]).then((s) => s.trim());
  beforeAll(async () => {
    held.redis = await startRedis({ project: held.project, ...options });
    await cli('SET', 'kept', 'before');
  }, 180_000);
  afterAll(async () => {
    await held.redis?.stop();
  });
  return { held, cli };
}

/**
 * A backup's redis-cli session ends each answer at an ECHO of a marker. A server held by
 * another client's script refuses that ECHO too (BUSY), so the marker never came: `backup
 * create`, and a restore's restore point, waited for ever, even after the script ended.
 */
describe("Redis held by another client's script when a run starts", () => {
  const { held, cli } = redisForBlock('redisbusy', { args: ['--busy-reply-threshold', '100'] });
  const holdWithScript = async () => {
    await run(held.redis!, ['sh', '-c', 'redis-cli EVAL "while true do end" 0 >/dev/null 2>&1 &']);
    while (!(await cli('PING')).startsWith('BUSY')) await new Promise((r) => setTimeout(r, 50));
  };

  it('backup create and restore end with the BUSY reason instead of waiting for ever, and change nothing', async () => {
    const dir = await tempDir('redisbusy');
    const first = await bot(['backup', 'create', '--project', held.project, '--dir', dir]);
    expect(first.exitCode, String(first.stderr)).toBe(0);
    await cli('SET', 'kept', 'after');
    await holdWithScript();
    try {
      const busy = await bot(['backup', 'create', '--project', held.project, '--dir', dir], { timeout: 90_000 });
      expect(busy.exitCode, String(busy.stdout) + String(busy.stderr)).toBe(1);
      expect(String(busy.stdout) + String(busy.stderr)).toMatch(/BUSY Redis is busy running a script/);
      expect(await backupDirEntries(dir)).toHaveLength(1);

      const restore = await bot(['backup', 'restore', 'latest', '--yes', '--dir', dir], { timeout: 90_000 });
      // Exit 1, not 5: the backup is sound, the server would not answer.
      expect(restore.exitCode, String(restore.stdout) + String(restore.stderr)).toBe(1);
      expect(String(restore.stderr)).toMatch(/refuses requests now, so the backup of redis was not restored: redis CONFIG: BUSY Redis is busy running a script.*Nothing was changed/);
      expect((await held.redis!.exec(['true'])).exitCode).toBe(0); // still running: nothing was stopped
    } finally {
      await cli('SCRIPT', 'KILL');
    }
    expect(await cli('GET', 'kept')).toBe('after'); // the restore changed nothing
    const after = await bot(['backup', 'create', '--project', held.project, '--dir', dir]);
    expect(after.exitCode, String(after.stderr)).toBe(0);
  }, 300_000);
});

/**
 * The refusal words begin only the server's own error lines, but an answer's lines may begin
 * with them too: CONFIG GET prints each value on a line of its own, and a file name such as
 * BUSY.rdb is a valid one. Such a server is backed up and restored like any other.
 */
describe('Redis whose file names begin with a refusal word', () => {
  const { held, cli } = redisForBlock('rvtar-busyname', { appendonly: true, args: ['--dbfilename', 'BUSY.rdb', '--appendfilename', 'LOADING.aof', '--appenddirname', 'MASTERDOWN'] });

  it('backup create and restore read those names as names', async () => {
    const dir = await tempDir('rvtar-busyname');
    const created = await bot(['backup', 'create', '--project', held.project, '--dir', dir], { timeout: 120_000 });
    expect(created.exitCode, String(created.stdout) + String(created.stderr)).toBe(0);
    await cli('SET', 'kept', 'after');
    const restored = await bot(['backup', 'restore', 'latest', '--yes', '--dir', dir], { timeout: 120_000 });
    expect(restored.exitCode, String(restored.stdout) + String(restored.stderr)).toBe(0);
    expect(await cli('GET', 'kept')).toBe('before');
    expect(await cli('CONFIG', 'GET', 'dbfilename')).toBe('dbfilename\nBUSY.rdb');
  }, 300_000);
});
