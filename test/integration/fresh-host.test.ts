import { mkdir, readdir, readFile, readlink, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GenericContainer, type StartedTestContainer, Wait } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { execa } from 'execa';
import { readJson, tempDir } from '../support/artifacts.js';
import { bot, REPO_ROOT } from '../support/cli.js';
import { newProjectName, run } from '../support/containers.js';
import { IMAGES } from '../support/images.js';
import { mountTmpfs } from '../support/mounts.js';
import { type ResticServer, startResticServer } from '../support/restic-server.js';
import { seedStack, stackContent } from '../support/stack-content.js';

/** Two databases, one in a directory the app makes only when it first writes. */
const PATHS = ['/srv/db/app.db', '/srv/db/state/jobs'];
const LABELS = { 'stackvault.sqlite.paths': PATHS.join(',') };

/** The files a restore writes at a database's path. */
const written = (path: string) => ['', '-wal', '-shm', '-journal'].map((s) => path + s);

/** An app stand-in on `dir` (a bind at /srv/db), as compose starts it; `entrypoint` replaces the stand-in's own. */
function startApp(project: string, dir: string, entrypoint?: string): Promise<StartedTestContainer> {
  let c = new GenericContainer(IMAGES.appstub)
    .withLabels({ 'com.docker.compose.project': project, 'com.docker.compose.service': 'app', ...LABELS })
    .withBindMounts([{ source: dir, target: '/srv/db', mode: 'rw' }]);
  if (entrypoint) c = c.withEntrypoint(['sh', '-c', entrypoint]).withHealthCheck({ test: ['CMD', 'true'], interval: 1000, timeout: 1000, retries: 30, startPeriod: 0 });
  return c.withWaitStrategy(Wait.forHealthCheck()).start();
}

/** `./bot.sh ARGS` as another user (in the docker group), as on a host where backups were copied in by root. */
async function asUser(uid: number, args: string[]) {
  const docker = (await execa('stat', ['-c', '%g', '/var/run/docker.sock'])).stdout.trim();
  return execa('setpriv', ['--reuid', String(uid), '--regid', String(uid), '--groups', docker, './bot.sh', ...args], {
    cwd: REPO_ROOT,
    env: { HOME: '/nonexistent' },
    reject: false,
    timeout: 120_000,
  });
}

/** `asUser` with the repository's environment, its password and cache where that user can read them. */
async function asUserWithRepository(uid: number, server: ResticServer, args: string[]) {
  const own = await tempDir('fresh-restic-user');
  await writeFile(join(own, 'password'), await readFile(server.env.RESTIC_PASSWORD_FILE!), { mode: 0o600 });
  await execa('chown', ['-R', `${uid}:${uid}`, own]);
  await execa('chmod', ['755', own]);
  const docker = (await execa('stat', ['-c', '%g', '/var/run/docker.sock'])).stdout.trim();
  return execa('setpriv', ['--reuid', String(uid), '--regid', String(uid), '--groups', docker, './bot.sh', ...args], {
    cwd: REPO_ROOT,
    env: { HOME: '/nonexistent', RESTIC_REPOSITORY: server.env.RESTIC_REPOSITORY!, RESTIC_PASSWORD_FILE: join(own, 'password'), RESTIC_CACHE_DIR: join(own, 'cache') },
    reject: false,
    timeout: 240_000,
  });
}

/** What is in the app's bind on the host (read there, not through the container or stackvault). */
async function onHost(dir: string): Promise<string[]> {
  const names: string[] = [];
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) names.push(join(e.parentPath, e.name).slice(dir.length));
  return names.sort();
}

/**
 * Disaster recovery of a SQLite app: the server is gone, only the offsite copy is left; on a new
 * host the stack runs under another project name, and the app, on an empty volume, has not
 * created its databases yet (many apps create them on their first request). `restore latest`
 * fetches the repository's newest backup; the restore point records the databases as absent,
 * and putting it back removes exactly the files the restore wrote there.
 */
describe('a SQLite app restored on a new host from the offsite copy alone, before it created its databases', () => {
  const source = newProjectName('fresh-src');
  const target = newProjectName('fresh-dst');
  let server: ResticServer;
  let old: StartedTestContainer;
  let fresh: StartedTestContainer;
  let freshDir: string;
  let dir: string;
  let backupId: string;
  let seeded: Record<string, string>;

  beforeAll(async () => {
    [server, old] = await Promise.all([startResticServer(), startApp(source, await tempDir('fresh-src'))]);
    await seedStack(source);
    await run(old, ['chown', '-R', '1000:1000', '/srv/db']);
    seeded = await stackContent(source);
    expect(Object.keys(seeded)).toEqual(expect.arrayContaining(PATHS.map((p) => `app ${p} sv_seed`)));
    const created = await bot(['backup', 'create', '--json', '--offsite', '--project', source, '--dir', await tempDir('fresh-lost')], { env: server.env });
    expect(created.exitCode, String(created.stderr)).toBe(0);
    backupId = (JSON.parse(String(created.stdout)) as Manifest).id;
    await old.stop(); // the old server is gone, and its backup directory with it
    freshDir = await tempDir('fresh-dst');
    fresh = await startApp(target, freshDir);
    dir = join(await tempDir('fresh-host'), 'backups'); // not there yet on the new host
  });

  afterAll(async () => {
    await fresh?.stop();
    await server?.stop();
  });

  it('a backup of it still refuses the missing files: a missing path may be a typo in the label', async () => {
    const r = await bot(['backup', 'create', '--json', '--project', target, '--dir', await tempDir('fresh-none')]);
    expect(r.exitCode, String(r.stderr)).toBe(1);
    expect(String(r.stderr)).toContain('/srv/db/app.db does not exist in the container');
    expect(await onHost(freshDir)).toEqual([]);
  });

  it('is restored whole from the repository, with the directory it lacked, owned as its database is', async () => {
    // What the repository holds, before there is any backup directory here.
    const remote = await bot(['backup', 'list', '--remote', '--dir', dir], { env: server.env });
    expect(remote.exitCode, String(remote.stderr)).toBe(0);
    expect(String(remote.stdout)).toMatch(new RegExp(`^ {2}${backupId} .* only offsite$`, 'm'));
    const r = await bot(['backup', 'restore', 'latest', '--into-project', target, '--yes', '--json', '--dir', dir], { env: server.env });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stderr) + String(r.stdout)).toContain(`There is no backup in ${dir}: fetching the newest one from the restic repository`);
    const result = JSON.parse(String(r.stdout)) as { backupId: string; restorePointId: string; services: Array<{ service: string; status: string; check: string }> };
    expect(result.backupId).toBe(backupId);
    expect(result.services.map((s) => `${s.service} ${s.status} ${s.check}`)).toEqual(['app restored equal']);
    expect(await stackContent(target)).toEqual(seeded);
    const state = await stat(join(freshDir, 'state'));
    expect([state.uid, state.gid, state.mode & 0o777]).toEqual([1000, 1000, 0o755]);
    // The restore point says the files were not there, and holds nothing of them.
    const point = await readJson<Manifest>(join(dir, result.restorePointId, 'manifest.json'));
    expect(point.services.map((s) => [s.status, s.details?.files])).toEqual([['ok', PATHS.map((path) => ({ path, absent: true }))]]);
    for (const args of [[], ['--deep']]) {
      const v = await bot(['backup', 'verify', result.restorePointId, ...args, '--dir', dir]);
      expect(v.exitCode, `${args.join(' ')} ${String(v.stdout)}${String(v.stderr)}`).toBe(0);
    }
    // The newest entry now is that restore point (the empty app): list names the backup to restore, as "latest" does.
    const list = await bot(['backup', 'list', '--dir', dir]);
    expect(String(list.stdout)).toMatch(new RegExp(`^${result.restorePointId} `, 'm'));
    expect(String(list.stdout)).toContain(`Restore the newest with: ./bot.sh backup restore ${backupId}\n`);

    // Putting the restore point back (by its ID, as the output says) removes exactly what the
    // restore wrote: the databases and their -wal, -shm and -journal; the directory it made stays.
    const undo = await bot(['backup', 'restore', result.restorePointId, '--yes', '--json', '--dir', dir]);
    expect(undo.exitCode, String(undo.stderr)).toBe(0);
    const undone = JSON.parse(String(undo.stdout)) as { services: Array<{ service: string; status: string; check: string }> };
    expect(undone.services.map((s) => `${s.status} ${s.check}`)).toEqual(['restored equal']);
    expect(await onHost(freshDir)).toEqual(['/state']);
  });

  it('copied in by another user: every command says whose it is, exit 7, and nothing changes', async () => {
    // As root copies it: the backups stay 0700/0600 root's; another user (uid 4242, in the
    // docker group) runs stackvault. First with the directory itself unreadable, then readable.
    const parent = await tempDir('fresh-copy');
    await execa('chmod', ['755', parent]); // where another user can reach it
    const copy = join(parent, 'backups');
    await execa('cp', ['-a', dir, copy]);
    const before = await onHost(freshDir);
    for (const top of ['0700', '0755']) {
      await execa('chmod', [top, copy]);
      for (const args of [['list'], ['verify', 'latest'], ['restore', 'latest', '--into-project', target, '--yes'], ['restore', backupId, '--into-project', target, '--yes']]) {
        const r = await asUser(4242, ['backup', ...args, '--dir', copy]);
        const said = `${top} ${args.join(' ')}: ${String(r.stdout)}${String(r.stderr)}`;
        expect(String(r.stderr), said).not.toMatch(/unexpected error/);
        if (top === '0700') {
          expect(r.exitCode, said).toBe(7);
          expect(String(r.stderr), said).toContain(`stackvault: The backup directory ${copy} cannot be read by this user (uid 4242; it belongs to uid 0, mode 0700).`);
        } else if (args[0] === 'list') {
          expect(r.exitCode, said).toBe(0);
          expect(String(r.stderr), said).toContain(`warning: ${backupId} is not readable by this user (uid 4242; it belongs to uid 0, mode 0700).`);
          expect(String(r.stdout), said).toContain(`No backups in ${copy} that this user can read.`);
        } else {
          expect(r.exitCode, said).toBe(7);
          expect(String(r.stderr), said).toMatch(new RegExp(`^stackvault: .*${backupId}( in \\S+)? is not readable by this user \\(uid 4242; it belongs to uid 0, mode 0700\\)\\.$`, 'm'));
        }
        expect(String(r.stderr), said).toContain(`chown -R 4242:4242 ${copy}`);
      }
    }
    expect(await onHost(freshDir)).toEqual(before);
  });

  it('a lock the old host left in the copied directory: named with its host, and taken over once stale', async () => {
    const copy = join(await tempDir('fresh-lock'), 'backups');
    await execa('cp', ['-a', dir, copy]);
    const lock = join(copy, '.stackvault.lock');
    await mkdir(lock);
    await writeFile(join(lock, 'owner.json'), JSON.stringify({ pid: 4321, host: 'old-server', command: 'backup create --type daily', since: '2026-12-06T02:00:00.000Z' }));
    const r = await bot(['backup', 'restore', backupId, '--into-project', target, '--yes', '--dir', copy]);
    expect(r.exitCode, String(r.stderr)).toBe(8);
    expect(String(r.stderr)).toContain('(backup create --type daily, pid 4321 on host old-server, since 2026-12-06T02:00:00.000Z) holds the lock');
    expect(String(r.stderr)).toContain('If that host is gone (a backup directory copied from it), its lock is taken over 60 s after it was last refreshed');
    // As copied with its times (cp -a, rsync -a): last refreshed long ago, so stale at once.
    const past = new Date(Date.now() - 120_000);
    await utimes(lock, past, past);
    const again = await bot(['backup', 'cleanup', '3650', '--dir', copy]);
    expect(again.exitCode, String(again.stderr)).toBe(0);
  });

  it('mounted read-only: list and verify work, restore says where it must write and why, exit 7, nothing changes', async () => {
    const ro = await tempDir('fresh-ro');
    await mountTmpfs(ro, 'size=4m');
    try {
      await execa('cp', ['-a', `${dir}/.`, ro]);
      await execa('mount', ['-o', 'remount,ro', ro]);
      const list = await bot(['backup', 'list', '--dir', ro]);
      expect(list.exitCode, String(list.stderr)).toBe(0);
      const verify = await bot(['backup', 'verify', backupId, '--dir', ro]);
      expect(verify.exitCode, String(verify.stderr)).toBe(0);
      const r = await bot(['backup', 'restore', backupId, '--into-project', target, '--yes', '--dir', ro]);
      expect(r.exitCode, String(r.stderr)).toBe(7);
      expect(String(r.stderr)).toContain(
        `stackvault: The backup directory ${ro} is on a read-only file system: a restore first writes its restore point there (the current data, put back if the restore fails), under a lock.\n  hint: Restore from a writable copy: cp -a ${ro} NEWDIR, then the same command with --dir NEWDIR`,
      );
      expect(await onHost(freshDir)).toEqual(['/state']);
    } finally {
      await execa('umount', [ro], { reject: false });
    }
  });

  it('a backup disk of its own (with a lost+found only root may read), run as its owner: restore latest fetches, lost+found is not a backup', async () => {
    // A file system made for the backups and mounted at the backup directory: mkfs leaves a
    // lost+found that only root may read. It is not a backup this user cannot read.
    const parent = await tempDir('fresh-disk');
    await execa('chmod', ['755', parent]);
    const disk = join(parent, 'backups');
    await mkdir(join(disk, 'lost+found'), { recursive: true, mode: 0o700 });
    await execa('chmod', ['700', join(disk, 'lost+found')]);
    await execa('chown', ['4242:4242', disk]);
    const list = await asUserWithRepository(4242, server, ['backup', 'list', '--dir', disk]);
    expect(list.exitCode, String(list.stderr)).toBe(0);
    expect(String(list.stdout)).toContain(`No backups in ${disk}. Create one with`);
    expect(String(list.stderr)).not.toContain('lost+found');
    const r = await asUserWithRepository(4242, server, ['backup', 'restore', 'latest', '--into-project', target, '--yes', '--json', '--dir', disk]);
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    expect(String(r.stderr) + String(r.stdout)).toMatch(new RegExp(`There is no backup in ${disk}: fetching the newest one from the restic repository \\S+, ${backupId} \\.\\.\\.\\n`));
    expect((JSON.parse(String(r.stdout)) as { backupId: string }).backupId).toBe(backupId);
    expect(await stackContent(target)).toEqual(seeded);
  });

  it('list, as another user, names no older backup to restore past a newer one it cannot read (restore latest refuses it)', async () => {
    const parent = await tempDir('review3-newer');
    await execa('chmod', ['755', parent]);
    const copy = join(parent, 'backups');
    await execa('cp', ['-a', dir, copy]);
    await execa('chown', ['-R', '4242:4242', copy]);
    const newer = join(copy, `${backupId}_2`); // same second, made after it; root's, as copied by root
    await execa('cp', ['-a', join(copy, backupId), newer]);
    await writeFile(join(newer, 'manifest.json'), (await readFile(join(newer, 'manifest.json'), 'utf8')).replaceAll(backupId, `${backupId}_2`));
    await execa('chown', ['-R', '0:0', newer]);
    await execa('chmod', ['700', newer]);
    const latest = await asUser(4242, ['backup', 'restore', 'latest', '--into-project', target, '--yes', '--dir', copy]);
    expect(latest.exitCode, String(latest.stderr)).toBe(7);
    const list = await asUser(4242, ['backup', 'list', '--dir', copy]);
    expect(list.exitCode, String(list.stderr)).toBe(0);
    expect(String(list.stderr)).toContain(`warning: ${backupId}_2 is not readable by this user`);
    expect(String(list.stdout)).toMatch(new RegExp(`^${backupId} `, 'm'));
    expect(String(list.stdout)).not.toContain('Restore the newest with');
  });

  it('a database directory that is a link to a directory not there (a disk not mounted yet): refused, the link kept', async () => {
    const project = newProjectName('review3-link');
    const bind = await tempDir('review3-link');
    await symlink('/mnt/not-mounted-yet/state', join(bind, 'state'));
    const app = await startApp(project, bind);
    try {
      const r = await bot(['backup', 'restore', backupId, '--into-project', project, '--yes', '--json', '--dir', dir]);
      expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(1);
      const result = JSON.parse(String(r.stdout)) as { services: Array<{ service: string; status: string; error: string }> };
      expect(result.services.map((s) => `${s.service} ${s.status}`)).toEqual(['app rolled-back']);
      expect(result.services[0]!.error).toContain('/srv/db/state is a symbolic link to a directory that does not exist; refusing to replace it');
      expect(await readlink(join(bind, 'state'))).toBe('/mnt/not-mounted-yet/state');
      expect(await onHost(bind)).toEqual(['/state']);
    } finally {
      await app.stop();
    }
  });

  it('a partial copy of the newest backup here (no manifest yet): restore latest says so in one sentence, and fetches nothing', async () => {
    const partial = join(await tempDir('fresh-partial'), 'backups');
    await mkdir(join(partial, backupId), { recursive: true });
    await writeFile(join(partial, backupId, 'app.tar.zst'), 'the first bytes of a copy that stopped');
    const r = await bot(['backup', 'restore', 'latest', '--into-project', target, '--yes', '--dir', partial], { env: server.env });
    expect(String(r.stderr)).not.toMatch(/unexpected error|ENOTEMPTY/);
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(5);
    expect(String(r.stderr)).toMatch(new RegExp(`^stackvault: ${backupId} is not a usable backup: no manifest\\.json[^\\n]*\\.$`, 'm'));
    expect((await readdir(partial)).filter((n) => n !== 'operations.log')).toEqual([backupId]);
    expect(await readdir(join(partial, backupId))).toEqual(['app.tar.zst']);
  });
});

/**
 * The same, where the restore fails once its files are written (the app exits when it finds a
 * database at start): the restore point is put back, and the app's volume is empty again.
 */
describe('a failed restore into an app that had not created its databases', () => {
  const source = newProjectName('fresh-rsrc');
  const target = newProjectName('fresh-rdst');
  let old: StartedTestContainer;
  let fresh: StartedTestContainer;
  let freshDir: string;
  let dir: string;

  beforeAll(async () => {
    old = await startApp(source, await tempDir('fresh-rsrc'));
    await seedStack(source);
    dir = await tempDir('fresh-rbackups');
    const created = await bot(['backup', 'create', '--project', source, '--dir', dir]);
    expect(created.exitCode, String(created.stderr)).toBe(0);
    freshDir = await tempDir('fresh-rdst');
    // Runs while it has no database; exits at once when it starts with one.
    fresh = await startApp(target, freshDir, 'while [ ! -e /srv/db/app.db ]; do sleep 0.2; done; exit 3');
  });

  afterAll(async () => {
    await Promise.all([old, fresh].filter(Boolean).map((c) => c.stop()));
  });

  it('is put back from its restore point: the files it wrote are removed, the app runs again', async () => {
    const r = await bot(['backup', 'restore', 'latest', '--into-project', target, '--yes', '--json', '--dir', dir]);
    expect(r.exitCode, String(r.stderr)).toBe(1);
    const result = JSON.parse(String(r.stdout)) as { services: Array<{ service: string; status: string; error: string }> };
    expect(result.services.map((s) => `${s.service} ${s.status}`)).toEqual(['app rolled-back']);
    expect(result.services[0]!.error).toMatch(/exited/);
    const left = await onHost(freshDir);
    for (const path of PATHS.flatMap(written)) expect(left).not.toContain(path.replace('/srv/db', ''));
    expect(left).toEqual(['/state']);
    expect((await fresh.exec(['true'])).exitCode).toBe(0); // running again
  });
});
