import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, populateRedis, run, startRedis } from '../support/containers.js';

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
