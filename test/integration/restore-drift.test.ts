import Docker from 'dockerode';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { chown, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName } from '../support/containers.js';
import { IMAGES } from '../support/images.js';
import { mountTmpfs } from '../support/mounts.js';

/**
 * A stack changes between `backup create` and `backup restore`: containers are recreated,
 * stopped or paused, their healthcheck fails, the project is renamed, Redis is downgraded, its
 * `dir` or `databases` changes, its disk fills up. A restore either puts the data back exactly
 * or refuses with one sentence, changing nothing, and every container runs as before.
 */
const docker = new Docker();
const created: string[] = [];
const mounted: string[] = [];

interface RedisOptions {
  image?: string;
  args?: string[];
  binds?: string[];
  healthcheck?: string;
}

/** A Redis container as Compose would label it (service `cache`), answering PING. */
async function redis(project: string, o: RedisOptions = {}): Promise<string> {
  const name = `${project}-cache-1`;
  const c = await docker.createContainer({
    name,
    Image: o.image ?? IMAGES.redis,
    Cmd: ['redis-server', ...(o.args ?? [])],
    Labels: { 'com.docker.compose.project': project, 'com.docker.compose.service': 'cache', 'com.docker.compose.container-number': '1' },
    HostConfig: { Binds: o.binds ?? [] },
    ...(o.healthcheck ? { Healthcheck: { Test: ['CMD-SHELL', o.healthcheck], Interval: 500_000_000, Timeout: 1_000_000_000, Retries: 1 } } : {}),
  });
  created.push(c.id);
  await c.start();
  await until(async () => (await cli(name, 'PING')) === 'PONG');
  return name;
}

async function cli(container: string, ...args: string[]): Promise<string> {
  const r = await execa('docker', ['exec', container, 'redis-cli', ...args], { reject: false });
  return r.stdout.trim();
}

async function until(check: () => Promise<boolean>, what = 'the condition'): Promise<void> {
  for (let i = 0; i < 120; i++) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const state = async (name: string) => (await docker.getContainer(name).inspect()).State;
const restorePoints = async (dir: string) => (await readdir(dir)).filter((n) => n.startsWith('restore-point'));
const out = (r: { stdout: unknown; stderr: unknown }) => `${String(r.stdout)}${String(r.stderr)}`;

async function removeContainer(name: string): Promise<void> {
  await docker
    .getContainer(name)
    .remove({ force: true, v: true })
    .catch(() => undefined);
}

afterAll(async () => {
  await Promise.all(created.splice(0).map(removeContainer));
  for (const dir of mounted.splice(0)) await execa('umount', [dir], { reject: false });
});

describe('restoring Redis into a stack that changed since the backup', () => {
  const source = newProjectName('drift-src');
  let dir: string;
  /** db0 only; db0 and db20; db0 with a 3 MB value. */
  let small: Manifest;
  let db20: Manifest;
  let big: Manifest;

  const backup = async () => {
    const r = await bot(['backup', 'create', '--json', '--project', source, '--dir', dir]);
    expect(r.exitCode, out(r)).toBe(0);
    return JSON.parse(String(r.stdout)) as Manifest;
  };

  beforeAll(async () => {
    dir = await tempDir('drift');
    const name = await redis(source, { args: ['--databases', '32', '--appendonly', 'yes'] });
    await cli(name, 'SET', 'kept', 'from-the-backup');
    await cli(name, 'RPUSH', 'list', 'a', 'b', 'c');
    small = await backup();
    await cli(name, '-n', '20', 'SET', 'far', 'away');
    db20 = await backup();
    await cli(name, '-n', '20', 'DEL', 'far');
    await execa('docker', ['exec', '-i', name, 'redis-cli', '-x', 'SET', 'big'], { input: randomBytes(3_000_000) });
    big = await backup();
    await removeContainer(name); // the backed-up stack is gone: every restore names its target
  });

  it('a stopped or paused target is refused in one sentence (exit 1) with the command that brings it back, before any restore point', async () => {
    const project = newProjectName('drift-stopped');
    const target = await redis(project);
    await cli(target, 'SET', 'mine', '1');
    await docker.getContainer(target).stop();
    const stopped = await bot(['backup', 'restore', small.id, '--map', `cache=${target}`, '--yes', '--dir', dir]);
    expect(stopped.exitCode, out(stopped)).toBe(1);
    expect(String(stopped.stderr)).toContain(`Nothing was restored: the container ${target} of cache is exited, and a restore needs it running`);
    expect(String(stopped.stderr)).toContain(`docker start ${target}`);
    expect(String(stopped.stderr)).not.toMatch(/HTTP code|409/);

    await docker.getContainer(target).start();
    await until(async () => (await cli(target, 'PING')) === 'PONG');
    await docker.getContainer(target).pause();
    const paused = await bot(['backup', 'restore', small.id, '--map', `cache=${target}`, '--yes', '--dir', dir]);
    expect(paused.exitCode, out(paused)).toBe(1);
    expect(String(paused.stderr)).toContain(`the container ${target} of cache is paused`);
    expect(String(paused.stderr)).toContain(`docker unpause ${target}`);
    expect((await state(target)).Paused).toBe(true); // left as it was
    await docker.getContainer(target).unpause();
    expect(await cli(target, 'GET', 'mine')).toBe('1');
    expect(await restorePoints(dir)).toEqual([]);
    await removeContainer(target);
  });

  it('a target whose healthcheck already failed is restored and proven, judged ready by PING, not left waiting for that healthcheck', async () => {
    const project = newProjectName('drift-unhealthy');
    const target = await redis(project, { args: ['--appendonly', 'yes'], healthcheck: 'test -f /tmp/upstream-is-up' });
    await until(async () => (await state(target)).Health?.Status === 'unhealthy', 'the healthcheck to fail');
    const started = Date.now();
    const r = await bot(['backup', 'restore', small.id, '--map', `cache=${target}`, '--yes', '--json', '--dir', dir]);
    expect(r.exitCode, out(r)).toBe(0);
    expect(JSON.parse(String(r.stdout)).services).toEqual([expect.objectContaining({ status: 'restored', check: 'equal' })]);
    expect(String(r.stderr)).toContain('says unhealthy before the restore');
    // It waited 3 x 180 s for that healthcheck, then as long again for the rollback, and called it failed.
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(await cli(target, 'GET', 'kept')).toBe('from-the-backup');
    expect((await state(target)).Running).toBe(true);
    await removeContainer(target);
  });

  it("a dir not owned by Redis's user (/tmp) gets files Redis can open: restored, not left exited", async () => {
    const project = newProjectName('drift-tmpdir');
    const target = await redis(project, { args: ['--appendonly', 'yes', '--dir', '/tmp'] });
    const r = await bot(['backup', 'restore', small.id, '--map', `cache=${target}`, '--yes', '--json', '--dir', dir]);
    expect(r.exitCode, out(r)).toBe(0);
    expect(JSON.parse(String(r.stdout)).services).toEqual([expect.objectContaining({ status: 'restored', check: 'equal' })]);
    // Redis opens its AOF for writing at every start: it must still start.
    await docker.getContainer(target).restart();
    await until(async () => (await cli(target, 'PING')) === 'PONG', 'Redis to start again');
    expect(await cli(target, 'LRANGE', 'list', '0', '-1')).toBe('a\nb\nc');
    await removeContainer(target);
  });

  it('a full disk midway leaves Redis running on its restore point, proven, instead of exited on a cut-off RDB', async () => {
    const project = newProjectName('drift-full');
    const data = join(await tempDir('drift-full'), 'data');
    await mkdir(data);
    await mountTmpfs(data, 'size=2m');
    mounted.push(data);
    await chown(data, 999, 999);
    const target = await redis(project, { binds: [`${data}:/data`] });
    await cli(target, 'SET', 'mine', 'before-the-restore');
    const r = await bot(['backup', 'restore', big.id, '--map', `cache=${target}`, '--yes', '--json', '--dir', dir]);
    expect(r.exitCode, out(r)).toBe(1);
    const [service] = JSON.parse(String(r.stdout)).services;
    expect(service, out(r)).toEqual(expect.objectContaining({ status: 'rolled-back' }));
    expect(service.error).toMatch(/no space left on device/);
    expect((await state(target)).Running).toBe(true);
    expect(await cli(target, 'GET', 'mine')).toBe('before-the-restore');
    await removeContainer(target);
  });

  it('an RDB using more databases than the server now has is refused before Redis is stopped, naming the setting', async () => {
    const project = newProjectName('drift-dbs');
    const target = await redis(project, { args: ['--appendonly', 'yes'] });
    await cli(target, 'SET', 'mine', '1');
    const points = (await restorePoints(dir)).length;
    const r = await bot(['backup', 'restore', db20.id, '--map', `cache=${target}`, '--yes', '--dir', dir]);
    expect(r.exitCode, out(r)).toBe(5);
    expect(String(r.stderr)).toContain(`its RDB holds keys in database 20 and ${target} is configured for 16 databases`);
    expect(String(r.stderr)).toContain('Nothing was changed');
    expect((await restorePoints(dir)).length).toBe(points);
    expect((await state(target)).Running).toBe(true);
    expect(await cli(target, 'GET', 'mine')).toBe('1');
    await removeContainer(target);
  });

  it('a Redis older than the backup (7 -> 6) is refused before it is stopped, saying so rather than calling the backup damaged', async () => {
    const project = newProjectName('drift-redis6');
    const target = await redis(project, { image: IMAGES.redis6 });
    await cli(target, 'SET', 'mine', '6');
    const r = await bot(['backup', 'restore', small.id, '--map', `cache=${target}`, '--yes', '--dir', dir]);
    expect(r.exitCode, out(r)).toBe(5);
    expect(String(r.stderr)).toMatch(/its RDB is format version \d+, written by a newer server \(the backup came from stackvault-local\/redis:7\) than stackvault-local\/redis:6 can load/);
    expect(String(r.stderr)).not.toContain('RDB ERROR DETECTED');
    expect(await cli(target, 'GET', 'mine')).toBe('6');
    await removeContainer(target);
  });

  it('the stack brought up under another project name: the refusal names --into-project, which then restores it', async () => {
    const renamed = newProjectName('drift-renamed');
    const target = await redis(renamed);
    const r = await bot(['backup', 'restore', small.id, '--yes', '--dir', dir]);
    expect(r.exitCode, out(r)).toBe(4);
    expect(String(r.stderr)).toContain('--into-project');
    expect(String(r.stderr)).toContain(renamed);
    const into = await bot(['backup', 'restore', small.id, '--into-project', renamed, '--yes', '--json', '--dir', dir]);
    expect(into.exitCode, out(into)).toBe(0);
    expect(JSON.parse(String(into.stdout)).services).toEqual([expect.objectContaining({ container: target, status: 'restored', check: 'equal' })]);
    await removeContainer(target);
  });

  it('an app paused by its user is left paused, not stopped and started running, while its stack is restored', async () => {
    const project = newProjectName('drift-pausedapp');
    const target = await redis(project);
    const app = await server(project, 'api', IMAGES.appstub, {}, ['true']);
    await docker.getContainer(app).pause();
    const r = await bot(['backup', 'restore', small.id, '--map', `cache=${target}`, '--yes', '--json', '--dir', dir]);
    expect(r.exitCode, out(r)).toBe(0);
    expect(JSON.parse(String(r.stdout)).stoppedApps).toBeUndefined();
    expect((await state(app)).Paused).toBe(true);
    expect(await cli(target, 'GET', 'kept')).toBe('from-the-backup');
    await removeContainer(app);
    await removeContainer(target);
  });

  it('the service removed from a stack that still runs: the sentence says so rather than "start the stack"', async () => {
    const app = await server(source, 'worker', IMAGES.appstub, {}, ['true']);
    const r = await bot(['backup', 'restore', small.id, '--yes', '--dir', dir]);
    expect(r.exitCode, out(r)).toBe(4);
    expect(String(r.stderr)).toContain(`Project ${source} runs, without it: if the service was removed`);
    expect(String(r.stderr)).toContain('--map cache=CONTAINER');
    expect(String(r.stderr)).not.toContain('Start the stack first');
    await removeContainer(app);
  });
});

/** A server container as Compose would label it, once `ready` (a command) succeeds in it. */
async function server(project: string, service: string, image: string, env: Record<string, string>, ready: string[]): Promise<string> {
  const name = `${project}-${service}-1`;
  const c = await docker.createContainer({
    name,
    Image: image,
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: { 'com.docker.compose.project': project, 'com.docker.compose.service': service, 'com.docker.compose.container-number': '1' },
  });
  created.push(c.id);
  await c.start();
  await until(async () => (await execa('docker', ['exec', name, ...ready], { reject: false })).exitCode === 0, `${name} to answer`);
  return name;
}

const psql = async (container: string, user: string, query: string) =>
  (await execa('docker', ['exec', container, 'psql', '-U', user, '-d', 'bot', '-v', 'ON_ERROR_STOP=1', '-AtXc', query])).stdout.trim();

describe('restoring PostgreSQL into a server that changed since the backup', () => {
  const source = newProjectName('drift-pgsrc');
  let dir: string;
  let backup: Manifest;
  const pg = (project: string, image: string, user: string, password: string) =>
    server(project, 'db', image, { POSTGRES_USER: user, POSTGRES_PASSWORD: password, POSTGRES_DB: 'bot' }, ['pg_isready', '-U', user, '-d', 'bot']);

  beforeAll(async () => {
    dir = await tempDir('drift-pg');
    const name = await pg(source, IMAGES.postgres, 'botadmin', 'first-Password-1');
    await psql(name, 'botadmin', "CREATE TABLE t(id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 500) g");
    const r = await bot(['backup', 'create', '--json', '--project', source, '--dir', dir]);
    expect(r.exitCode, out(r)).toBe(0);
    backup = JSON.parse(String(r.stdout)) as Manifest;
    await removeContainer(name);
  });

  it('an older major version (17 -> 13) is refused before any database is dropped, naming both versions', async () => {
    const target = await pg(newProjectName('drift-pg13'), IMAGES.postgres13, 'botadmin', 'first-Password-1');
    await psql(target, 'botadmin', 'CREATE TABLE mine(x int); INSERT INTO mine VALUES (13)');
    const points = (await restorePoints(dir)).length;
    const r = await bot(['backup', 'restore', backup.id, '--map', `db=${target}`, '--yes', '--dir', dir]);
    expect(r.exitCode, out(r)).toBe(5);
    expect(String(r.stderr)).toContain(`it was dumped by pg_dump 17 and ${target} runs PostgreSQL 13`);
    expect(String(r.stderr)).toContain('Nothing was changed');
    expect((await restorePoints(dir)).length).toBe(points); // refused before the restore point, not rolled back after a replay
    expect(await psql(target, 'botadmin', 'SELECT x FROM mine')).toBe('13');
    await removeContainer(target);
  });

  it('another superuser (POSTGRES_USER renamed) is refused before anything changes, unless --no-check', async () => {
    const target = await pg(newProjectName('drift-pguser'), IMAGES.postgres, 'pgboss', 'first-Password-1');
    const points = (await restorePoints(dir)).length;
    const r = await bot(['backup', 'restore', backup.id, '--map', `db=${target}`, '--yes', '--dir', dir]);
    expect(r.exitCode, out(r)).toBe(5);
    expect(String(r.stderr)).toContain(`its roles do not include pgboss, the superuser ${target} runs as (POSTGRES_USER)`);
    expect(String(r.stderr)).toContain('POSTGRES_USER=botadmin');
    expect((await restorePoints(dir)).length).toBe(points);
    const unchecked = await bot(['backup', 'restore', backup.id, '--map', `db=${target}`, '--yes', '--no-check', '--dir', dir]);
    expect(unchecked.exitCode, out(unchecked)).toBe(0);
    expect(await psql(target, 'pgboss', 'SELECT count(*) FROM t')).toBe('500');
    await removeContainer(target);
  });

  it("a superuser password changed since the backup is restored to the backup's, and the output says so", async () => {
    const target = await pg(newProjectName('drift-pgpass'), IMAGES.postgres, 'botadmin', 'second-Password-2');
    const r = await bot(['backup', 'restore', backup.id, '--map', `db=${target}`, '--yes', '--json', '--dir', dir]);
    expect(r.exitCode, out(r)).toBe(0);
    expect(JSON.parse(String(r.stdout)).services).toEqual([expect.objectContaining({ status: 'restored', check: 'equal' })]);
    expect(String(r.stderr)).toContain('warning: the password of botadmin (the superuser POSTGRES_USER names) was set back to the one in this backup');
    expect(out(r)).not.toMatch(/first-Password|second-Password|SCRAM/);
    // Proof that it did: the newer password no longer logs in over TCP, the backed-up one does.
    const login = (password: string) =>
      execa('docker', ['exec', '-e', `PGPASSWORD=${password}`, target, 'psql', '-h', '127.0.0.1', '-U', 'botadmin', '-d', 'bot', '-AtXc', 'SELECT 1'], { reject: false });
    expect((await login('second-Password-2')).exitCode).not.toBe(0);
    expect((await login('first-Password-1')).exitCode).toBe(0);
    const again = await bot(['backup', 'restore', backup.id, '--map', `db=${target}`, '--yes', '--dir', dir]);
    expect(again.exitCode, out(again)).toBe(0);
    expect(String(again.stderr)).not.toContain('was set back'); // nothing changed this time
    await removeContainer(target);
  });
});

describe('restoring MariaDB into a server whose accounts changed since the backup', () => {
  // Over TCP: the entrypoint's first, temporary server listens on the socket only.
  const mariadb = (project: string, root: string, user: string) =>
    server(project, 'mdb', IMAGES.mariadb, { MARIADB_ROOT_PASSWORD: root, MARIADB_DATABASE: 'shop', MARIADB_USER: user, MARIADB_PASSWORD: 'user-Password-1' }, [
      'sh',
      '-c',
      `MYSQL_PWD='${root}' mariadb -h127.0.0.1 -uroot -e 'SELECT 1'`,
    ]);

  it("root's password and the app account made since are restored to the backup's, and the output says so", async () => {
    const dir = await tempDir('drift-mdb');
    const source = newProjectName('drift-mdbsrc');
    const src = await mariadb(source, 'root-First-1', 'shopper');
    const b = await bot(['backup', 'create', '--json', '--project', source, '--dir', dir]);
    expect(b.exitCode, out(b)).toBe(0);
    const backup = JSON.parse(String(b.stdout)) as Manifest;
    await removeContainer(src);

    const target = await mariadb(newProjectName('drift-mdbnew'), 'root-Second-2', 'newapp');
    const r = await bot(['backup', 'restore', backup.id, '--map', `mdb=${target}`, '--yes', '--json', '--dir', dir]);
    expect(r.exitCode, out(r)).toBe(0);
    expect(JSON.parse(String(r.stdout)).services).toEqual([expect.objectContaining({ status: 'restored', check: 'equal' })]);
    const said = String(r.stderr);
    expect(said).toContain('warning: the restored privilege tables set how root@%, root@localhost log in back to');
    expect(said).toContain('removed newapp@%, which this backup does not hold');
    expect(out(r)).not.toMatch(/root-First|root-Second|user-Password/);
    // Proof: over TCP the newer root password is refused now.
    const tcp = await execa('docker', ['exec', '-e', 'MYSQL_PWD=root-Second-2', target, 'mariadb', '-h127.0.0.1', '-uroot', '-e', 'SELECT 1'], { reject: false });
    expect(tcp.exitCode).not.toBe(0);
    await removeContainer(target);
  });

  describe('a root that logs in only by password (no unix socket)', () => {
    let dir: string;
    let backup: Manifest;

    beforeAll(async () => {
      dir = await tempDir('drift-mdbroot');
      const source = newProjectName('drift-mdbroot');
      const src = await mariadb(source, 'root-First-1', 'shopper');
      // As `mariadb-secure-installation` or a password change by hand leaves it.
      await execa('docker', [
        'exec',
        '-e',
        'MYSQL_PWD=root-First-1',
        src,
        'mariadb',
        '-uroot',
        '-e',
        "ALTER USER root@localhost IDENTIFIED BY 'root-First-1'; CREATE TABLE shop.t(x int); INSERT INTO shop.t VALUES (7)",
      ]);
      const b = await bot(['backup', 'create', '--json', '--project', source, '--dir', dir]);
      expect(b.exitCode, out(b)).toBe(0);
      backup = JSON.parse(String(b.stdout)) as Manifest;
      await removeContainer(src);
    });

    it('into a server given another root password: refused before anything changes (it locked stackvault out, and its rollback failed)', async () => {
      const other = await mariadb(newProjectName('drift-mdbother'), 'root-Second-2', 'shopper');
      const refused = await bot(['backup', 'restore', backup.id, '--map', `mdb=${other}`, '--yes', '--dir', dir]);
      expect(refused.exitCode, out(refused)).toBe(5);
      expect(String(refused.stderr)).toContain(`its root@localhost logs in neither over the unix socket nor with the root password ${other} is given`);
      expect(await restorePoints(dir)).toEqual([]);
      const rows = await execa('docker', ['exec', '-e', 'MYSQL_PWD=root-Second-2', other, 'mariadb', '-uroot', '-N', '-e', 'SHOW TABLES FROM shop'], { reject: false });
      expect(rows.exitCode).toBe(0); // root still gets in: nothing was changed
      await removeContainer(other);
    });

    it("into a server given the same root password: restored and proven (the check's throwaway opened with a random one, so it was always rolled back)", async () => {
      const same = await mariadb(newProjectName('drift-mdbsame'), 'root-First-1', 'shopper');
      const r = await bot(['backup', 'restore', backup.id, '--map', `mdb=${same}`, '--yes', '--json', '--dir', dir]);
      expect(r.exitCode, out(r)).toBe(0);
      expect(JSON.parse(String(r.stdout)).services).toEqual([expect.objectContaining({ status: 'restored', check: 'equal' })]);
      expect(out(r)).not.toMatch(/root-First|root-Second/);
      await removeContainer(same);
    });
  });
});
