import Docker from 'dockerode';
import { execa } from 'execa';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { STACK_IMAGES } from '../../src/stack/images.js';
import { tempDir } from '../support/artifacts.js';
import { bot, REPO_ROOT } from '../support/cli.js';
import { newProjectName } from '../support/containers.js';
import { execIn, seedStack, stackContent } from '../support/stack-content.js';

const COMPOSE_DIR = join(REPO_ROOT, 'compose');
const SERVICES = ['app', 'chroma', 'neo4j', 'postgres', 'redis', 'worker'];
const docker = new Docker();

/** `docker-compose` on the demo stack with the local images and `env` (passwords of the host). */
const compose = (project: string, args: string[], env: Record<string, string> = {}) =>
  execa('docker-compose', ['-f', join(COMPOSE_DIR, 'docker-compose.yml'), '-p', project, ...args], {
    env: { ...Object.fromEntries(STACK_IMAGES.map((i) => [i.env, i.local])), ...env },
    reject: false,
  });

/** Brings the stack up on empty volumes and waits until every container says healthy. */
async function upFresh(project: string, env: Record<string, string> = {}): Promise<void> {
  const up = await compose(project, ['up', '-d'], env);
  if (up.exitCode !== 0) throw new Error(`docker-compose up: ${up.stderr}`);
  for (;;) {
    const listed = await docker.listContainers({ all: true, filters: { label: [`com.docker.compose.project=${project}`] } });
    const health = await Promise.all(listed.map(async (c) => (await docker.getContainer(c.Id).inspect()).State.Health?.Status));
    if (listed.length === SERVICES.length && health.every((h) => h === 'healthy')) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The stores' content, read with their own tools (the worker's files change all the time: its restore is checked by stackvault). */
const storesOf = async (project: string) => Object.fromEntries(Object.entries(await stackContent(project, COMPOSE_DIR)).filter(([k]) => !k.startsWith('worker ')));

type Restored = { services: Array<{ service: string; status: string; check: string }> };

/**
 * Disaster recovery of the whole compose/ demo stack: backed up, `docker-compose down -v` (the
 * old host is gone), then `up -d` on empty volumes, first under another project name (another
 * directory on the new host) with other passwords in its environment, then under the same name;
 * each restored from the backup directory and read back with the stores' own tools.
 */
describe('the demo stack restored onto empty volumes, under another project name and under its own', () => {
  const old = newProjectName('fresh-old');
  const other = newProjectName('fresh-new');
  let dir: string;
  let seeded: Record<string, string>;

  beforeAll(async () => {
    await upFresh(old);
    await seedStack(old, COMPOSE_DIR);
    seeded = await storesOf(old);
    expect(Object.keys(seeded).map((k) => k.split(' ')[0])).toEqual(expect.arrayContaining(['chroma', 'neo4j', 'postgres', 'redis']));
    dir = await tempDir('fresh-compose');
    const created = await bot(['backup', 'create', '--json', '--project', old, '--dir', dir], { timeout: 400_000 });
    expect(created.exitCode, String(created.stderr)).toBe(0);
    expect((JSON.parse(String(created.stdout)) as Manifest).services.map((s) => `${s.name} ${s.status}`)).toEqual(SERVICES.map((s) => `${s} ok`));
    await compose(old, ['down', '-v']);
  }, 600_000);

  afterAll(async () => {
    for (const p of [old, other]) await compose(p, ['down', '-v']);
  }, 120_000);

  it('under another project name, with other passwords: the plain restore names --into-project; with it, every store is equal', async () => {
    const passwords = { POSTGRES_PASSWORD: 'new-host-pg-4242', REDIS_PASSWORD: 'new-host-redis-4242' };
    await upFresh(other, passwords);
    const plain = await bot(['backup', 'restore', 'latest', '--yes', '--dir', dir]);
    expect(plain.exitCode, String(plain.stderr)).toBe(4);
    // (Other stacks on this engine may run a service of the same name: then it names them all.)
    expect(String(plain.stderr)).toMatch(new RegExp(`${other}.*restore into it with --into-project`));
    const r = await bot(['backup', 'restore', 'latest', '--into-project', other, '--yes', '--json', '--dir', dir], { timeout: 600_000 });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const result = JSON.parse(String(r.stdout)) as Restored;
    expect(result.services.map((s) => `${s.service} ${s.status} ${s.check}`)).toEqual(SERVICES.map((s) => `${s} restored equal`));
    expect(await storesOf(other)).toEqual(seeded);
    // Postgres's roles come back with the backup's passwords, and the output says so; Redis keeps
    // the new host's requirepass (the RDB holds none).
    expect(String(r.stderr)).toContain('the password of bot (the superuser POSTGRES_USER names) was set back to the one in this backup');
    const redis = (await docker.listContainers({ filters: { label: [`com.docker.compose.project=${other}`, 'com.docker.compose.service=redis'] } }))[0]!;
    expect((await execIn(redis.Id, ['redis-cli', 'ping'], { REDISCLI_AUTH: passwords.REDIS_PASSWORD })).trim()).toBe('PONG');
    await compose(other, ['down', '-v']);
  }, 900_000);

  it('under its own project name again: a plain restore, every store equal', async () => {
    await upFresh(old);
    const r = await bot(['backup', 'restore', 'latest', '--yes', '--json', '--dir', dir], { timeout: 600_000 });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const result = JSON.parse(String(r.stdout)) as Restored;
    expect(result.services.map((s) => `${s.service} ${s.status} ${s.check}`)).toEqual(SERVICES.map((s) => `${s} restored equal`));
    expect(await storesOf(old)).toEqual(seeded);
  }, 900_000);
});
