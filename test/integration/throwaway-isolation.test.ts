import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StartedTestContainer } from 'testcontainers';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { chromaApi, newProjectName, populateRedis, startAll, startChroma, startRedis, untilAnswers } from '../support/containers.js';
import { IMAGES } from '../support/images.js';

const docker = new Docker();

/**
 * A throwaway holds a backup's data, often without the production's password (a Redis with no
 * requirepass): no other container may reach it. Redis's has no network at all; Chroma's, read
 * over HTTP from this host, an internal network of its own, removed with it. Watched from
 * outside while a real `verify --deep` runs, and probed from a container on the default bridge.
 */
describe('throwaways are reachable by no other container', () => {
  const project = newProjectName('isolated');
  let redis: StartedTestContainer;
  let chroma: StartedTestContainer;
  let dir: string;
  let id: string;

  beforeAll(async () => {
    [redis, chroma] = await startAll([startRedis({ project }), startChroma({ project })]);
    await populateRedis(redis, 200_000, 64);
    const api = chromaApi(chroma);
    await untilAnswers(() => api('/collections'));
    const { id: collection } = await api<{ id: string }>('/collections', { body: { name: 'kept' } });
    await api(`/collections/${collection}/add`, {
      body: {
        ids: ['a', 'b'],
        embeddings: [
          [1, 2, 3],
          [4, 5, 6],
        ],
        documents: ['secret one', 'secret two'],
      },
    });
    dir = await tempDir('isolated');
    const made = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(made.exitCode, String(made.stderr)).toBe(0);
    id = (JSON.parse(String(made.stdout)) as { id: string }).id;
  });
  afterAll(async () => {
    await Promise.all([redis?.stop(), chroma?.stop()].map((p) => p?.catch(() => undefined)));
  });

  it('verify --deep: Redis without a network, Chroma on an internal one no bridge container reaches; both gone afterwards', async () => {
    const probe = await docker.createContainer({ Image: IMAGES.redis, Entrypoint: ['sleep', '600'], Labels: { 'stackvault.exclude': 'true' } });
    await probe.start();
    try {
      const seen = new Map<string, { networkMode: string; networks: Array<{ name: string; ip: string; internal: boolean }> }>();
      const verify = bot(['backup', 'verify', id, '--deep', '--dir', dir]);
      let done = false;
      void verify.finally(() => {
        done = true;
      });
      const reached: string[] = [];
      // Each throwaway is inspected as soon as it is seen; its probes run beside the watching, so
      // a short-lived one is not missed while another is probed.
      const probes: Promise<void>[] = [];
      const probeFrom = async (containerId: string, name: string, ip: string, port: string) => {
        const exec = await probe.exec({ Cmd: ['timeout', '2', 'bash', '-c', `exec 3<>/dev/tcp/${ip}/${port}`], AttachStdout: true, AttachStderr: true });
        const stream = await exec.start({});
        stream.resume();
        await new Promise((r) => stream.on('end', r));
        const code = (await exec.inspect()).ExitCode;
        // Counted only if the address is still the throwaway's (once it is gone, another test may get it).
        const still = await docker
          .getContainer(containerId)
          .inspect()
          .catch(() => undefined);
        const stillThere = still?.State.Running && Object.values(still.NetworkSettings.Networks ?? {}).some((n) => n.IPAddress === ip);
        if (code === 0 && stillThere) reached.push(`${name} ${ip}:${port}`);
      };
      while (!done && seen.size < 2) {
        for (const c of await docker.listContainers({ all: true, filters: { label: [`stackvault.throwaway-for=${dir}`] } })) {
          if (seen.has(c.Id)) continue;
          const info = await docker
            .getContainer(c.Id)
            .inspect()
            .catch(() => undefined);
          if (!info?.State.Running) continue;
          const networks = await Promise.all(
            Object.entries(info.NetworkSettings.Networks ?? {}).map(async ([name, n]) => ({
              name,
              ip: n.IPAddress,
              internal: (
                await docker
                  .getNetwork(name)
                  .inspect()
                  .catch(() => ({ Internal: false }))
              ).Internal,
            })),
          );
          seen.set(c.Id, { networkMode: info.HostConfig.NetworkMode ?? '', networks });
          // From a container on the default bridge: no address of the throwaway answers.
          for (const { ip } of networks.filter((n) => n.ip)) for (const port of ['8000', '6379']) probes.push(probeFrom(c.Id, info.Name, ip, port));
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      await Promise.all(probes);
      const r = await verify;
      expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
      const kinds = [...seen.values()];
      expect(kinds.length).toBe(2);
      expect(kinds.filter((k) => k.networkMode === 'none')).toHaveLength(1); // Redis
      const chromaOne = kinds.find((k) => k.networkMode !== 'none')!;
      expect(chromaOne.networks).toHaveLength(1);
      expect(chromaOne.networks[0]!.internal).toBe(true);
      expect(reached).toEqual([]);
      // The internal network went with its container.
      await expect(docker.getNetwork(chromaOne.networks[0]!.name).inspect()).rejects.toThrow(/no such network|not found/i);
      expect(await docker.listContainers({ all: true, filters: { label: [`stackvault.throwaway-for=${dir}`] } })).toEqual([]);
    } finally {
      await probe.remove({ force: true }).catch(() => undefined);
    }
  });
});

/**
 * A run killed between making a throwaway's own network and the throwaway itself leaves the
 * network with no container on it, which no `remove` ever sees: the next run's sweep takes it,
 * and only it (not one of a run still going, not one without stackvault's own-network label).
 */
describe("a throwaway's own network left by a killed run", () => {
  it('is removed by the next run; a live run’s network and anybody else’s stay', async () => {
    const { spawnSync } = await import('node:child_process');
    const { hostname } = await import('node:os');
    const dead = spawnSync('true').pid;
    const owner = (pid: number) => ({ 'stackvault.helper-pid': String(pid), 'stackvault.helper-host': hostname() });
    const make = async (name: string, labels: Record<string, string>) => (await docker.createNetwork({ Name: `${newProjectName(name)}-net`, Driver: 'bridge', Internal: true, Labels: labels })).id;
    const left = await make('leftnet', { ...owner(dead), 'stackvault.own-network': 'true' });
    const live = await make('livenet', { ...owner(process.pid), 'stackvault.own-network': 'true' });
    const theirs = await make('theirnet', owner(dead));
    try {
      const dir = await tempDir('leftnet');
      const r = await bot(['backup', 'create', '--dir', dir, '--project', newProjectName('nothing')]);
      const exists = (id: string) =>
        docker
          .getNetwork(id)
          .inspect()
          .then(
            () => true,
            () => false,
          );
      // Gone, by this run or by any other test's run meanwhile (every run sweeps), which is why
      // this run's own "Removed … network" line is not required.
      expect(await exists(left), String(r.stderr)).toBe(false);
      expect(await exists(live)).toBe(true);
      expect(await exists(theirs)).toBe(true);
    } finally {
      for (const id of [left, live, theirs])
        await docker
          .getNetwork(id)
          .remove()
          .catch(() => undefined);
    }
  });
});
