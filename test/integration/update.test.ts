import { execa } from 'execa';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { GenericContainer } from 'testcontainers';
import { afterAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot, REPO_ROOT } from '../support/cli.js';
import { newProjectName, startAll, startNeo4j, startRedis } from '../support/containers.js';
import { IMAGES } from '../support/images.js';

const git = (cwd: string, ...args: string[]) => execa('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args], { cwd });

/**
 * A checkout with a remote that has one commit more than the checkout; `change` makes that
 * commit (in another clone), after `setup` made the first.
 */
async function repoBehindItsRemote(
  change: (other: string) => Promise<void> = async (other) => {
    await writeFile(join(other, 'README'), 'v2\n');
    await git(other, 'add', '-A');
  },
  setup: (work: string) => Promise<void> = async () => undefined,
): Promise<{ work: string; oldHead: string; newHead: string; root: string }> {
  const root = await tempDir('git');
  const origin = join(root, 'origin.git');
  const work = join(root, 'work');
  const other = join(root, 'other');
  await execa('git', ['init', '-q', '--bare', '-b', 'main', origin]);
  await execa('git', ['clone', '-q', origin, work]);
  await writeFile(join(work, 'README'), 'v1\n');
  await setup(work);
  await git(work, 'add', '.');
  await git(work, 'commit', '-qm', 'v1');
  await git(work, 'push', '-q', 'origin', 'HEAD:main');
  await execa('git', ['clone', '-q', origin, other]);
  await change(other);
  await git(other, 'commit', '-qm', 'v2');
  await git(other, 'push', '-q', 'origin', 'HEAD:main');
  const oldHead = (await git(work, 'rev-parse', '--short', 'HEAD')).stdout.trim();
  const newHead = (await git(other, 'rev-parse', '--short', 'HEAD')).stdout.trim();
  return { work, oldHead, newHead, root };
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

  /** What a refused update must leave as it was: the checkout (HEAD, status, every listed file's bytes) and the backup directory. */
  async function checkoutState(work: string): Promise<string> {
    const head = (await git(work, 'rev-parse', 'HEAD')).stdout;
    const status = (await git(work, 'status', '--porcelain=v1', '--ignored', '--branch')).stdout;
    const files = await Promise.all((await readdir(work)).filter((n) => n !== '.git').map(async (n) => `${n}:${await readFile(join(work, n), 'utf8').catch(() => 'dir')}`));
    return [head, status, ...files].join('\n');
  }
  const backupsIn = async (dir: string) => (await readdir(dir).catch(() => [] as string[])).filter((n) => n.startsWith('stackvault_backup_'));

  it('a pull that would overwrite local edits, or an ignored .env, is refused before the backup: nothing backed up, stopped or changed, one sentence naming the file, exit 1', async () => {
    const project = newProjectName('updref');
    const redis = await startRedis({ project });
    started.push(redis);
    const Docker = (await import('dockerode')).default;
    const startedAt = (await new Docker().getContainer(redis.getId()).inspect()).State.StartedAt;
    const dir = await tempDir('updref');

    // A server-local edit to a file the pull also changes.
    const edited = await repoBehindItsRemote(
      async (other) => {
        await writeFile(join(other, 'docker-compose.yml'), 'services: {app: {image: app:2}}\n');
        await git(other, 'add', '-A');
      },
      async (work) => writeFile(join(work, 'docker-compose.yml'), 'services: {app: {image: app:1}}\n'),
    );
    await writeFile(join(edited.work, 'docker-compose.yml'), 'services: {app: {image: app:1, ports: ["8080:80"]}}\n');
    const before = await checkoutState(edited.work);
    const r = await bot(['update', '--repo', edited.work, '--project', project, '--dir', dir]);
    // Before, the backup ran (stopping what it stops), then git refused, naming no file.
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(1);
    expect(String(r.stderr)).toMatch(/^stackvault: The pull would overwrite local changes to docker-compose\.yml in .*, so nothing was backed up, pulled or restarted\.\n/);
    expect(await checkoutState(edited.work)).toBe(before);

    // A .env the checkout ignores, which upstream now tracks: git pull replaced it without a word (its secrets gone), exit 0.
    const ignored = await repoBehindItsRemote(
      async (other) => {
        await writeFile(join(other, '.env'), 'TOKEN=from-upstream\n');
        await git(other, 'add', '-f', '.env');
      },
      async (work) => writeFile(join(work, '.gitignore'), '.env\n'),
    );
    await writeFile(join(ignored.work, '.env'), 'TOKEN=the-server-secret\n');
    const before2 = await checkoutState(ignored.work);
    const r2 = await bot(['update', '--repo', ignored.work, '--project', project, '--dir', dir]);
    expect(r2.exitCode, String(r2.stdout) + String(r2.stderr)).toBe(1);
    expect(String(r2.stderr)).toMatch(/The pull would replace \.env in .*, which git does not track \(so it would be lost\), so nothing was backed up, pulled or restarted\./);
    expect(await readFile(join(ignored.work, '.env'), 'utf8')).toBe('TOKEN=the-server-secret\n');
    expect(await checkoutState(ignored.work)).toBe(before2);

    expect(await backupsIn(dir)).toEqual([]);
    expect((await new Docker().getContainer(redis.getId()).inspect()).State.StartedAt).toBe(startedAt);
  });

  it('a diverged branch, no upstream, a detached HEAD: each refused in one sentence before the backup, exit 1, the checkout as it was', async () => {
    const project = newProjectName('updstate');
    started.push(await startRedis({ project }));
    const dir = await tempDir('updstate');
    const cases: Array<[string, (work: string) => Promise<unknown>, RegExp]> = [
      [
        'diverged',
        async (work) => {
          await writeFile(join(work, 'local.txt'), 'mine\n');
          await git(work, 'add', 'local.txt');
          await git(work, 'commit', '-qm', 'local');
        },
        /^stackvault: Branch main of .* and origin\/main have diverged \(1 local commit, 1 new upstream\) and cannot be fast-forwarded, so nothing was backed up, pulled or restarted\.\n/,
      ],
      ['no upstream', (work) => git(work, 'branch', '--unset-upstream'), /^stackvault: Branch main of .* has no upstream to pull from, so nothing was backed up, pulled or restarted\.\n/],
      [
        'detached',
        (work) => git(work, 'checkout', '-q', '--detach'),
        /^stackvault: .* is on a detached HEAD \(at [0-9a-f]{7}\), not on a branch, so there is nothing to pull: nothing was backed up or restarted\.\n/,
      ],
    ];
    for (const [name, make, said] of cases) {
      const { work } = await repoBehindItsRemote();
      await git(work, 'branch', '-q', '--set-upstream-to=origin/main');
      await make(work);
      const before = await checkoutState(work);
      const r = await bot(['update', '--repo', work, '--project', project, '--dir', dir]);
      expect(r.exitCode, `${name}: ${String(r.stdout)}${String(r.stderr)}`).toBe(1);
      expect(String(r.stderr), name).toMatch(said);
      expect(await checkoutState(work), name).toBe(before);
    }
    // Before, each was found out only by git pull, after a whole backup.
    expect(await backupsIn(dir)).toEqual([]);
  });

  it('nothing new upstream: nothing is backed up or restarted, exit 0', async () => {
    const project = newProjectName('updnone');
    const redis = await startRedis({ project });
    started.push(redis);
    const { work, newHead } = await repoBehindItsRemote();
    await git(work, 'pull', '-q', '--ff-only', 'origin', 'main');
    const Docker = (await import('dockerode')).default;
    const startedAt = (await new Docker().getContainer(redis.getId()).inspect()).State.StartedAt;
    const dir = await tempDir('updnone');
    const r = await bot(['update', '--repo', work, '--project', project, '--dir', dir]);
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    expect(String(r.stdout)).toContain(`Already up to date: main at ${newHead} has everything origin/main has; nothing was backed up, pulled or restarted.`);
    // Before: a backup, every container stopped and started, and "Updated x -> x".
    expect(await backupsIn(dir)).toEqual([]);
    expect((await new Docker().getContainer(redis.getId()).inspect()).State.StartedAt).toBe(startedAt);
  });

  it('a remote that asks for a password, on a terminal: git never prompts, the update stops before the backup, exit 1', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' });
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const project = newProjectName('updauth');
      started.push(await startRedis({ project }));
      const { work } = await repoBehindItsRemote();
      await git(work, 'remote', 'set-url', 'origin', `http://127.0.0.1:${(server.address() as AddressInfo).port}/stack.git`);
      const dir = await tempDir('updauth');
      // On a terminal (script gives it one) whose input stays open: a prompt there waits for ever.
      const run = execa('script', ['-qec', `./bot.sh update --repo ${work} --project ${project} --dir ${dir}`, '/dev/null'], { cwd: REPO_ROOT, reject: false, stdin: 'pipe', all: true });
      let prompted = false;
      run.all!.on('data', (d: Buffer) => {
        if (/(?<!read )(Username|Password) for '/.test(String(d))) {
          prompted = true; // before: git asked, under the run's backup, and waited
          run.kill('SIGKILL');
        }
      });
      const r = await run;
      expect(prompted, String(r.all)).toBe(false);
      expect(String(r.all)).toMatch(
        /git fetch of origin\/main failed \(fatal: could not read Username for 'http:\/\/127\.0\.0\.1:\d+': terminal prompts disabled\), so nothing was backed up, pulled or restarted\./,
      );
      expect(r.exitCode).toBe(1);
      expect(await backupsIn(dir)).toEqual([]);
    } finally {
      server.close();
    }
  });

  it('a pull that changes docker-compose.yml: the restart does not apply it, and the output says so with the command that does', async () => {
    const project = newProjectName('updcfg');
    const { work, oldHead, newHead } = await repoBehindItsRemote(
      async (other) => {
        await writeFile(join(other, 'docker-compose.yml'), 'services:\n  cache:\n    image: redis:8\n');
        await git(other, 'add', '-A');
      },
      (w) => writeFile(join(w, 'docker-compose.yml'), 'services:\n  cache:\n    image: redis:7\n'),
    );
    // Made by Compose from that file: the labels it writes say from where.
    const redis = await startRedis({ project, service: 'cache', labels: { 'com.docker.compose.project.working_dir': work, 'com.docker.compose.project.config_files': 'docker-compose.yml' } });
    started.push(redis);
    const dir = await tempDir('updcfg');
    const r = await bot(['update', '--repo', work, '--project', project, '--dir', dir]);
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    // Before: "Updated <old> -> <new>; 1 container restarted", with the container still on redis:7.
    expect(String(r.stdout)).not.toMatch(/Updated /);
    expect(String(r.stdout)).toContain(
      `warning: The pull changed docker-compose.yml, which a restart does not apply: the containers still run the definition they were created with; apply it with cd ${work} && docker`,
    );
    expect(String(r.stdout)).toMatch(new RegExp(`-p ${project} -f docker-compose.yml up -d\\.\n`));
    expect(String(r.stdout)).toContain(`Pulled ${oldHead} -> ${newHead}; 1 container restarted, still as defined before the pull`);
  });

  it('a container that does not start again after the pull (a bind-mounted file it moved): exit 1, what is stopped, pulled and not restarted', async () => {
    const project = newProjectName('updstart');
    const redis = await startRedis({ project });
    started.push(redis);
    const { work, oldHead, newHead } = await repoBehindItsRemote(
      async (other) => {
        await mkdir(join(other, 'init'));
        await git(other, 'mv', 'init.sql', 'init/01.sql');
      },
      (w) => writeFile(join(w, 'init.sql'), 'select 1;\n'),
    );
    const app = await new GenericContainer(IMAGES.appstub)
      .withLabels({ 'com.docker.compose.project': project, 'com.docker.compose.service': 'bot' })
      .withBindMounts([{ source: join(work, 'init.sql'), target: '/init.sql', mode: 'ro' }])
      .start();
    started.push(app);
    const Docker = (await import('dockerode')).default;
    const name = (await new Docker().getContainer(app.getId()).inspect()).Name.slice(1);
    const dir = await tempDir('updstart');
    const r = await bot(['update', '--repo', work, '--project', project, '--dir', dir]);
    // Before: "unexpected error: (HTTP code 400) ..." and nothing about the pull or the rest.
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(1);
    expect(String(r.stderr)).toMatch(
      new RegExp(`^stackvault: Update stopped: ${name} did not start again after the pull \\(.*init\\.sql.*\\), so it is stopped; pulled ${oldHead} -> ${newHead}; restarted `),
    );
    expect(String(r.stderr)).toContain(`docker start ${name}`);
    expect(String(r.stderr)).not.toMatch(/unexpected error/);
    expect((await new Docker().getContainer(redis.getId()).inspect()).State.Running).toBe(true);
  });
});
