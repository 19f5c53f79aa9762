import Docker from 'dockerode';
import { execa } from 'execa';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMPOSE_FILE, composeCommand } from '../../src/core/compose.js';
import type { Manifest } from '../../src/core/manifest.js';
import { DockerodeEngine } from '../../src/docker/dockerode-engine.js';
import { seedDemo } from '../../src/stack/demo-data.js';
import { STACK_IMAGES } from '../../src/stack/images.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName } from '../support/containers.js';
import { flipByte } from '../support/tamper.js';

const docker = new Docker();
const SERVICES = ['app', 'chroma', 'neo4j', 'postgres', 'redis', 'worker'];
/** What would mean a production container was touched: stopped, killed, paused, restarted, replaced. */
const DISRUPTIONS = ['create', 'destroy', 'die', 'kill', 'oom', 'pause', 'restart', 'start', 'stop', 'unpause'];

/**
 * Docker's container events for containers with this label, from now until `stop()`. Watched
 * live: the engine keeps only its last 256 events, which a busy host (every exec is three)
 * overwrites within minutes, so asking afterwards could miss some.
 */
async function watchEvents(label: string): Promise<{ stop(): Promise<Array<{ action: string; name: string }>> }> {
  const stream = (await docker.getEvents({ filters: { type: ['container'], label: [label] } })) as NodeJS.ReadableStream & { destroy(): void };
  let text = '';
  stream.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
  });
  return {
    async stop() {
      await new Promise((r) => setTimeout(r, 1500)); // events of the last moment arrive
      stream.destroy();
      return text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { Action: string; Actor: { Attributes: { name: string } } })
        .map((e) => ({ action: e.Action, name: e.Actor.Attributes.name }));
    },
  };
}

/**
 * `backup drill` of the compose/ demo stack itself (the stack `./bot.sh demo` brings up), under
 * a Compose project of its own on the local images: every one of its six services is restored
 * into a throwaway copy and comes back equal, and the running stack is never touched.
 */
describe('backup drill of the compose/ demo stack', () => {
  const project = newProjectName('demo-drill');
  const env = { ...(process.env as Record<string, string>), ...Object.fromEntries(STACK_IMAGES.map((i) => [i.env, i.local])) };
  const compose = async (args: string[]) => {
    const [cmd, ...pre] = await composeCommand();
    return execa(cmd!, [...pre, '-f', COMPOSE_FILE, '-p', project, ...args], { env, extendEnv: false, reject: false, all: true, timeout: 300_000 });
  };
  const production = async () => {
    const list = await docker.listContainers({ all: true, filters: { label: [`com.docker.compose.project=${project}`] } });
    const states = await Promise.all(list.map((c) => docker.getContainer(c.Id).inspect()));
    return Object.fromEntries(states.map((s) => [s.Config.Labels['com.docker.compose.service']!, { id: s.Id, running: s.State.Running, startedAt: s.State.StartedAt }]));
  };
  // This backup's drill only: other test files drill at the same time.
  const drillContainers = () => docker.listContainers({ all: true, filters: { label: [`stackvault.drill-for=${id}`] } });
  let dir: string;
  let id: string;

  beforeAll(async () => {
    const up = await compose(['up', '-d']);
    expect(up.exitCode, String(up.all)).toBe(0);
    // Every service running, and healthy where it has a healthcheck (as `./bot.sh demo` waits).
    const deadline = Date.now() + 300_000;
    for (;;) {
      const states = await Promise.all((await docker.listContainers({ all: true, filters: { label: [`com.docker.compose.project=${project}`] } })).map((c) => docker.getContainer(c.Id).inspect()));
      if (states.length === SERVICES.length && states.every((s) => s.State.Running && (s.State.Health === undefined || s.State.Health.Status === 'healthy'))) break;
      if (Date.now() > deadline) throw new Error(`the demo stack did not come up: ${states.map((s) => `${s.Name}=${s.State.Health?.Status ?? s.State.Status}`).join(', ')}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    const ids = Object.fromEntries(Object.entries(await production()).map(([service, c]) => [service, c.id]));
    await seedDemo(new DockerodeEngine(), ids);
    dir = await tempDir('demo-drill');
    const r = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir], { timeout: 400_000 });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const m = JSON.parse(String(r.stdout)) as Manifest;
    expect(m.services.map((s) => `${s.name} ${s.driver} ${s.status}`)).toEqual(['app sqlite ok', 'chroma chroma ok', 'neo4j neo4j ok', 'postgres postgres ok', 'redis redis ok', 'worker files ok']);
    id = m.id;
  }, 900_000);
  afterAll(async () => {
    const down = await compose(['down', '-v']);
    expect(down.exitCode, String(down.all)).toBe(0);
  }, 300_000);

  it('passes for every service, is recorded, leaves nothing behind, and never touches the running stack', async () => {
    const before = await production();
    expect(Object.keys(before).sort()).toEqual(SERVICES);
    const [onProduction, onCopy] = await Promise.all([watchEvents(`com.docker.compose.project=${project}`), watchEvents(`stackvault.drill-for=${id}`)]);
    const r = await bot(['backup', 'drill', id, '--json', '--dir', dir], { timeout: 900_000 });
    const [seen, copy] = await Promise.all([onProduction.stop(), onCopy.stop()]);
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    const result = JSON.parse(String(r.stdout)) as { ok: boolean; services: Record<string, { ok: boolean; check: string }> };
    expect(result.ok).toBe(true);
    expect(result.services).toEqual(Object.fromEntries(SERVICES.map((s) => [s, { ok: true, check: 'equal' }])));
    for (const s of SERVICES) expect(String(r.stderr)).toContain(`✅ ${s}: equal`);
    expect(String(r.stderr)).toContain('Drill passed');

    const list = JSON.parse(String((await bot(['backup', 'list', '--json', '--dir', dir])).stdout)) as Manifest[];
    expect(list.map((m) => m.id)).toEqual([id]); // the restore point of the empty copy is not kept
    expect(list[0]!.drills?.map((d) => d.ok)).toEqual([true]);
    expect(Object.keys(list[0]!.drills![0]!.services).sort()).toEqual(SERVICES);
    expect(await drillContainers()).toEqual([]);

    // Production: the same containers, still running, started no later than before, and Docker
    // saw none of them stopped, paused, killed or started meanwhile.
    expect(await production()).toEqual(before);
    expect(seen.filter((e) => DISRUPTIONS.includes(e.action))).toEqual([]);
    // ...while the throwaway copy did run (and was stopped for its restore): the events are real.
    expect(copy.filter((e) => e.action === 'create').length).toBe(SERVICES.length);
    expect(copy.filter((e) => e.action === 'destroy').length).toBe(SERVICES.length);
  }, 900_000);

  it('a backup whose artifact changed after it was written fails the drill (exit 5) before any container starts', async () => {
    const manifest = (JSON.parse(String((await bot(['backup', 'list', '--json', '--dir', dir])).stdout)) as Manifest[]).find((m) => m.id === id)!;
    await flipByte(join(dir, id, manifest.services.find((s) => s.name === 'app')!.artifact!));
    const before = await production();
    const onCopy = await watchEvents(`stackvault.drill-for=${id}`);
    const r = await bot(['backup', 'drill', id, '--dir', dir], { timeout: 300_000 });
    const copy = await onCopy.stop();
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(5);
    expect(String(r.stderr)).toMatch(/app \(app\.tar\.zst\)/);
    expect(copy).toEqual([]); // nothing was started
    expect(await production()).toEqual(before);
    const m = (JSON.parse(String((await bot(['backup', 'list', '--json', '--dir', dir])).stdout)) as Manifest[]).find((x) => x.id === id)!;
    expect(m.drills?.map((d) => d.ok)).toEqual([true, false]);
    expect(m.drills![1]!.services.app!.check).toMatch(/app \(app\.tar\.zst\)/);
  }, 400_000);
});
