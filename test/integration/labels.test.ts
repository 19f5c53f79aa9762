import Docker from 'dockerode';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName } from '../support/containers.js';
import { IMAGES } from '../support/images.js';

/**
 * How discovery reads labels, with real containers and the real CLI: docker-compose v1's
 * `True`, refused values, unknown keys, one bad container elsewhere on the host, Compose
 * one-offs, excluded services named by --only or a restore, and service keys that the
 * qualifying alone would give twice.
 */
const docker = new Docker();
const created: string[] = [];

async function container(name: string, labels: Record<string, string>, o: { start?: boolean; cmd?: string[]; image?: string } = {}): Promise<string> {
  const c = await docker.createContainer({ name, Image: o.image ?? IMAGES.redis, Labels: labels, ...(o.cmd ? { Cmd: o.cmd } : {}) });
  created.push(c.id);
  if (o.start ?? true) await c.start();
  return name;
}
const compose = (project: string, service: string, more: Record<string, string> = {}) => ({
  'com.docker.compose.project': project,
  'com.docker.compose.service': service,
  'com.docker.compose.container-number': '1',
  ...more,
});
const remove = (id: string) =>
  docker
    .getContainer(id)
    .remove({ force: true, v: true })
    .catch(() => undefined);

afterAll(async () => {
  await Promise.all(created.splice(0).map(remove));
});

const out = (r: { stdout: unknown; stderr: unknown }) => `${String(r.stdout)}${String(r.stderr)}`;

describe('boolean labels, and excluded services named', () => {
  const project = newProjectName('labels-bool');
  const dir = tempDir('labels-bool');

  it('stackvault.exclude=True (what docker-compose v1 writes for the YAML true) excludes; --only of it says so', async () => {
    await container(`${project}-db`, compose(project, 'db', { 'stackvault.exclude': 'True' }));
    await container(`${project}-cache`, compose(project, 'cache', { 'stackvault.stop': 'False' }));
    const r = await bot(['backup', 'create', '--project', project, '--dir', await dir, '--json']);
    expect(r.exitCode, out(r)).toBe(0);
    const m = JSON.parse(String(r.stdout)) as Manifest;
    expect(m.services.map((s) => s.name)).toEqual(['cache']);
    expect(m.leftOut).toContainEqual(expect.objectContaining({ container: `${project}-db`, reason: 'labelled stackvault.exclude=true' }));
    const only = await bot(['backup', 'create', '--project', project, '--only', 'db', '--dry-run']);
    expect(only.exitCode).toBe(4);
    expect(String(only.stderr)).toContain(`db (${project}-db) is labelled stackvault.exclude=true`);
  });

  it('a restore into a container labelled stackvault.exclude=true says so', async () => {
    // The backed-up cache container, recreated with the label.
    await remove(`${project}-cache`);
    await container(`${project}-cache`, compose(project, 'cache', { 'stackvault.exclude': 'true' }));
    // A store the restore could find, so that it is the exclusion that stops it, not an empty host.
    await container(`${project}-spare`, compose(project, 'spare'));
    const r = await bot(['backup', 'restore', 'latest', '--dir', await dir, '--yes']);
    expect(r.exitCode, out(r)).toBe(4);
    expect(String(r.stderr)).toContain(`cache (${project}-cache) is labelled stackvault.exclude=true`);
    expect(String(r.stderr)).not.toMatch(/Start the stack/);
  });

  it('a boolean label that is neither true nor false is refused in one sentence naming the container, exit 2', async () => {
    const other = newProjectName('labels-maybe');
    await container(`${other}-cache`, compose(other, 'cache', { 'stackvault.stop': 'yes' }));
    const r = await bot(['backup', 'create', '--project', other, '--dir', await dir]);
    expect(r.exitCode, out(r)).toBe(2);
    expect(String(r.stderr)).toContain(`Container ${other}-cache has label stackvault.stop="yes"`);
    expect(String(r.stderr)).toMatch(/true or false/);
  });
});

describe('containers elsewhere on the host', () => {
  const project = newProjectName('labels-host');
  const elsewhere = newProjectName('labels-else');
  const dir = tempDir('labels-host');

  it('an unknown stackvault.driver in an unrelated project is left out with a warning; a typo in a key is warned of with the nearest key, in a project discovery does not otherwise look at', async () => {
    await container(`${project}-cache`, compose(project, 'cache'));
    await container(`${elsewhere}-bad`, compose(elsewhere, 'bad', { 'stackvault.driver': 'Postgres' }), { start: false });
    await container(`${elsewhere}-app`, compose(elsewhere, 'app', { 'stackvault.sqlite.path': '/data/app.db' }), { start: false, image: IMAGES.appstub });
    // The whole host, as the scheduler runs it (--only keeps other sessions' containers out of the backup).
    const r = await bot(['backup', 'create', '--only', `${project}-cache`, '--dir', await dir]);
    expect(r.exitCode, out(r)).toBe(0);
    expect(out(r)).toMatch(new RegExp(`warning: .*${elsewhere}-bad.*stackvault\\.driver=Postgres.*not a known driver`));
    expect(out(r)).toContain(`container ${elsewhere}-app has label stackvault.sqlite.path, which stackvault does not know and ignores (did you mean stackvault.sqlite.paths?)`);
    // A restore of a good backup is not blocked by it either.
    const restore = await bot(['backup', 'restore', 'latest', '--dir', await dir, '--yes']);
    expect(restore.exitCode, out(restore)).toBe(0);
    expect(out(restore)).toMatch(/not a known driver/);
  });

  it('over every project, a datastore server whose labels cannot be read is planned as a skipped service with why, not left out with a warning alone (a create is then partial)', async () => {
    const lonely = newProjectName('labels-lonely');
    await container(`${lonely}-cache`, compose(lonely, 'cache', { 'stackvault.stop': 'yes' }));
    // The whole host (what the scheduler runs), as a plan: a real run would back up other tests' stacks.
    const r = await bot(['backup', 'create', '--dry-run', '--json']);
    expect(r.exitCode, out(r)).toBe(0);
    const plan = JSON.parse(String(r.stdout)) as { services: Array<{ container: string; problem?: string }>; leftOut: Array<{ container: string }> };
    expect(plan.services.find((s) => s.container === `${lonely}-cache`)?.problem).toMatch(/^its labels cannot be read: Container .*-cache has label stackvault\.stop="yes"/);
    expect(plan.leftOut.map((l) => l.container)).not.toContain(`${lonely}-cache`);
  });

  it('the run stops when it needs that container: --only names it, or its project is the one backed up', async () => {
    const named = await bot(['backup', 'create', '--only', `${elsewhere}-bad`, '--dry-run']);
    expect(named.exitCode, out(named)).toBe(2);
    expect(String(named.stderr)).toContain(`Container ${elsewhere}-bad has label stackvault.driver=Postgres, which is not a known driver.`);
    const inProject = await bot(['backup', 'create', '--project', elsewhere, '--dry-run']);
    expect(inProject.exitCode).toBe(2);
  });

  it('a Compose one-off (docker compose run, left exited) is left out as such, not taken for a stopped server', async () => {
    const p = newProjectName('labels-oneoff');
    await container(`${p}-redis`, compose(p, 'redis'));
    await container(`${p}-redis-run-1`, compose(p, 'redis', { 'com.docker.compose.oneoff': 'True' }), { cmd: ['redis-cli', '--version'] });
    const r = await bot(['backup', 'create', '--project', p, '--dir', await dir, '--json']);
    expect(r.exitCode, out(r)).toBe(0);
    const m = JSON.parse(String(r.stdout)) as Manifest;
    expect(m.status).toBe('ok');
    expect(m.services.map((s) => s.name)).toEqual(['redis']);
    expect(m.leftOut).toContainEqual(expect.objectContaining({ container: `${p}-redis-run-1`, reason: expect.stringMatching(/one-off/) }));
  });
});

describe('service keys', () => {
  it("a restore never goes into another project's container because its service has the same name", async () => {
    const mine = newProjectName('labels-mine');
    const theirs = newProjectName('labels-theirs');
    const service = `cache-${mine.slice(-6)}`; // no other test's container has it
    const dir = await tempDir('labels-cross');
    await container(`${mine}-cache`, compose(mine, service));
    const made = await bot(['backup', 'create', '--project', mine, '--dir', dir]);
    expect(made.exitCode, out(made)).toBe(0);
    await remove(`${mine}-cache`);
    await container(`${theirs}-cache`, compose(theirs, service));
    const exec = async (cmd: string[]) => {
      const e = await docker.getContainer(`${theirs}-cache`).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
      const stream = await e.start({});
      let text = '';
      stream.on('data', (d: Buffer) => {
        text += d.toString('latin1');
      });
      await new Promise((r) => stream.on('end', r));
      return text;
    };
    await new Promise((r) => setTimeout(r, 1000)); // the server listens
    await exec(['redis-cli', 'SET', 'theirs', 'kept']);
    const r = await bot(['backup', 'restore', 'latest', '--dir', dir, '--yes']);
    expect(r.exitCode, out(r)).toBe(4);
    expect(String(r.stderr)).toContain(`No redis container to restore '${service}' into (it was container ${mine}-cache in project ${mine})`);
    expect(await exec(['redis-cli', 'GET', 'theirs'])).toContain('kept');
  });

  it('shop+redis next to a service literally named shop-redis: two keys, a backup that lists and restores', async () => {
    const shop = newProjectName('labels-shop');
    const legacy = newProjectName('labels-legacy');
    const blog = newProjectName('labels-blog');
    const dir = await tempDir('labels-keys');
    const a = await container(`${shop}-redis-1`, compose(shop, 'redis'));
    const b = await container(`${blog}-redis-1`, compose(blog, 'redis'));
    const c = await container(`${legacy}-x-1`, compose(legacy, `${shop}-redis`));
    const r = await bot(['backup', 'create', '--only', [a, b, c].join(','), '--dir', dir, '--json']);
    expect(r.exitCode, out(r)).toBe(0);
    const m = JSON.parse(String(r.stdout)) as Manifest;
    const names = m.services.map((s) => s.name);
    expect(new Set(names).size).toBe(3);
    expect(names).toContain(`${blog}-redis`);
    const list = await bot(['backup', 'list', '--dir', dir, '--json']);
    expect(JSON.parse(String(list.stdout))).toHaveLength(1);
    const restore = await bot(['backup', 'restore', 'latest', '--dir', dir, '--yes']);
    expect(restore.exitCode, out(restore)).toBe(0);
  });
});

describe('empty flags', () => {
  // Should the refusal ever go, nothing wide happens instead: update meets a directory that is
  // not a git checkout before it backs anything up, the scheduler a crontab that refuses, the
  // others dry runs and an empty backup directory.
  const scratch = tempDir('labels-empty');
  const fakeCrontab = scratch.then(async (d) => {
    await mkdir(join(d, 'bin'));
    await writeFile(join(d, 'bin', 'crontab'), '#!/bin/sh\necho "fake crontab: refused" >&2\nexit 1\n', { mode: 0o755 });
    return { PATH: `${join(d, 'bin')}:${process.env.PATH ?? ''}` };
  });
  it.each([
    [['backup', 'create', '--project', '', '--dry-run'], '--project'],
    [['backup', 'create', '--project', '  ', '--dry-run'], '--project'],
    [['backup', 'create', '--prefix', '', '--dry-run'], '--prefix'],
    [['backup', 'list', '--dir', ''], '--dir'],
    [['update', '--project', '', '--repo', 'SCRATCH', '--dir', 'SCRATCH'], '--project'],
    [['scheduler', 'install', 'daily', '--project', '', '--dir', 'SCRATCH'], '--project'],
    [['backup', 'restore', 'latest', '--into-project', ' ', '--dir', 'SCRATCH', '--yes'], '--into-project'],
  ])('%j is refused in one sentence, exit 2', async (args, flag) => {
    const d = await scratch;
    const r = await bot(
      args.map((a) => (a === 'SCRATCH' ? d : a)),
      { env: await fakeCrontab },
    );
    expect(r.exitCode, out(r)).toBe(2);
    expect(String(r.stderr)).toContain(`${flag}`);
    expect(String(r.stderr)).toMatch(/is empty: give it a value, or leave the flag out\.\n$/);
  });
});
