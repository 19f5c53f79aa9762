import { describe, expect, it } from 'vitest';
import { consistentByPolicy, semaphore, writersOf } from '../../src/core/consistency.js';
import { assignServiceKeys, selectDriver } from '../../src/core/selection.js';
import type { ContainerDetails } from '../../src/docker/engine.js';
import { DRIVERS } from '../../src/drivers/registry.js';
import type { Peer } from '../../src/drivers/types.js';

/** Who is paused for a consistent backup's window, read off a project's containers. */
const container = (name: string, over: Partial<ContainerDetails> = {}): ContainerDetails => ({
  id: name,
  name,
  image: 'busybox',
  labels: { 'com.docker.compose.project': 'p', 'com.docker.compose.service': name },
  state: 'running',
  running: true,
  paused: false,
  env: {},
  cmd: [],
  mounts: [],
  imageId: 'sha256:0',
  ...over,
});

/** Discovery's answer for these containers: drivers picked as discovery picks them (app containers: the files driver). */
function found(all: ContainerDetails[]) {
  const files = DRIVERS.find((d) => d.leftover)!;
  const matched = all.map((c) => ({ container: c, driver: selectDriver(c, DRIVERS) ?? files }));
  const running = assignServiceKeys(matched.filter((m) => m.container.labels['stackvault.exclude'] !== 'true'));
  return {
    running,
    peers: (id: string): Peer[] => matched.filter((m) => m.container.id !== id).map((m) => ({ container: m.container, driver: m.driver.name })),
  };
}

describe('the writers of a consistent backup', () => {
  const pg = container('db', { image: 'postgres:17' });
  const redis = container('cache', { image: 'redis:7' });
  const chroma = container('vectors', { image: 'chromadb/chroma:1.0.0' });
  const api = container('api');
  const sqliteApp = container('notes', { labels: { ...api.labels, 'com.docker.compose.service': 'notes', 'stackvault.sqlite.paths': '/data/a.db' } });
  const labelledServer = container('db2', { image: 'acme/db:1', labels: { ...api.labels, 'stackvault.driver': 'postgres' } });

  it('are every running app container, never a datastore server', () => {
    const names = writersOf(found([pg, redis, chroma, api, sqliteApp, labelledServer]), DRIVERS).map((c) => c.name);
    expect(names).toEqual(['api', 'notes']);
  });

  it('leave out stopped, already paused and helper containers', () => {
    const stopped = container('old', { running: false, state: 'exited' });
    const paused = container('frozen', { paused: true });
    const helper = container('helper', { labels: { ...api.labels, 'stackvault.helper': 'true' } });
    expect(writersOf(found([pg, api, stopped, paused, helper]), DRIVERS).map((c) => c.name)).toEqual(['api']);
  });

  it('are only the labelled ones when any container is labelled stackvault.writer=true', () => {
    const worker = container('worker', { labels: { ...api.labels, 'com.docker.compose.service': 'worker', 'stackvault.writer': 'true' } });
    expect(writersOf(found([pg, api, sqliteApp, worker]), DRIVERS).map((c) => c.name)).toEqual(['worker']);
  });

  it('the label stackvault.consistent=true on any container makes the backup consistent', () => {
    expect(consistentByPolicy(found([pg, api]))).toBe(false);
    const policy = container('api', { labels: { ...api.labels, 'stackvault.consistent': 'true' } });
    expect(consistentByPolicy(found([pg, policy]))).toBe(true);
  });
});

describe('the streaming limit after the window', () => {
  it('runs at most `limit` at once and every one in the end', async () => {
    const limit = semaphore(2);
    let running = 0;
    let most = 0;
    const gates: Array<() => void> = [];
    const work = Array.from({ length: 5 }, (_, i) =>
      limit(async () => {
        running++;
        most = Math.max(most, running);
        await new Promise<void>((resolve) => gates.push(resolve));
        running--;
        return i;
      }),
    );
    // Let each waiting one in by ending one that runs.
    for (let released = 0; released < 5; released++) {
      while (gates.length === 0) await new Promise((r) => setImmediate(r));
      gates.shift()!();
    }
    expect(await Promise.all(work)).toEqual([0, 1, 2, 3, 4]);
    expect(most).toBe(2);
  });
});
