import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { storeNewAndPending } from '../../src/core/offsite.js';
import { timestampPart } from '../../src/core/naming.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { writeFilesBackup } from '../support/manifests.js';

/**
 * Retention in the restic repository forgets by backup ID (every snapshot tagged `sv-id:ID`),
 * and the repository can hold more than one record of a backup: an upload retried after restic
 * failed past its meta snapshot, or a record planted by someone who may only append (restic's
 * rest-server --append-only exists so that a stolen client cannot delete). A real restic on a
 * local repository and real backup files; no container is needed.
 */
describe('offsite retention and a second record of one backup', () => {
  let dir: string;
  let env: Record<string, string>;
  const DAY = 86_400_000;
  const idAt = (ms: number) => `bot_backup_${timestampPart(new Date(ms))}`;
  const now = Math.floor(Date.now() / 1000) * 1000;
  const manual = idAt(now - 5 * DAY);
  const daily = idAt(now - DAY);
  const restic = (args: string[], input?: string) => execa('restic', args, { env, input });
  const snapshotsOf = async (id: string) =>
    (JSON.parse((await restic(['snapshots', '--json', '--tag', `sv-id:${id}`])).stdout) as Array<{ tags: string[] }>).map((s) => s.tags.find((t) => t.startsWith('sv-part:')));

  // An offsite copy that failed last night: the next storeNewAndPending stores it, as `create --offsite` does.
  const backup = (id: string, type: string, at: number) => writeFilesBackup(dir, id, { type, offsite: { at: new Date(at).toISOString(), ok: false } });

  beforeAll(async () => {
    const root = await tempDir('offsite-records');
    dir = join(root, 'backups');
    await mkdir(dir);
    await writeFile(join(root, 'password'), 'records-Secret-1\n', { mode: 0o600 });
    env = { RESTIC_REPOSITORY: join(root, 'repo'), RESTIC_PASSWORD_FILE: join(root, 'password') };
    await restic(['init']);
    await backup(manual, 'manual', now - 5 * DAY);
    await backup(daily, 'daily', now - DAY);
    Object.assign(process.env, env);
    try {
      const stored = await storeNewAndPending(dir, 'none-new');
      expect(stored.map((s) => [s.id, s.ok])).toEqual([
        [manual, true],
        [daily, true],
      ]);
    } finally {
      for (const k of Object.keys(env)) delete process.env[k];
    }
  });

  it('a second record dated long ago, of a manual backup and of the newest one, takes neither out of the repository', async () => {
    // Each record says: a daily backup stored on 1 January, long past the 7 days kept.
    for (const id of [manual, daily]) {
      await restic(
        ['backup', '--quiet', '--stdin', '--stdin-filename', 'stackvault-offsite.json', '--time', '2026-01-01 00:00:00', '--tag', `stackvault,sv-id:${id},sv-type:daily,sv-part:meta`],
        '{"format":1}',
      );
    }
    const p = await bot(['backup', 'prune', '--remote', '--dir', dir], { env });
    expect(p.exitCode, String(p.stderr)).toBe(0);
    // Before, each backup's old record was dropped and `restic forget` took every snapshot of its ID.
    expect(String(p.stdout)).not.toMatch(/forgot bot_backup/);
    expect(String(p.stdout)).toContain('Nothing to remove in the restic repository');
    for (const id of [manual, daily]) expect((await snapshotsOf(id)).sort()).toEqual(['sv-part:artifact', 'sv-part:meta', 'sv-part:meta']);
    // And the backups still come back whole from it.
    for (const id of [manual, daily]) {
      const v = await bot(['backup', 'verify', id, '--remote', '--read-data-subset', '100%', '--dir', dir], { env });
      expect(v.exitCode, String(v.stdout) + String(v.stderr)).toBe(0);
    }
  });
});
