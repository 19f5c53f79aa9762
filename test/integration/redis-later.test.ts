import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { GenericContainer, Wait } from 'testcontainers';
import { newProjectName, populateRedis, run, startRedis } from '../support/containers.js';
import { IMAGES } from '../support/images.js';

/**
 * Keys expire between the backup and a later look at it: a server that loads the RDB then no
 * longer holds them. A deep verify (or `create --verify` racing a short TTL) must not call
 * that a damaged backup, and must still notice a key without an expiry that is missing.
 */
describe('Redis: keys that expire after the backup', () => {
  const project = newProjectName('redisttl');
  let redis: StartedTestContainer;
  let dir: string;
  let id: string;
  const cli = (...args: string[]) => run(redis, ['redis-cli', ...args]).then((s) => s.trim());

  beforeAll(async () => {
    redis = await startRedis({ project, password: false });
    await populateRedis(redis, 500, 16);
    dir = await tempDir('redisttl');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('a deep verify after keys expired passes, and a restore of it says equal', async () => {
    // Long enough to be there, unexpired, when the backup counts the keys; gone before the verify.
    const shortLived = Date.now() + 10_000;
    for (let i = 0; i < 20; i++) await cli('SET', `short:${i}`, 'x', 'PXAT', String(shortLived));
    await cli('SET', 'long', 'y', 'EX', '3600');
    const created = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(created.exitCode, String(created.stderr)).toBe(0);
    const m = JSON.parse(String(created.stdout)) as Manifest;
    id = m.id;
    expect(m.services[0]!.details).toMatchObject({ keysAtBackup: 521, expiringAtBackup: 21 });
    await new Promise((r) => setTimeout(r, Math.max(0, shortLived - Date.now() + 500)));
    const verified = await bot(['backup', 'verify', id, '--deep', '--json', '--dir', dir], { timeout: 300_000 });
    expect(verified.exitCode, String(verified.stdout) + String(verified.stderr)).toBe(0);
    expect(JSON.parse(String(verified.stdout)).services[0].facts).toMatchObject({ keys: 501, keysAtBackup: 521 });
    await cli('FLUSHALL');
    const restored = await bot(['backup', 'restore', id, '--yes', '--json', '--dir', dir], { timeout: 300_000 });
    expect(restored.exitCode, String(restored.stdout) + String(restored.stderr)).toBe(0);
    expect(JSON.parse(String(restored.stdout)).services[0]).toMatchObject({ status: 'restored', check: 'equal' });
    expect(await cli('DBSIZE')).toBe('501');
  });
});

/**
 * A backup checked later by another Redis: after an upgrade from 7.0, a sorted set's scores come
 * back from the server in another form (0.1 instead of 0.10000000000000001), while the
 * fingerprint recorded by the backup's verify holds 7.0's.
 */
describe('Redis: a backup of 7.0 restored into Redis 8', () => {
  const project = newProjectName('redisupgrade');
  let old: StartedTestContainer;
  let upgraded: StartedTestContainer;
  afterAll(async () => {
    await Promise.all([old, upgraded].map((c) => c?.stop()));
  });

  it('restores with its content equal to the fingerprint recorded on 7.0', async () => {
    [old, upgraded] = await Promise.all([startRedis({ project, password: false }), new GenericContainer(IMAGES.redis8).withWaitStrategy(Wait.forSuccessfulCommand('redis-cli ping')).start()]);
    await populateRedis(old, 1200, 8); // more than the keys named one by one: summed
    await run(old, ['redis-cli', 'ZADD', 'scores', '0.1', 'a', '1.5e-7', 'b', '1e20', 'c', '3', 'd', '-inf', 'e']);
    const dir = await tempDir('redisupgrade');
    const created = await bot(['backup', 'create', '--verify', '--json', '--project', project, '--dir', dir], { timeout: 300_000 });
    expect(created.exitCode, String(created.stderr)).toBe(0);
    const m = JSON.parse(String(created.stdout)) as Manifest;
    expect(m.services[0]!.fingerprint?.method).toBe('redis-v5');
    const restored = await bot(['backup', 'restore', m.id, '--map', `${m.services[0]!.name}=${upgraded.getName().replace(/^\//, '')}`, '--yes', '--json', '--dir', dir], { timeout: 300_000 });
    expect(restored.exitCode, String(restored.stdout) + String(restored.stderr)).toBe(0);
    expect(JSON.parse(String(restored.stdout)).services[0]).toMatchObject({ status: 'restored', check: 'equal' });
    expect((await run(upgraded, ['redis-cli', 'ZRANGE', 'scores', '0', '-1', 'WITHSCORES'])).trim().split('\n')).toEqual(['e', '-inf', 'b', '1.5e-7', 'a', '0.1', 'd', '3', 'c', '1e+20']);
  });
});

/** Redis 7.4+ expires single fields of a hash: the hash changes, or goes, by itself. */
describe('Redis 8: hash fields that expire after the backup', () => {
  const project = newProjectName('redisfields');
  let redis: StartedTestContainer;
  afterAll(async () => {
    await redis?.stop();
  });

  it('a deep verify and a restore after the fields expired pass', async () => {
    redis = await new GenericContainer(IMAGES.redis8)
      .withLabels({ 'com.docker.compose.project': project, 'com.docker.compose.service': 'cache' })
      .withWaitStrategy(Wait.forSuccessfulCommand('redis-cli ping'))
      .start();
    const cli = (...args: string[]) => run(redis, ['redis-cli', ...args]).then((s) => s.trim());
    const gone = Date.now() + 10_000;
    await cli('HSET', 'partly', 'stays', '1', 'goes', '2', 'later', '4');
    await cli('HSET', 'wholly', 'goes', '3');
    for (const key of ['partly', 'wholly']) expect(await cli('HPEXPIREAT', key, String(gone), 'FIELDS', '1', 'goes')).toBe('1');
    expect(await cli('HEXPIRE', 'partly', String(5 * 86_400), 'FIELDS', '1', 'later')).toBe('1'); // compared, as an item of its own
    await cli('SET', 'plain', 'x');
    const dir = await tempDir('redisfields');
    const created = await bot(['backup', 'create', '--verify', '--json', '--project', project, '--dir', dir], { timeout: 300_000 });
    expect(created.exitCode, String(created.stdout) + String(created.stderr)).toBe(0);
    const m = JSON.parse(String(created.stdout)) as Manifest;
    expect(m.services[0]!.details).toMatchObject({ keysAtBackup: 3 });
    await new Promise((r) => setTimeout(r, Math.max(0, gone - Date.now() + 500)));
    expect(await cli('DBSIZE')).toBe('2'); // 'wholly' went with its last field
    const verified = await bot(['backup', 'verify', m.id, '--deep', '--dir', dir], { timeout: 300_000 });
    expect(verified.exitCode, String(verified.stdout) + String(verified.stderr)).toBe(0);
    await cli('FLUSHALL');
    const restored = await bot(['backup', 'restore', m.id, '--yes', '--json', '--dir', dir], { timeout: 300_000 });
    expect(restored.exitCode, String(restored.stdout) + String(restored.stderr)).toBe(0);
    expect(JSON.parse(String(restored.stdout)).services[0]).toMatchObject({ status: 'restored', check: 'equal' });
    expect(await cli('HLEN', 'partly')).toBe('2');
    expect([await cli('HGET', 'partly', 'stays'), await cli('HGET', 'partly', 'later')]).toEqual(['1', '4']);
    expect(Number(await cli('HTTL', 'partly', 'FIELDS', '1', 'later'))).toBeGreaterThan(4 * 86_400);
  });
});
