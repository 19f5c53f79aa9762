import { execa } from 'execa';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { backupDirEntries, tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, psql, redisCli, startPostgres, startRedis, startAll } from '../support/containers.js';

async function identity(dir: string, name: string): Promise<{ file: string; recipient: string }> {
  const file = join(dir, name);
  await execa('age-keygen', ['-o', file]);
  const recipient = /public key: (age1\w+)/.exec(await readFile(file, 'utf8'))![1]!;
  return { file, recipient };
}

/** Optional encryption at rest with age: streamed, checksummed on disk, clear key errors. */
describe('encrypted backups (age)', () => {
  const project = newProjectName('age');
  let pg: StartedTestContainer, redis: StartedTestContainer;
  let dir: string;
  let keys: { file: string; recipient: string }, wrong: { file: string; recipient: string };
  let m: Manifest;

  beforeAll(async () => {
    [pg, redis] = await startAll([startPostgres({ project }), startRedis({ project })]);
    await psql(pg, 'bot', "CREATE TABLE secretish AS SELECT g AS id, 'plaintext-canary-' || g AS v FROM generate_series(1, 500) g");
    await redisCli(redis, 'SET', 'canary', 'plaintext-canary-redis');
    dir = await tempDir('age');
    const kdir = await tempDir('keys');
    keys = await identity(kdir, 'me.txt');
    wrong = await identity(kdir, 'someone-else.txt');
    const r = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir, '--encrypt-to', keys.recipient]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    m = JSON.parse(String(r.stdout)) as Manifest;
  });
  afterAll(async () => {
    await Promise.all([pg, redis].map((c) => c?.stop()));
  });

  it('artifacts are age files: no plaintext on disk, checksums over the encrypted bytes', async () => {
    for (const s of m.services) {
      expect(s.artifact).toMatch(/\.zst\.age$/);
      expect(s.encryption).toEqual({ tool: 'age', recipients: [keys.recipient] });
      const bytes = await readFile(join(dir, m.id, s.artifact!));
      expect(bytes.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
      expect(bytes.includes(Buffer.from('plaintext-canary'))).toBe(false);
      const { createHash } = await import('node:crypto');
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(s.sha256);
    }
  });

  it('verify: no identity -> exit 2; the wrong one -> exit 5; the right one -> ok, deep included', async () => {
    const none = await bot(['backup', 'verify', m.id, '--dir', dir]);
    expect(none.exitCode).toBe(2);
    expect(String(none.stderr)).toMatch(/is encrypted with age; give the identity/);
    const bad = await bot(['backup', 'verify', m.id, '--dir', dir, '--identity', wrong.file]);
    expect(bad.exitCode).toBe(5);
    expect(String(bad.stdout) + String(bad.stderr)).toMatch(/cannot be decrypted with .*someone-else.txt: no identity matched/);
    const good = await bot(['backup', 'verify', m.id, '--dir', dir, '--deep'], { env: { STACKVAULT_AGE_IDENTITY: keys.file } });
    expect(good.exitCode, String(good.stdout) + String(good.stderr)).toBe(0);
    expect(String(good.stdout)).toMatch(/✅ postgres: .*"public.secretish":500/);
  });

  it('restore: refused without the identity (nothing changed), works with it; the restore point is encrypted too', async () => {
    await redisCli(redis, 'SET', 'canary', 'changed');
    const none = await bot(['backup', 'restore', m.id, '--dir', dir, '--yes']);
    expect(none.exitCode).toBe(2);
    expect(await redisCli(redis, 'GET', 'canary')).toBe('"changed"');
    expect((await readdir(dir)).filter((n) => n.startsWith('restore-point'))).toEqual([]);
    const r = await bot(['backup', 'restore', m.id, '--dir', dir, '--yes', '--identity', keys.file]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(await redisCli(redis, 'GET', 'canary')).toBe('"plaintext-canary-redis"');
    const point = (await readdir(dir)).find((n) => n.startsWith('restore-point'))!;
    const pm = JSON.parse(await readFile(join(dir, point, 'manifest.json'), 'utf8')) as Manifest;
    expect(pm.services.every((s) => s.artifact!.endsWith('.age') && s.encryption?.recipients[0] === keys.recipient)).toBe(true);
  });

  it('scheduled backups can be encrypted too; a bad recipient fails at install, not at 02:00', async () => {
    const d = await tempDir('agesched');
    const r = await bot(['scheduler', 'trigger', '--type', 'daily', '--project', project, '--dir', d, '--encrypt-to', keys.recipient]);
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    const id = (await readdir(d)).find((n) => n.startsWith('stackvault_backup_'))!;
    const sm = JSON.parse(await readFile(join(d, id, 'manifest.json'), 'utf8')) as Manifest;
    expect(sm.type).toBe('daily');
    expect(sm.services.every((s) => s.artifact!.endsWith('.age'))).toBe(true);
    const bad = await bot(['scheduler', 'install', 'daily', '--dir', d, '--encrypt-to', 'age1typo']);
    expect(bad.exitCode).toBe(2);
    expect(String(bad.stderr)).toMatch(/not a valid age recipient/);
  });

  it('an invalid recipient is refused before anything is touched (exit 2)', async () => {
    const d = await tempDir('badrecipient');
    const r = await bot(['backup', 'create', '--project', project, '--dir', d, '--encrypt-to', 'not-a-key']);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(/--encrypt-to 'not-a-key' is not a valid age recipient/);
    expect(await backupDirEntries(d)).toEqual([]);
  });
});
