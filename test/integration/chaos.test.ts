import { readdir, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import Docker from 'dockerode';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, psql, startNeo4j, startPostgres, startRedis, startAll } from '../support/containers.js';
import { startEngineProxy } from '../support/engine-proxy.js';
import { mountTmpfs } from '../support/mounts.js';

/**
 * Chaos: `backup create` and `backup restore` against a small stack while random faults hit
 * them: SIGINT, SIGTERM or SIGKILL to stackvault at a random moment, a datastore container
 * killed under it, the backup disk filled, or the Docker engine gone (a socket proxy in front
 * of it is cut, so other tests keep their engine). After every step: each container runs again
 * (after a SIGKILL or a lost engine, started the way stackvault's own message says), no
 * incomplete backup is listed, and every listed backup still verifies. Bounded in steps and
 * time; STACKVAULT_CHAOS_STEPS (and _SECONDS, _SEED) runs a longer or a repeated one.
 */
const STEPS = Number(process.env.STACKVAULT_CHAOS_STEPS ?? 8);
const BUDGET_MS = Number(process.env.STACKVAULT_CHAOS_SECONDS ?? 240) * 1000;
type Fault = 'none' | 'SIGINT' | 'SIGTERM' | 'SIGKILL' | 'kill-store' | 'disk-full' | 'engine-gone';
const FAULTS: Fault[] = ['none', 'SIGINT', 'SIGTERM', 'SIGKILL', 'kill-store', 'disk-full', 'engine-gone'];
/** Faults after which nobody could start what stackvault had stopped: its next run names them. */
const LEAVES_STOPPED: Fault[] = ['SIGKILL', 'engine-gone'];

/** A small deterministic generator, so a failing run can be repeated with its printed seed. */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('chaos: faults at random moments during create and restore', () => {
  const project = newProjectName('chaos');
  const docker = new Docker();
  let containers: StartedTestContainer[] = [];
  let dir: string;

  beforeAll(async () => {
    const [pg, redis, neo4j] = await startAll([startPostgres({ project }), startRedis({ project, appendonly: true }), startNeo4j({ project })]);
    containers = [pg, redis, neo4j];
    await psql(pg, 'bot', 'CREATE TABLE rows AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 300000) g');
    // The backup directory is its own small disk, so a step can fill it.
    dir = await tempDir('chaos');
    await mountTmpfs(dir, `size=${256 + 48 * STEPS}m`);
    const first = await bot(['backup', 'create', '--project', project, '--dir', dir]);
    expect(first.exitCode, String(first.stderr)).toBe(0);
  });

  afterAll(async () => {
    await Promise.all(containers.map((c) => c.stop().catch(() => undefined)));
    if (dir) await execa('umount', [dir], { reject: false });
  });

  /** Fills the backup disk but for a few KiB; returns what takes the space back. */
  async function fillDisk(): Promise<() => Promise<void>> {
    const filler = join(dir, 'filler');
    const free = await statfs(dir);
    await execa('fallocate', ['-l', String(Math.max(0, free.bavail * free.bsize - 16384)), filler], { reject: false });
    return () => rm(filler, { force: true });
  }

  it('every container runs again, nothing incomplete is listed, every listed backup verifies', async () => {
    const seed = Number(process.env.STACKVAULT_CHAOS_SEED ?? Date.now() % 100_000);
    const next = random(seed);
    const counts: Record<string, number> = {};
    const started = Date.now();
    let steps = 0;
    for (; steps < STEPS && Date.now() - started < BUDGET_MS; steps++) {
      const restore = next() < 0.4;
      const fault = FAULTS[Math.floor(next() * FAULTS.length)]!;
      const delayMs = 200 + Math.floor(next() * 2500);
      const args = restore ? ['backup', 'restore', 'latest', '--yes', '--no-check', '--dir', dir] : ['backup', 'create', '--project', project, '--dir', dir];
      const proxy = fault === 'engine-gone' ? await startEngineProxy() : undefined;
      const run = bot(args, proxy ? { env: { DOCKER_HOST: proxy.dockerHost } } : {});
      await new Promise((r) => setTimeout(r, delayMs));
      let freeDisk: (() => Promise<void>) | undefined;
      if (fault === 'SIGINT' || fault === 'SIGTERM' || fault === 'SIGKILL') run.kill(fault);
      if (fault === 'kill-store')
        await docker
          .getContainer(containers[Math.floor(next() * containers.length)]!.getId())
          .kill()
          .catch(() => undefined);
      if (fault === 'disk-full') freeDisk = await fillDisk();
      proxy?.cut();
      const result = await run;
      await freeDisk?.();
      counts[`${restore ? 'restore' : 'create'} ${fault}`] = (counts[`${restore ? 'restore' : 'create'} ${fault}`] ?? 0) + 1;
      const where = `step ${steps} (seed ${seed}): ${args[1]} with ${fault} after ${delayMs} ms, exit ${result.exitCode}`;

      // After a SIGKILL or a lost engine nobody could start what was stopped: stackvault's next
      // run (with the engine back) says what to start.
      const list = await bot(['backup', 'list', '--dir', dir]);
      const named = /docker (?:start|unpause) ([^\n;]+)/.exec(String(list.stderr))?.[1];
      if (LEAVES_STOPPED.includes(fault) && named)
        await Promise.all(
          named
            .trim()
            .split(' ')
            .map((n) =>
              docker
                .getContainer(n)
                .start()
                .catch(() =>
                  docker
                    .getContainer(n)
                    .unpause()
                    .catch(() => undefined),
                ),
            ),
        );
      // A killed store is started again as an operator (or a restart policy) would.
      for (const c of containers) {
        const state = (await docker.getContainer(c.getId()).inspect()).State;
        if (fault === 'kill-store' && !state.Running) await docker.getContainer(c.getId()).start();
      }
      for (const c of containers) {
        const state = (await docker.getContainer(c.getId()).inspect()).State;
        expect(state.Running && !state.Paused, `${where}: ${c.getName()} is ${state.Status}`).toBe(true);
      }
      const listed = await bot(['backup', 'list', '--json', '--dir', dir]);
      const backups = JSON.parse(String(listed.stdout)) as Array<{ id: string }>;
      expect(backups.length, where).toBeGreaterThan(0);
      for (const b of backups) {
        const v = await bot(['backup', 'verify', b.id, '--dir', dir]);
        expect(v.exitCode, `${where}: ${b.id} does not verify: ${String(v.stderr)}`).toBe(0);
      }
      // Leftover temporary directories are never listed, and cleanup removes them.
      await bot(['backup', 'cleanup', '3650', '--dir', dir]);
      expect(
        (await readdir(dir)).filter((n) => n.startsWith('.tmp-') || n === 'filler'),
        where,
      ).toEqual([]);
    }
    const injected = Object.entries(counts)
      .filter(([k]) => !k.endsWith(' none'))
      .reduce((n, [, v]) => n + v, 0);
    console.log(`chaos: seed ${seed}, ${steps} steps, ${injected} faults injected and survived: ${JSON.stringify(counts)}`);
    expect(steps).toBeGreaterThan(0);
  });
});
