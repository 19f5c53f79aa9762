import { execa } from 'execa';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { NEO4J_PASSWORD, newProjectName, PG_PASSWORD, REDIS_PASSWORD, startNeo4j, startPostgres, startRedis, startAll } from '../support/containers.js';

const SECRETS = [PG_PASSWORD, REDIS_PASSWORD, NEO4J_PASSWORD];

/**
 * Passwords from container environments and commands never reach manifests, backup_info.txt,
 * logs, the terminal, or the argv of any process stackvault starts.
 */
describe('secrets', () => {
  const started: StartedTestContainer[] = [];
  let dir: string;
  const outputs: string[] = [];
  const leakedArgv = new Set<string>();
  const CONTROL = `control-marker-${Date.now()}`;
  let sawControl = 0;
  let sampling = true;

  async function sampleArgv(): Promise<void> {
    while (sampling) {
      const ps = await execa('ps', ['-eo', 'args'], { reject: false });
      for (const line of ps.stdout.split('\n')) {
        // The user's own redis-server was started with --requirepass: that is their choice, not ours.
        if (line.includes(CONTROL)) sawControl++;
        // A Redis container configured with --requirepass shows that command (its entrypoint,
        // then redis-server until it rewrites its title): the user's configuration, visible
        // from any container start on the host. stackvault itself never runs redis-server.
        if (SECRETS.some((s) => line.includes(s)) && !/\bredis-server\b.*--requirepass/.test(line)) leakedArgv.add(line);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  beforeAll(async () => {
    const project = newProjectName('secrets');
    started.push(...(await startAll([startPostgres({ project }), startRedis({ project, appendonly: true }), startNeo4j({ project })])));
    dir = await tempDir('secrets');
    // A control process inside a container with a marker in its argv: the sampler must see it.
    await execa('docker', ['exec', '-d', started[2]!.getId(), 'sh', '-c', 'sleep 120', CONTROL]);
    const sampler = sampleArgv();
    try {
      const steps = [
        ['backup', 'create', '--json', '--project', project, '--dir', dir],
        ['backup', 'list', '--dir', dir],
        ['backup', 'restore', 'latest', '--dir', dir, '--yes'],
        ['backup', 'verify', 'latest', '--deep', '--dir', dir],
        ['backup', 'stats', '--dir', dir],
        ['backup', 'log', '--dir', dir],
        ['scheduler', 'trigger', '--type', 'daily', '--project', project, '--dir', dir],
      ];
      for (const args of steps) {
        const r = await bot(args, { env: { STACKVAULT_DEBUG: '1' } });
        expect(r.exitCode, `${args.join(' ')}: ${String(r.stderr)}`).toBe(0);
        outputs.push(String(r.stdout), String(r.stderr));
      }
    } finally {
      sampling = false;
      await sampler;
    }
  });
  afterAll(async () => {
    await Promise.all(started.map((c) => c.stop()));
  });

  it('no process stackvault started had a password in its argv', () => {
    expect(sawControl, 'the sampler must see processes inside containers, or it proves nothing').toBeGreaterThan(0);
    expect([...leakedArgv]).toEqual([]);
  });

  it('no password in anything printed (stdout, stderr, debug on)', () => {
    for (const text of outputs) for (const s of SECRETS) expect(text).not.toContain(s);
  });

  it('no password in any file stackvault wrote (manifests, backup_info.txt, logs, state)', async () => {
    const files: string[] = [];
    const walk = async (d: string) => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        if (e.isDirectory()) await walk(join(d, e.name));
        else if (!/\.(gz|zst)$/.test(e.name)) files.push(join(d, e.name));
      }
    };
    await walk(dir);
    expect(files.some((f) => f.endsWith('manifest.json'))).toBe(true);
    expect(files.some((f) => f.endsWith('operations.log'))).toBe(true);
    for (const f of files) {
      const text = await readFile(f, 'utf8');
      for (const s of SECRETS) expect(text, f).not.toContain(s);
    }
  });

  it('backup directories are 0700 and files 0600', async () => {
    const { stat } = await import('node:fs/promises');
    for (const id of (await readdir(dir)).filter((n) => n.includes('_backup_'))) {
      expect((await stat(join(dir, id))).mode & 0o777, id).toBe(0o700);
      for (const f of await readdir(join(dir, id))) expect((await stat(join(dir, id, f))).mode & 0o777, `${id}/${f}`).toBe(0o600);
    }
    expect((await stat(join(dir, 'operations.log'))).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
  });

  it('the manifest records the driver and user, not the environment', async () => {
    const id = (await readdir(dir)).find((n) => n.startsWith('stackvault_backup_'))!;
    const m = JSON.parse(await readFile(join(dir, id, 'manifest.json'), 'utf8')) as Manifest;
    expect(JSON.stringify(m)).not.toMatch(/POSTGRES_PASSWORD|requirepass|NEO4J_AUTH/);
  });
});
