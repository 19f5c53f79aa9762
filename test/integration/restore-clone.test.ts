import Docker from 'dockerode';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, startApp, startPostgres, startRedis } from '../support/containers.js';
import { changeStack, seedStack, stackContent } from '../support/stack-content.js';

const docker = new Docker();
const startedAt = async (ids: string[]) => Promise.all(ids.map(async (id) => (await docker.getContainer(id).inspect()).State.StartedAt));

/** A drill: the backup of one project restored into a clone of it, the original left alone. */
describe('restore into a clone of the stack (--into-project, --map)', () => {
  const source = newProjectName('clone-src');
  const clone = newProjectName('clone-dst');
  let containers: StartedTestContainer[] = [];
  let spare: StartedTestContainer;
  let dir: string;
  let id: string;
  let seeded: Record<string, string>;

  beforeAll(async () => {
    containers = await Promise.all([
      startPostgres({ project: source }),
      startRedis({ project: source }),
      startApp({ project: source }),
      startPostgres({ project: clone }),
      startRedis({ project: clone }),
      startApp({ project: clone }),
    ]);
    spare = await startRedis({ project: newProjectName('clone-spare'), service: 'scratch' });
    dir = await tempDir('clone');
    await seedStack(source);
    seeded = await stackContent(source);
    const r = await bot(['backup', 'create', '--json', '--project', source, '--dir', dir], { timeout: 300_000 });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    id = (JSON.parse(String(r.stdout)) as Manifest).id;
    await changeStack(source); // the original moves on after the backup
  });
  afterAll(async () => {
    await Promise.all([...containers, spare].map((c) => c?.stop()));
  });

  it('restores every service into the clone; the original is not stopped, not captured, not changed', async () => {
    const originalIds = containers.slice(0, 3).map((c) => c.getId());
    const before = { content: await stackContent(source), startedAt: await startedAt(originalIds) };
    const r = await bot(['backup', 'restore', id, '--into-project', clone, '--yes', '--json', '--dir', dir], { timeout: 300_000 });
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    const result = JSON.parse(String(r.stdout)) as { restorePointId: string; services: Array<{ service: string; status: string; check: string }> };
    expect(result.services.map((s) => `${s.service} ${s.status} ${s.check}`).sort()).toEqual(['app restored equal', 'postgres restored equal', 'redis restored equal']);
    expect(await stackContent(clone)).toEqual(seeded);
    expect(await stackContent(source)).toEqual(before.content);
    expect(await startedAt(originalIds)).toEqual(before.startedAt);
    // The restore point holds the clone's containers only.
    const list = JSON.parse(String((await bot(['backup', 'list', '--json', '--dir', dir])).stdout)) as Manifest[];
    const point = list.find((m) => m.id === result.restorePointId)!;
    expect(point.services.map((s) => s.project)).toEqual([clone, clone, clone]);
  });

  it('--map restores one service into a named container of any project', async () => {
    const r = await bot(['backup', 'restore', id, '--only', 'redis', '--map', `redis=${spare.getName().replace(/^\//, '')}`, '--yes', '--dir', dir], { timeout: 300_000 });
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    const got = (await spare.exec(['redis-cli', '--no-auth-warning', 'GET', 'sv:text'])).stdout.trim();
    expect(got).toContain('中文');
  });

  it('a clone that does not run the service, a --map typo, or the project itself: one sentence, nothing changed', async () => {
    const before = await stackContent(clone);
    const missing = await bot(['backup', 'restore', id, '--into-project', 'no-such-clone', '--yes', '--dir', dir]);
    expect(missing.exitCode).toBe(4);
    expect(String(missing.stderr)).toMatch(/Project 'no-such-clone' has no \w+ service '\w+' to restore into.*docker compose -p no-such-clone up -d/s);
    const typo = await bot(['backup', 'restore', id, '--map', 'redsi=x', '--yes', '--dir', dir]);
    expect(typo.exitCode).toBe(2);
    expect(String(typo.stderr)).toMatch(/--map names 'redsi', not a service being restored/);
    const itself = await bot(['backup', 'restore', id, '--into-project', source, '--yes', '--dir', dir]);
    expect(itself.exitCode).toBe(2);
    expect(await stackContent(clone)).toEqual(before);
  });
});
