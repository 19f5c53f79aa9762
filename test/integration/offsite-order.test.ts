import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, startPostgres } from '../support/containers.js';
import { type ResticServer, startResticServer } from '../support/restic-server.js';

/**
 * A backup whose offsite copy failed is stored by the next `create --offsite`, after the new one.
 * The repository orders its backups by when each was stored; the new backup must still be its
 * newest (`list --remote`, `verify latest --remote`), not the older one stored after it.
 */
describe('the repository after a retried offsite copy', () => {
  let pg: StartedTestContainer;
  let server: ResticServer;
  let dir: string;
  const project = newProjectName('offsite-order');

  beforeAll(async () => {
    [pg, server] = await Promise.all([startPostgres({ project }), startResticServer()]);
    dir = await tempDir('offsite-order');
  });
  afterAll(async () => {
    await pg?.stop();
    await server?.stop();
  });

  it('names the new backup its newest, whatever was stored after it', async () => {
    server.set('down');
    const failed = await bot(['backup', 'create', '--json', '--offsite', '--project', project, '--dir', dir], {
      env: { ...server.env, STACKVAULT_OFFSITE_RETRY_SECONDS: '5' },
    }).finally(() => server.set('up'));
    expect(failed.exitCode, String(failed.stderr)).toBe(10);
    const olderId = (JSON.parse(String(failed.stdout)) as { id: string }).id;

    const next = await bot(['backup', 'create', '--json', '--offsite', '--project', project, '--dir', dir], { env: server.env, timeout: 300_000 });
    expect(next.exitCode, String(next.stderr)).toBe(0);
    const newId = (JSON.parse(String(next.stdout)) as { id: string }).id;
    expect(String(next.stderr)).toMatch(new RegExp(`✅ ${newId} stored offsite[^]*✅ ${olderId} stored offsite`));
    const manifestOf = async (id: string) => JSON.parse(await readFile(join(dir, id, 'manifest.json'), 'utf8')) as { createdAt: string };
    expect(Date.parse((await manifestOf(newId)).createdAt)).toBeGreaterThan(Date.parse((await manifestOf(olderId)).createdAt));

    const listed = JSON.parse(String((await bot(['backup', 'list', '--remote', '--json', '--dir', dir], { env: server.env })).stdout)) as { remote: Array<{ id: string }> };
    expect(listed.remote.map((r) => r.id)).toEqual([newId, olderId]);
    const verified = await bot(['backup', 'verify', 'latest', '--remote', '--read-data-subset', '100%', '--dir', dir], { env: server.env, timeout: 300_000 });
    expect(verified.exitCode, `${verified.stdout}${verified.stderr}`).toBe(0);
    // Two backups made in one second are named ID and ID_2, so each is matched whole.
    const verifiedIds = `${verified.stdout}`.match(/stackvault_backup_\w+/g) ?? [];
    expect(verifiedIds).toContain(newId);
    expect(verifiedIds).not.toContain(olderId);
  });
});
