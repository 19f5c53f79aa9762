import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { Readable, Writable } from 'node:stream';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerodeEngine } from '../../src/docker/dockerode-engine.js';
import { redisDriver } from '../../src/drivers/redis.js';
import type { RestoreContext, Snapshot } from '../../src/drivers/types.js';
import type { ServiceEntry } from '../../src/core/manifest.js';
import { withStopped } from '../../src/core/stopped-markers.js';
import { findTarEntry } from '../../src/util/tar-build.js';
import { newProjectName, populateRedis, run, startRedis } from '../support/containers.js';
import { backupContextFor } from '../support/driver-context.js';

/**
 * A consistent backup's Redis point (drivers/redis.ts prepareSnapshot) against other saves:
 * the BGSAVE's RDB is the point, and an automatic save renames a new RDB over it at any time.
 * Driven step by step, so that the other save lands exactly where it hurts: while the point's
 * RDB is being read, and between the point and the moment it is opened.
 */
describe('Redis snapshot point: other saves around the copy', () => {
  let redis: StartedTestContainer;
  const engine = new DockerodeEngine();
  beforeAll(async () => {
    redis = await startRedis({ project: newProjectName('redissnap'), password: false });
    // Enough keys for an RDB of a few MB: its copy takes many chunks.
    await populateRedis(redis, 50_000, 64);
  });
  afterAll(async () => {
    await redis?.stop();
  });

  const cli = (...args: string[]) => run(redis, ['redis-cli', ...args]).then((s) => s.trim());
  const rdbSha256 = async () => (await run(redis, ['sh', '-c', 'sha256sum < /data/dump.rdb'])).split(' ')[0]!;
  const saveDone = async () => {
    while ((await cli('INFO', 'persistence')).includes('rdb_bgsave_in_progress:1')) await new Promise((r) => setTimeout(r, 50));
  };

  /** A snapshot set up and fixed (its BGSAVE started), and its save finished. */
  const fixed = async (): Promise<Snapshot> => {
    const ctx = await backupContextFor(engine, redis.getId(), new Writable({ write: (_c, _e, cb) => cb() }));
    const snapshot = await redisDriver.prepareSnapshot!(ctx);
    await snapshot.fix();
    await saveDone();
    return snapshot;
  };

  it("a save that replaces the RDB while it is read changes nothing: the artifact holds the point's RDB, byte for byte", async () => {
    const snapshot = await fixed();
    try {
      const atPoint = await rdbSha256();
      await cli('SET', 'after-the-point', 'x');
      // An output that takes the first chunk (the tar header: the file is open) and then holds.
      const chunks: Buffer[] = [];
      let opened!: () => void;
      const isOpen = new Promise<void>((r) => {
        opened = r;
      });
      let letGo!: () => void;
      const hold = new Promise<void>((r) => {
        letGo = r;
      });
      const output = new Writable({
        highWaterMark: 1,
        write(chunk: Buffer, _e, cb) {
          chunks.push(chunk);
          opened();
          void hold.then(() => cb());
        },
      });
      const backup = snapshot.backup(output);
      // A backup that fails before reading a byte fails the test with its reason.
      await Promise.race([isOpen, backup.then(() => Promise.reject(new Error('the backup ended before its first byte')))]);
      await cli('SAVE'); // the automatic save's rename, while the point's RDB is being read
      expect(await rdbSha256()).not.toBe(atPoint);
      letGo();
      await backup;
      const rdb = await findTarEntry(Readable.from([Buffer.concat(chunks)]), 'dump.rdb');
      const hash = createHash('sha256');
      for await (const c of rdb.stream) hash.update(c as Buffer);
      expect(hash.digest('hex')).toBe(atPoint);
    } finally {
      await snapshot.release();
    }
  });

  it('a save that ended between the point and the copy fails the service, which says why', async () => {
    const snapshot = await fixed();
    try {
      await cli('SET', 'after-the-point', 'y');
      await cli('SAVE');
      const output = new Writable({ write: (_c, _e, cb) => cb() });
      await expect(snapshot.backup(output)).rejects.toThrow(/another save ended after the consistent point's and replaced its RDB before it was opened.*run the backup again/);
    } finally {
      await snapshot.release();
    }
  });

  it('an output that fails while the RDB streams fails the backup with its reason, and the reading command is gone', async () => {
    let writes = 0;
    const output = new Writable({
      highWaterMark: 1,
      write(_chunk: Buffer, _e, cb) {
        writes++;
        cb(writes === 3 ? new Error('disk full (test)') : undefined);
      },
    });
    output.on('error', () => undefined);
    await expect(redisDriver.backup(await backupContextFor(engine, redis.getId(), output))).rejects.toThrow(/disk full \(test\)|output stream was closed/);
    const readers = async () => Number(await run(redis, ['sh', '-c', 'n=0; for f in /proc/[0-9]*/comm; do c=; read -r c < $f 2>/dev/null; [ "$c" = cat ] && n=$((n+1)); done; echo $n']));
    for (let i = 0; i < 50 && (await readers()) > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await readers()).toBe(0);
  });

  it('a backup that meets an AOF rewrite waits for it instead of failing ("Another child process is active")', async () => {
    // Each key delays the rewrite's child by 40 µs (the forked child keeps the setting): a few seconds.
    await cli('CONFIG', 'SET', 'rdb-key-save-delay', '40');
    try {
      expect(await cli('BGREWRITEAOF')).toMatch(/rewriting started/i);
    } finally {
      await cli('CONFIG', 'SET', 'rdb-key-save-delay', '0');
    }
    expect(await cli('BGSAVE')).toMatch(/another child process is active/i);
    const ctx = await backupContextFor(engine, redis.getId(), new Writable({ write: (_c, _e, cb) => cb() }));
    await redisDriver.backup(ctx);
    expect(await cli('INFO', 'persistence')).toContain('aof_rewrite_in_progress:0');
  });

  it('a plain backup reads the RDB it opened, with its owner and mode, and Redis checks it whole', async () => {
    const chunks: Buffer[] = [];
    const output = new Writable({
      write(chunk: Buffer, _e, cb) {
        chunks.push(chunk);
        cb();
      },
    });
    const ctx = await backupContextFor(engine, redis.getId(), output);
    await redisDriver.backup(ctx);
    const rdb = await findTarEntry(Readable.from([Buffer.concat(chunks)]), 'dump.rdb');
    const [owner, mode, size] = (await run(redis, ['stat', '-c', '%u:%g %a %s', '/data/dump.rdb'])).trim().split(' ');
    expect(`${rdb.uid}:${rdb.gid}`).toBe(owner);
    expect(rdb.mode.toString(8)).toBe(mode);
    expect(rdb.size).toBe(Number(size));
    const bytes: Buffer[] = [];
    for await (const c of rdb.stream) bytes.push(c as Buffer);
    expect(createHash('sha256').update(Buffer.concat(bytes)).digest('hex')).toBe(await rdbSha256());
  });
});

/**
 * The stop before a restore: Redis saves its whole dataset on a stop signal (its save points),
 * which for a big one outlasts Docker's stop timeout; it was killed mid-save, only for that
 * data to be overwritten. The restore stops it without that save, and its save points survive.
 */
describe('Redis restore: the stop before it does not save the data it replaces', () => {
  let redis: StartedTestContainer;
  let markers: string;
  const engine = new DockerodeEngine();
  const cli = (...args: string[]) => run(redis, ['redis-cli', ...args]).then((s) => s.trim());
  beforeAll(async () => {
    redis = await startRedis({ project: newProjectName('redisstop'), password: false });
    await populateRedis(redis, 20_000, 32);
    markers = await mkdtemp(join(tmpdir(), 'svt-redis-stop-'));
  });
  afterAll(async () => {
    await redis?.stop();
    if (markers) await rm(markers, { recursive: true, force: true });
  });

  /** The driver's restore of a backup taken now, with `withStopped` as given. */
  const restoreWith = async (stopped: RestoreContext['withStopped'], log: (m: string) => void = () => undefined) => {
    const chunks: Buffer[] = [];
    const backupCtx = await backupContextFor(engine, redis.getId(), new Writable({ write: (c: Buffer, _e, cb) => cb(void chunks.push(c)) }));
    const { details } = await redisDriver.backup(backupCtx);
    const artifact = Buffer.concat(chunks);
    await redisDriver.restore({
      engine,
      container: await engine.inspect(redis.getId()),
      entry: { name: 'redis', driver: 'redis', container: redis.getName(), status: 'ok', details } as ServiceEntry,
      open: () => Readable.from([artifact]),
      signal: new AbortController().signal,
      withStopped: stopped,
      log,
    });
  };
  const logsSince = async (since: number) => ((await new Docker().getContainer(redis.getId()).logs({ stdout: true, stderr: true, since })) as Buffer).toString('latin1');

  it('is stopped without its final save, the data comes back whole, and its save points are the configured ones again', async () => {
    const savePoints = await cli('CONFIG', 'GET', 'save');
    expect(savePoints.split('\n')[1]?.trim()).not.toBe(''); // the default ones: a stop would save
    const since = Math.floor(Date.now() / 1000);
    await restoreWith((work) => withStopped(engine, markers, { id: redis.getId(), name: redis.getName(), service: 'redis' }, work));
    for (let i = 0; i < 100 && !(await redisDriver.ready(engine, await engine.inspect(redis.getId()))); i++) await new Promise((r) => setTimeout(r, 100));
    const logs = await logsSince(since);
    expect(logs).toMatch(/ready to exit/i); // it did stop, on its signal
    expect(logs).not.toMatch(/Saving the final RDB snapshot/i);
    expect(await cli('DBSIZE')).toBe('20000');
    expect(await cli('CONFIG', 'GET', 'save')).toBe(savePoints);
  });

  it('a server whose ACL refuses CONFIG SET is restored all the same, saving on the way down, and says so', async () => {
    await cli('ACL', 'SETUSER', 'default', '-config|set'); // gone with the restart: ACLs are not saved here
    expect(await cli('CONFIG', 'SET', 'save', '')).toMatch(/NOPERM/);
    const said: string[] = [];
    await restoreWith(
      (work) => withStopped(engine, markers, { id: redis.getId(), name: redis.getName(), service: 'redis' }, work),
      (m) => said.push(m),
    );
    expect(said.join('\n')).toMatch(/save points could not be turned off for the stop/);
    for (let i = 0; i < 100 && !(await redisDriver.ready(engine, await engine.inspect(redis.getId()))); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await cli('DBSIZE')).toBe('20000');
  });

  it('a restore that fails before the stop leaves the running server with its save points', async () => {
    const savePoints = await cli('CONFIG', 'GET', 'save');
    await expect(restoreWith(() => Promise.reject(new Error('the stop was refused (test)')))).rejects.toThrow(/refused \(test\)/);
    expect(await cli('CONFIG', 'GET', 'save')).toBe(savePoints);
  });
});
