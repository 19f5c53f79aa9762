import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import { execa } from 'execa';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { backupDirEntries, tempDir } from '../support/artifacts.js';
import { bot, REPO_ROOT } from '../support/cli.js';
import { newProjectName, psql, redisCli, running, startPostgres, startRedis, startBigNeo4j, whenStopped } from '../support/containers.js';
import { startEngineProxy } from '../support/engine-proxy.js';

/**
 * Interruptions at the phase boundaries of the long commands that the older fault tests
 * (faults.test.ts, chaos.test.ts) did not reach: a closed terminal (SIGHUP), Ctrl-C pressed
 * twice or three times while a store is down, a restore killed outright or cut off from the
 * engine in the middle of its replay, and a drill interrupted.
 */
const docker = new Docker();

/** The restore's replay (psql fed the dump, copying rows) is running in the container. */
async function whenReplaying(id: string): Promise<void> {
  for (let i = 0; i < 2400; i++) {
    const top = await docker
      .getContainer(id)
      .top({ ps_args: '-eo pid,args' })
      .catch(() => ({ Processes: [] as string[][] }));
    const procs = (top.Processes ?? []).map((p: string[]) => p.join(' '));
    if (procs.some((p: string) => /psql .*ON_ERROR_STOP=1 -X -q/.test(p)) && procs.some((p: string) => /COPY/.test(p))) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the replay was never seen running');
}

/**
 * Sends SIGINT and waits until the run says `acknowledged` on stderr (an empty list: no wait),
 * or has ended.
 * Signals sent back to back are merged by the kernel while one is pending, so each is sent only
 * once the run has taken the one before.
 */
async function interrupt(run: ReturnType<typeof bot>, acknowledged: string[]): Promise<void> {
  let seen = '';
  const heard = new Promise<void>((resolve) => {
    const listen = (d: Buffer) => {
      seen += String(d);
      if (acknowledged.every((a) => seen.includes(a))) {
        run.stderr!.off('data', listen);
        resolve();
      }
    };
    run.stderr!.on('data', listen);
    run.then(
      () => resolve(),
      () => resolve(),
    ); // a run that ended acknowledges nothing more
  });
  run.kill('SIGINT');
  if (acknowledged.length) await heard;
}

describe('signals while a store is stopped for its copy', () => {
  const started: StartedTestContainer[] = [];
  afterAll(async () => {
    await Promise.all(started.map((c) => c.stop().catch(() => undefined)));
  });

  const bigNeo4j = async (project: string) => {
    const neo4j = await startBigNeo4j(project);
    started.push(neo4j);
    return neo4j;
  };

  it('the terminal closed (SIGHUP): the run goes on without it, starts the store again, keeps nothing and logs the interruption', async () => {
    const project = newProjectName('sighup');
    const neo4j = await bigNeo4j(project);
    const dir = await tempDir('sighup');
    // bot.sh on a terminal of its own, held by script(1): killing script closes the terminal, and
    // the kernel hangs the run up, as when an ssh session drops. Writes to it then fail (EIO).
    const terminal = execa('setsid', ['script', '-qfec', `./bot.sh backup create --dir ${dir} --project ${project}`, '/dev/null'], { cwd: REPO_ROOT, reject: false });
    await whenStopped(neo4j.getId());
    terminal.kill('SIGKILL');
    await terminal;
    // Before, SIGHUP ended the run on the spot: the store stayed stopped and nothing was logged.
    await expect.poll(() => readFile(join(dir, 'operations.log'), 'utf8').catch(() => ''), { timeout: 60_000, interval: 250 }).toMatch(/\terror: Backup interrupted by SIGHUP; nothing was kept/);
    expect(await running(neo4j.getId())).toBe(true);
    expect(await backupDirEntries(dir)).toEqual([]);
    expect((await readdir(dir)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    expect(await readdir(join(dir, '.stackvault-stopped')).catch(() => [])).toEqual([]);
  });

  it('Ctrl-C twice while a store stops: the second says what is being finished and the store runs again; a third exits, naming what is left and how to start it', async () => {
    const { IMAGES } = await import('../support/images.js');
    const project = newProjectName('ctrlc2');
    // PID 1 ignores TERM, so its stop takes its whole stop timeout: the signals land while it stops.
    const slow = await docker.createContainer({
      Image: IMAGES.neo4j,
      Entrypoint: ['bash', '-c', 'trap "" TERM; mkdir -p /data/databases/neo4j; echo x > /data/databases/neo4j/neostore; while :; do sleep 1; done'],
      StopTimeout: 4,
      Labels: { 'com.docker.compose.project': project, 'com.docker.compose.service': 'graph' },
    });
    try {
      await slow.start();
      const name = (await slow.inspect()).Name.replace(/^\//, '');
      const dir = await tempDir('ctrlc2');
      const whileStopping = async () => {
        // The marker itself, not the temporary file it is written through.
        const markers = async () => (await readdir(join(dir, '.stackvault-stopped')).catch(() => [] as string[])).filter((n) => !n.startsWith('.'));
        await expect.poll(markers, { timeout: 60_000, interval: 20 }).not.toEqual([]);
      };

      const twice = bot(['backup', 'create', '--dir', dir, '--project', project]);
      await whileStopping();
      await interrupt(twice, ['SIGINT received']);
      await interrupt(twice, ['Interrupt once more']);
      const r = await twice;
      expect(r.exitCode).toBe(130);
      // Before, the second Ctrl-C exited at once and left the store stopped without a word.
      expect(String(r.stderr)).toContain(`stackvault: still starting ${name} again. Interrupt once more to exit now and leave it as it is.`);
      expect(await running(slow.id)).toBe(true);
      expect(await backupDirEntries(dir)).toEqual([]);

      const thrice = bot(['backup', 'create', '--dir', dir, '--project', project]);
      await whileStopping();
      await interrupt(thrice, ['SIGINT received']);
      await interrupt(thrice, ['Interrupt once more']);
      await interrupt(thrice, []);
      const forced = await thrice;
      expect(forced.exitCode).toBe(130);
      expect(String(forced.stderr)).toContain(`stackvault: exiting now. Left as it is:\n  ${name} is stopped: start it with docker start ${name}\n`);
      // Docker finishes the stop it was asked for; nobody starts it again.
      await expect.poll(() => running(slow.id), { timeout: 15_000, interval: 250 }).toBe(false);
      expect(String((await bot(['backup', 'list', '--dir', dir])).stderr)).toContain(`docker start ${name}`);
      // Before, the forced exit wrote no line: the log showed the first run and nothing of this one.
      const log = (await readFile(join(dir, 'operations.log'), 'utf8')).trim().split('\n');
      expect(log).toHaveLength(2);
      expect(log[1]).toContain(`\tinterrupted: exited at once on a repeated signal, leaving: ${name} is stopped: start it with docker start ${name}\t`);
    } finally {
      await slow.remove({ force: true, v: true });
    }
  });
});

describe('an engine reached over ssh://', () => {
  it('Ctrl-C while a store stops, to stackvault alone or to its whole process group (the terminal): the store runs again, exit 130', async () => {
    const { IMAGES } = await import('../support/images.js');
    const { chmod, writeFile } = await import('node:fs/promises');
    const project = newProjectName('sshint');
    // What ssh runs on the far side, run here: stackvault's own ssh transport (each connection a
    // process whose stdio is the engine) against the local engine, with no ssh server involved.
    const bin = await tempDir('sshint-bin');
    const ssh = join(bin, 'ssh');
    await writeFile(ssh, '#!/bin/sh\nexec docker system dial-stdio\n');
    await chmod(ssh, 0o755);
    const slow = await docker.createContainer({
      Image: IMAGES.neo4j,
      Entrypoint: ['bash', '-c', 'trap "" TERM; mkdir -p /data/databases/neo4j; echo x > /data/databases/neo4j/neostore; while :; do sleep 1; done'],
      StopTimeout: 3,
      Labels: { 'com.docker.compose.project': project, 'com.docker.compose.service': 'graph' },
    });
    try {
      await slow.start();
      for (const to of ['stackvault', 'its process group'] as const) {
        const dir = await tempDir('sshint');
        const run = execa(`${REPO_ROOT}/bot.sh`, ['backup', 'create', '--dir', dir, '--project', project, '--host', 'far=ssh://anyone@far.example'], {
          env: { STACKVAULT_SSH: ssh },
          reject: false,
          detached: true, // a process group of its own, as a terminal gives a command
          forceKillAfterDelay: false,
        });
        const markers = async () => (await readdir(join(dir, '.stackvault-stopped')).catch(() => [] as string[])).filter((n) => !n.startsWith('.'));
        await expect.poll(markers, { timeout: 60_000, interval: 20 }).not.toEqual([]);
        await new Promise((r) => setTimeout(r, 300)); // its `docker stop` is under way
        if (to === 'stackvault') run.kill('SIGINT');
        else process.kill(-run.pid!, 'SIGINT');
        const r = await run;
        // Before: to stackvault alone, the kill of its cut-off exec waited on an ssh socket that
        // never closed and the run ended at once, exit 0, the store stopped; to the group, ssh
        // died with it, the stop's answer was lost, and the start was taken for done while the
        // stop went on: exit 130 saying it was started, and it was not.
        expect(r.exitCode, `${to}: ${String(r.stdout)}${String(r.stderr)}`).toBe(130);
        expect(String(r.stderr)).toMatch(/Backup interrupted by SIGINT; nothing was kept/);
        await new Promise((res) => setTimeout(res, 4000)); // longer than its stop timeout
        expect((await slow.inspect()).State.Running, to).toBe(true);
        expect(await markers()).toEqual([]);
      }
    } finally {
      await slow.remove({ force: true, v: true });
    }
  });
});

describe('a restore that cannot finish: the store it left half done is named, with the command that puts it back', () => {
  const started: StartedTestContainer[] = [];
  afterAll(async () => {
    await Promise.all(started.map((c) => c.stop().catch(() => undefined)));
  });

  /** A Postgres with a backup of 2 M rows, changed since (a marker table, 1000 rows left). */
  async function changedSinceBackup(prefix: string): Promise<{ pg: StartedTestContainer; dir: string; backup: Manifest }> {
    const pg = await startPostgres({ project: newProjectName(prefix) });
    started.push(pg);
    await psql(pg, 'bot', 'CREATE TABLE big AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 2000000) g');
    const dir = await tempDir(prefix);
    const c = await bot(['backup', 'create', '--json', '--project', pg.getLabels()['com.docker.compose.project']!, '--dir', dir]);
    expect(c.exitCode, String(c.stderr)).toBe(0);
    await psql(pg, 'bot', 'CREATE TABLE marker AS SELECT 42 AS answer');
    await psql(pg, 'bot', 'DELETE FROM big WHERE id > 1000');
    return { pg, dir, backup: JSON.parse(String(c.stdout)) as Manifest };
  }

  /** The put-back command a message names, as arguments for bot(). */
  const putBackArgs = (text: string): string[] => {
    const m = /[Pp]ut it back (?:as it was )?with:? \.\/bot\.sh (backup restore \S+ --only \S+ --yes)/.exec(text);
    expect(m, text).not.toBeNull();
    return m![1]!.split(' ');
  };

  it('SIGKILL mid-replay: list and create name it, create does not back it up, and the named command brings back what it held before', async () => {
    const { pg, dir, backup } = await changedSinceBackup('killreplay');
    const restore = bot(['backup', 'restore', backup.id, '--dir', dir, '--yes']);
    await whenReplaying(pg.getId());
    restore.kill('SIGKILL');
    await restore;
    // psql, its input gone, committed what it had read: the data is now the backup's in part.
    expect(await psql(pg, 'bot', "SELECT count(*) FROM pg_tables WHERE tablename = 'marker'")).toBe('0');

    const list = await bot(['backup', 'list', '--dir', dir]);
    // Before, nothing said so, and the next create recorded the half-restored data as a good backup.
    expect(String(list.stderr)).toMatch(new RegExp(`was restoring ${backup.id} into postgres \\(container \\S+\\), and did not finish: its data may be neither the backup's nor what it held before`));
    const create = await bot(['backup', 'create', '--dir', dir, '--project', backup.services[0]!.project!]);
    expect(create.exitCode, String(create.stdout)).toBe(1);
    expect(String(create.stdout)).toMatch(new RegExp(`❌ postgres: failed: a restore of ${backup.id} into it did not finish, so its data may be half restored`));
    expect((await backupDirEntries(dir)).filter((n) => n.startsWith('stackvault_backup_'))).toEqual([backup.id]);

    const finish = await bot(putBackArgs(String(list.stderr)).concat('--dir', dir));
    expect(finish.exitCode, String(finish.stdout) + String(finish.stderr)).toBe(0);
    expect(await psql(pg, 'bot', 'SELECT answer FROM marker')).toBe('42');
    expect(await psql(pg, 'bot', 'SELECT count(*) FROM big')).toBe('1000');
    expect(String((await bot(['backup', 'list', '--dir', dir])).stderr)).not.toMatch(/did not finish/);
  });

  it('the engine gone mid-replay: the restore says the store may be half restored and how to put it back, and the next list says it again', async () => {
    const { pg, dir, backup } = await changedSinceBackup('enginereplay');
    const proxy = await startEngineProxy();
    const restore = bot(['backup', 'restore', backup.id, '--dir', dir, '--yes'], { env: { DOCKER_HOST: proxy.dockerHost } });
    await whenReplaying(pg.getId());
    proxy.cut();
    const r = await restore;
    expect(r.exitCode).toBe(6); // Docker unreachable, as documented (it was 1)
    // Before, it said only that both the restore and putting back its restore point failed.
    expect(String(r.stdout)).toMatch(
      /❌ postgres .*FAILED: .*putting back the restore point also failed: .*Its data may be neither the backup's nor what it held before: put it back with \.\/bot\.sh backup restore/,
    );
    const list = await bot(['backup', 'list', '--dir', dir]);
    expect(String(list.stderr)).toMatch(new RegExp(`A restore of ${backup.id} into postgres \\(container \\S+\\) failed and putting back its restore point failed too`));
    const finish = await bot(putBackArgs(String(list.stderr)).concat('--dir', dir));
    expect(finish.exitCode, String(finish.stdout) + String(finish.stderr)).toBe(0);
    expect(await psql(pg, 'bot', 'SELECT answer FROM marker')).toBe('42');
    expect(await psql(pg, 'bot', 'SELECT count(*) FROM big')).toBe('1000');
  });

  it('the engine gone mid-replay while the app is stopped for the restore: exit 6, naming the app to start and the store to put back', async () => {
    const { GenericContainer, Wait } = await import('testcontainers');
    const { IMAGES } = await import('../support/images.js');
    const { pg, dir, backup } = await changedSinceBackup('engineapp');
    // An app of the same project: stopped while its store is restored, started again after.
    const app = await new GenericContainer(IMAGES.appstub)
      .withLabels({ 'com.docker.compose.project': backup.services[0]!.project!, 'com.docker.compose.service': 'app' })
      .withWaitStrategy(Wait.forHealthCheck())
      .start();
    started.push(app);
    const appName = (await docker.getContainer(app.getId()).inspect()).Name.replace(/^\//, '');
    const proxy = await startEngineProxy();
    const restore = bot(['backup', 'restore', backup.id, '--dir', dir, '--yes'], { env: { DOCKER_HOST: proxy.dockerHost } });
    await whenReplaying(pg.getId());
    proxy.cut();
    const r = await restore;
    expect(r.exitCode).toBe(6);
    // Before, only that the engine was unreachable: nothing of the app left stopped or of the store.
    expect(String(r.stderr)).toContain(`These containers were stopped and could not be started again: ${appName}. When Docker is back: docker start ${appName}.`);
    expect(String(r.stderr)).toMatch(
      new RegExp(
        `${backup.id} into postgres \\(container \\S+\\).* its data may be neither the backup's nor what it held before\\. Put it back as it was with: \\./bot\\.sh backup restore \\S+ --only \\S+ --yes`,
      ),
    );
    expect(await running(app.getId())).toBe(false);
    // Stopped for a restore, the app would start on a store half restored: the next run names it
    // and leaves it to the user (a backup's or a restart's stop it starts again itself).
    const next = await bot(['backup', 'create', '--dir', dir, '--project', backup.services[0]!.project!]);
    expect(String(next.stdout)).toMatch(new RegExp(`An interrupted stackvault run \\(pid \\d+\\) stopped ${appName} and could not start it again\\. Start it with: docker start ${appName}`));
    expect(await running(app.getId())).toBe(false);
    await docker.getContainer(app.getId()).start();
  });

  it('Ctrl-C during a Redis restore: it is put back on its restore point, proven by content, and said so (it was reported as a rollback that failed)', async () => {
    const project = newProjectName('redisint');
    const redis = await startRedis({ project });
    started.push(redis);
    await redisCli(redis, 'EVAL', "for i = 1, 200000 do redis.call('SET', 'k' .. i, string.rep('v', 200)) end return 1", '0');
    const dir = await tempDir('redisint');
    const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(c.exitCode, String(c.stderr)).toBe(0);
    const id = (JSON.parse(String(c.stdout)) as Manifest).id;
    await redisCli(redis, 'SET', 'since', 'the backup');
    const restore = bot(['backup', 'restore', id, '--dir', dir, '--yes']);
    await whenStopped(redis.getId()); // brought down to load the backup's RDB
    restore.kill('SIGINT');
    const r = await restore;
    expect(r.exitCode).toBe(130);
    // Before, the rollback's content check read the restore point with the run's aborted signal.
    expect(String(r.stdout)).toMatch(/❌ redis \(\S+\): NOT restored, back on the restore point: interrupted/);
    expect(String(r.stdout)).not.toMatch(/putting back the restore point also failed/);
    expect(await redisCli(redis, '--raw', 'GET', 'since')).toBe('the backup');
    expect(await redisCli(redis, 'DBSIZE')).toBe('(integer) 200001');
    expect(await readdir(join(dir, '.stackvault-restoring')).catch(() => [])).toEqual([]);
  });

  it('an interrupted drill records nothing and exits 130 (it was recorded as a failed drill, exit 5)', async () => {
    const pg = await startPostgres({ project: newProjectName('drillint') });
    started.push(pg);
    await psql(pg, 'bot', 'CREATE TABLE big AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 1000000) g');
    const dir = await tempDir('drillint');
    const c = await bot(['backup', 'create', '--json', '--project', pg.getLabels()['com.docker.compose.project']!, '--dir', dir]);
    expect(c.exitCode, String(c.stderr)).toBe(0);
    const id = (JSON.parse(String(c.stdout)) as Manifest).id;
    const copies = () => docker.listContainers({ all: true, filters: { label: [`stackvault.drill-for=${id}`] } });
    const drill = bot(['backup', 'drill', id, '--dir', dir]);
    // Its copy is up and the restore into it replays.
    await expect.poll(async () => (await copies()).length, { timeout: 60_000, interval: 100 }).toBeGreaterThan(0);
    await whenReplaying((await copies())[0]!.Id);
    drill.kill('SIGINT');
    const r = await drill;
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(130);
    expect(String(r.stderr)).toMatch(/Drill interrupted; nothing was recorded, and the throwaway copy is removed/);
    const manifest = JSON.parse(await readFile(join(dir, id, 'manifest.json'), 'utf8')) as Manifest;
    expect(manifest.drills ?? []).toEqual([]);
    expect(await copies()).toEqual([]);
    expect((await readdir(dir)).filter((n) => n.startsWith('restore-point'))).toEqual([]);
  });
});

describe('waiting for the lock', () => {
  it('Ctrl-C ends the wait for another run to release the lock: exit 130 at once, nothing done (it waited the whole minute, then went on)', async () => {
    const { mkdir } = await import('node:fs/promises');
    const dir = await tempDir('lockwait');
    await mkdir(join(dir, '.tmp-stackvault_backup_20260101_000000')); // something for cleanup to remove
    // Another process holding the lock the way stackvault does.
    const holder = execa(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { acquireLock } = await import(${JSON.stringify(join(REPO_ROOT, 'dist/core/lock.js'))});
        await acquireLock(process.argv[1], 'backup create --type daily');
        console.log('locked');
        setInterval(() => {}, 1000);`,
        dir,
      ],
      { reject: false },
    );
    try {
      await new Promise<void>((resolve) =>
        holder.stdout!.on('data', (d: Buffer) => {
          if (String(d).includes('locked')) resolve();
        }),
      );
      const cleanup = bot(['backup', 'cleanup', '--dir', dir]); // waits up to a minute for the lock
      await new Promise((r) => setTimeout(r, 3000));
      const sent = Date.now();
      cleanup.kill('SIGINT');
      const r = await cleanup;
      expect(r.exitCode, String(r.stderr)).toBe(130);
      expect(Date.now() - sent).toBeLessThan(5000);
      expect(String(r.stderr)).toMatch(
        new RegExp(`Interrupted while waiting for another stackvault run \\(backup create --type daily, pid ${holder.pid}, since \\S+\\) to release the lock on \\S+; nothing was done\\.`),
      );
      expect(await readdir(dir)).toContain('.tmp-stackvault_backup_20260101_000000');
    } finally {
      holder.kill('SIGKILL');
      await holder;
    }
  });
});
