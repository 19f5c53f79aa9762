import { execa } from 'execa';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { GenericContainer } from 'testcontainers';
import { afterAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, startAll, startNeo4j, startRedis } from '../support/containers.js';
import { IMAGES } from '../support/images.js';

const git = (cwd: string, ...args: string[]) => execa('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args], { cwd });

/** A checkout with a remote that has one commit more than the checkout. */
async function repoBehindItsRemote(): Promise<{ work: string; oldHead: string; newHead: string }> {
  const root = await tempDir('git');
  const origin = join(root, 'origin.git');
  const work = join(root, 'work');
  const other = join(root, 'other');
  await execa('git', ['init', '-q', '--bare', '-b', 'main', origin]);
  await execa('git', ['clone', '-q', origin, work]);
  await writeFile(join(work, 'README'), 'v1\n');
  await git(work, 'add', '.');
  await git(work, 'commit', '-qm', 'v1');
  await git(work, 'push', '-q', 'origin', 'HEAD:main');
  await execa('git', ['clone', '-q', origin, other]);
  await writeFile(join(other, 'README'), 'v2\n');
  await git(other, 'commit', '-qam', 'v2');
  await git(other, 'push', '-q', 'origin', 'HEAD:main');
  const oldHead = (await git(work, 'rev-parse', '--short', 'HEAD')).stdout.trim();
  const newHead = (await git(other, 'rev-parse', '--short', 'HEAD')).stdout.trim();
  return { work, oldHead, newHead };
}

describe('./bot.sh update (the pre-update routine)', () => {
  const started: StartedTestContainer[] = [];
  afterAll(async () => {
    await Promise.all(started.map((c) => c.stop().catch(() => undefined)));
  });

  it('backs up first (type pre-update, naming the old commit), then pulls, then restarts', async () => {
    const project = newProjectName('update');
    const redis = await startRedis({ project });
    started.push(redis);
    const { work, oldHead, newHead } = await repoBehindItsRemote();
    const dir = await tempDir('update');
    const Docker = (await import('dockerode')).default;
    const startedAt = (await new Docker().getContainer(redis.getId()).inspect()).State.StartedAt;

    const r = await bot(['update', '--repo', work, '--project', project, '--dir', dir]);
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    const id = (await readdir(dir)).find((n) => n.startsWith('stackvault_backup_'))!;
    const manifest = JSON.parse(await readFile(join(dir, id, 'manifest.json'), 'utf8')) as Manifest;
    expect(manifest.type).toBe('pre-update');
    expect(manifest.comment).toBe(`before update ${oldHead}`);
    expect((await git(work, 'rev-parse', '--short', 'HEAD')).stdout.trim()).toBe(newHead);
    // The backup was complete before the pull moved HEAD (reflog time, whole seconds).
    const pulledAt = Number(/HEAD@\{(\d+)\}/.exec((await git(work, 'reflog', '-1', '--date=unix', '--format=%gd')).stdout)![1]);
    expect(Math.floor(new Date(manifest.completedAt).getTime() / 1000)).toBeLessThanOrEqual(pulledAt);
    expect((await new Docker().getContainer(redis.getId()).inspect()).State.StartedAt).not.toBe(startedAt);
    expect(String(r.stdout)).toMatch(new RegExp(`Updated ${oldHead} -> ${newHead}`));
    // Restarted through the guarded stop: its downtime is shown, and no marker is left behind.
    expect(String(r.stdout)).toMatch(/: restarted \(down \d/);
    expect(await readdir(join(dir, '.stackvault-stopped')).catch(() => [])).toEqual([]);
  });

  it('Ctrl-C as the containers restart stops the update: exit 130, what was and was not restarted, and nothing more is stopped', async () => {
    const project = newProjectName('updint');
    const [redis, neo4j] = await startAll([startRedis({ project }), startNeo4j({ project })]);
    started.push(redis, neo4j);
    const { work, oldHead, newHead } = await repoBehindItsRemote();
    const dir = await tempDir('updint');
    const Docker = (await import('dockerode')).default;
    const state = async (c: StartedTestContainer) => (await new Docker().getContainer(c.getId()).inspect()).State;
    const names = new Map(await Promise.all([redis, neo4j].map(async (c) => [(await new Docker().getContainer(c.getId()).inspect()).Name.slice(1), c] as const)));
    const run = bot(['update', '--repo', work, '--project', project, '--dir', dir]);
    await new Promise<void>((resolve) =>
      run.stdout!.on('data', (d: Buffer) => {
        if (String(d).includes('3/3 Restarting')) resolve();
      }),
    );
    const sentAt = Date.now();
    run.kill('SIGINT');
    const r = await run;
    // Before, the interrupt was ignored here: every container was restarted and the run said "Updated", exit 0.
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(130);
    const said = new RegExp(`Update interrupted while restarting: pulled ${oldHead} -> ${newHead}; restarted (.+); not restarted: (.+)\\.\n`).exec(String(r.stderr));
    expect(said, String(r.stderr)).not.toBeNull();
    const notRestarted = said![2]!.split(', ');
    expect(notRestarted.length).toBeGreaterThan(0);
    expect(String(r.stderr)).toContain(`docker restart ${notRestarted.join(' ')}`);
    // Never stopped after the interrupt (the backup before may have stopped one for its copy).
    for (const n of notRestarted) expect(new Date((await state(names.get(n)!)).StartedAt).getTime()).toBeLessThan(sentAt);
    for (const c of names.values()) expect((await state(c)).Running).toBe(true);
    expect(String(r.stdout)).not.toMatch(/Updated /);
  });

  it('a failing backup stops the update: no pull, no restart', async () => {
    const project = newProjectName('updfail');
    // Labelled as PostgreSQL but has no pg_dumpall: its backup fails, and it is the only service.
    const fake = await new GenericContainer(IMAGES.app).withLabels({ 'com.docker.compose.project': project, 'com.docker.compose.service': 'db', 'stackvault.driver': 'postgres' }).start();
    started.push(fake);
    const { work, oldHead } = await repoBehindItsRemote();
    const dir = await tempDir('updfail');
    const r = await bot(['update', '--repo', work, '--project', project, '--dir', dir]);
    expect(r.exitCode).toBe(1);
    expect(String(r.stderr)).toMatch(/The pre-update backup failed, so nothing was updated/);
    expect((await git(work, 'rev-parse', '--short', 'HEAD')).stdout.trim()).toBe(oldHead);
    expect(String(r.stdout)).not.toMatch(/Pulling/);
  });
});
