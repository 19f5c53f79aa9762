import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import Docker from 'dockerode';
import { execa } from 'execa';
import { GenericContainer, type StartedTestContainer, Wait } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { DockerodeEngine } from '../../src/docker/dockerode-engine.js';
import { DATABASE_FILES, rawFile, startSqlitePreCopy } from '../../src/drivers/sqlite-pre-copy.js';
import { extractArtifact, tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, run, startAll } from '../support/containers.js';
import { IMAGES } from '../support/images.js';

/**
 * SQLite pre-copy (drivers/sqlite-pre-copy.ts): the app's databases are copied while it runs,
 * and while it is paused only what changed since. The raw copy must be what a copy taken
 * wholly while paused gives, byte for byte, also when a checkpoint rewrote the database or
 * removed its WAL in between. The app is the demo image (sqlite3 CLI, /app/data a volume),
 * running its own writers.
 */
const DB = '/app/data/app.db';
/** A database of 150 MB of filler in the main file, checkpointed there, and an empty table of events. */
const SEED = `cd /app/data && sqlite3 app.db "PRAGMA journal_mode=WAL; CREATE TABLE filler(id INTEGER PRIMARY KEY, body BLOB); CREATE TABLE events(n INTEGER PRIMARY KEY, payload BLOB NOT NULL); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 150) INSERT INTO filler SELECT i, randomblob(1000000) FROM c; PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null`;
/**
 * A writer that inserts numbered rows of random bytes, one transaction each, until /app/data/stop
 * exists; it never checkpoints (wal_autocheckpoint=0), so the main file stays as seeded and every
 * row lives in the WAL until the writer ends.
 */
const LIVE_WRITER = `set -e; ${SEED}; touch /app/data/.ready
{ echo "PRAGMA wal_autocheckpoint=0;"; i=0; while [ ! -e /app/data/stop ]; do i=$((i+1)); echo "INSERT INTO events VALUES ($i, randomblob(300));"; sleep 0.01; done; } | sqlite3 app.db >/dev/null
touch /app/data/stopped; while :; do sleep 1; done`;
/** The same database, with a writer that runs what the test writes into /tmp/sql (a FIFO) on one long-lived connection. */
const FIFO_WRITER = `set -e; ${SEED}; mkfifo /tmp/sql
sqlite3 /app/data/app.db < /tmp/sql &
exec 3> /tmp/sql; echo "PRAGMA wal_autocheckpoint=0;" >&3; touch /app/data/.ready
while :; do sleep 1; done`;

const docker = new Docker();
const engine = new DockerodeEngine();

const appWith = (project: string, script: string) =>
  new GenericContainer(IMAGES.app)
    .withLabels({ 'com.docker.compose.project': project, 'com.docker.compose.service': 'app', 'stackvault.sqlite.paths': DB })
    .withEntrypoint(['bash', '-c', script])
    .withWaitStrategy(Wait.forHealthCheck())
    .withStartupTimeout(120_000);

const count = async (c: StartedTestContainer, file = DB) => Number((await run(c, ['sqlite3', file, 'SELECT count(*) FROM events'])).trim());

/** Helpers stackvault started for a container and left behind (none, on every path). */
const helpersOf = async (c: StartedTestContainer) => (await docker.listContainers({ all: true, filters: { label: [`stackvault.helper-for=${c.getId()}`] } })).length;

const sha256 = async (file: string) => {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
};

describe('SQLite pre-copy', () => {
  const project = newProjectName('sqlprecopy');
  const fifoProject = newProjectName('sqlprecopyfifo');
  const offVolumeProject = newProjectName('sqlprecopyoff');
  let live: StartedTestContainer;
  let fifo: StartedTestContainer;
  let offVolume: StartedTestContainer;

  beforeAll(async () => {
    [live, fifo, offVolume] = await startAll([
      appWith(project, LIVE_WRITER).start(),
      appWith(fifoProject, FIFO_WRITER).start(),
      // The database in the container's own layer, not on its volume: a helper cannot see it.
      new GenericContainer(IMAGES.app)
        .withLabels({ 'com.docker.compose.project': offVolumeProject, 'com.docker.compose.service': 'app', 'stackvault.sqlite.paths': '/srv/app.db' })
        .withEntrypoint(['bash', '-c', 'mkdir -p /srv && sqlite3 /srv/app.db "CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);" && touch /app/data/.ready && exec sleep infinity'])
        .withWaitStrategy(Wait.forHealthCheck())
        .start(),
    ]);
  });

  afterAll(async () => {
    await Promise.all([live, fifo, offVolume].map((c) => c?.stop().catch(() => undefined)));
  });

  it('encrypted artifacts: no pre-copy, and the output says why; everything is copied while paused', async () => {
    const keys = await tempDir('sqlprecopykeys');
    await execa('age-keygen', ['-o', join(keys, 'me.txt')]);
    const recipient = (await execa('age-keygen', ['-y', join(keys, 'me.txt')])).stdout.trim();
    const dir = await tempDir('sqlprecopyenc');
    const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir, '--encrypt-to', recipient]);
    expect(c.exitCode, String(c.stderr)).toBe(0);
    expect(String(c.stderr)).toMatch(/app: copied while paused \(no pre-copy: artifacts are encrypted/);
    const entry = (JSON.parse(String(c.stdout)) as Manifest).services[0]!;
    expect(entry.details?.preCopy).toBeUndefined();
    expect(entry.details?.files).toMatchObject([{ path: DB, tables: { filler: 150 } }]);
    console.log(`SQLite without pre-copy: app paused ${entry.downtimeMs} ms for 150 MB + WAL`);
    expect(await helpersOf(live)).toBe(0);
  });

  it('--consistent: the pre-copy runs before the window, which holds the app only for the catch-up', async () => {
    const dir = await tempDir('sqlprecopycons');
    const c = await bot(['backup', 'create', '--consistent', '--json', '--project', project, '--dir', dir]);
    expect(c.exitCode, String(c.stderr)).toBe(0);
    expect(String(c.stderr)).not.toMatch(/no pre-copy/);
    const m = JSON.parse(String(c.stdout)) as Manifest;
    expect(m.services[0]!.details?.preCopy).toEqual({ copiedWhilePaused: 1 });
    expect(m.consistency?.pausedMs).toBeGreaterThan(0);
    console.log(`SQLite pre-copy, --consistent: the window held the app for ${m.consistency!.pausedMs} ms`);
    expect(await helpersOf(live)).toBe(0);
  });

  it('backup create: only the WAL is copied while paused, and the copy holds a moment of the writer, every row exact', async () => {
    // The main file's last change lies seconds back: it is pre-copied, not copied again.
    await new Promise((r) => setTimeout(r, 3000));
    const before = await count(live);
    const dir = await tempDir('sqlprecopy');
    const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(c.exitCode, String(c.stderr)).toBe(0);
    expect(String(c.stderr)).not.toMatch(/no pre-copy/);
    const m = JSON.parse(String(c.stdout)) as Manifest;
    const entry = m.services[0]!;
    expect(entry.details?.preCopy, `${String(c.stderr)} ${JSON.stringify(entry.details)}`).toEqual({ copiedWhilePaused: 1 });
    expect(entry.downtimeMs).toBeGreaterThan(0);
    console.log(`SQLite pre-copy: app paused ${entry.downtimeMs} ms for 150 MB + WAL (${entry.durationMs} ms in all)`);
    expect(await helpersOf(live)).toBe(0);

    // The writer ends; its last connection checkpoints every row into the main file.
    await run(live, ['touch', '/app/data/stop']);
    await run(live, ['bash', '-c', 'while [ ! -e /app/data/stopped ]; do sleep 0.1; done']);
    const total = await count(live);

    const files = await extractArtifact(join(dir, m.id, entry.artifact!));
    await live.copyFilesToContainer([{ source: join(files, 'sqlite', '0-app.db'), target: '/tmp/restored.db' }]);
    // Read by the sqlite3 CLI, not stackvault: rows 1..k, none missing, and the writer went on after the pause.
    const [rows, last] = (await run(live, ['sqlite3', '/tmp/restored.db', 'SELECT count(*), max(n) FROM events'])).trim().split('|').map(Number);
    expect(rows).toBe(last);
    expect(rows).toBeGreaterThanOrEqual(before);
    expect(total).toBeGreaterThan(rows!);
    // The database as the writer left it at row k (the rows after it removed), dumped and
    // hashed by sqlite3: every table, every byte of every row, equal to the restored copy's.
    await run(live, ['sqlite3', DB, '.backup /tmp/expected.db']);
    await run(live, ['sqlite3', '/tmp/expected.db', `DELETE FROM events WHERE n > ${last}`]);
    const dump = (file: string) => run(live, ['bash', '-c', `set -o pipefail; sqlite3 ${file} .dump | sha256sum`]);
    expect(await dump('/tmp/restored.db')).toBe(await dump('/tmp/expected.db'));
  });

  it('a database not on a volume: no pre-copy, and the output says why', async () => {
    const dir = await tempDir('sqlprecopyoff');
    const c = await bot(['backup', 'create', '--json', '--project', offVolumeProject, '--dir', dir]);
    expect(c.exitCode, String(c.stderr)).toBe(0);
    expect(String(c.stderr)).toMatch(/app: copied while paused \(no pre-copy: \/srv\/app\.db is not on a volume\)/);
    const entry = (JSON.parse(String(c.stdout)) as Manifest).services[0]!;
    expect(entry.details).toMatchObject({ files: [{ path: '/srv/app.db', tables: { t: 2 } }] });
    expect(entry.details?.preCopy).toBeUndefined();
  });

  describe('the raw copy equals one taken wholly while paused', () => {
    let statements = 0;
    /** Runs SQL on the app's own long-lived connection, and waits until it has run (the CLI then touches a marker). */
    const onAppConnection = async (sql: string) => {
      const done = `/tmp/done.${++statements}`;
      await run(fifo, ['bash', '-c', 'printf "%s\\n.shell touch %s\\n" "$SQL" "$DONE" > /tmp/sql; for i in $(seq 300); do [ -e "$DONE" ] && exit 0; sleep 0.1; done; exit 1'], {
        SQL: sql,
        DONE: done,
      });
    };
    const insert = (rows: number) => onAppConnection(`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ${rows}) INSERT INTO events(payload) SELECT randomblob(300) FROM c;`);

    /**
     * Pre-copies, runs `between` while the app still runs, pauses it (as stackvault would),
     * catches up and, still paused, has `sha256sum` in another container read the database's
     * files as they are; then unpauses it and collects what the catch-up staged: the raw copy
     * must hold the same files with the same bytes as those read while paused.
     */
    async function preCopyAround(between: () => Promise<void>, path = DB): Promise<{ copiedWhilePaused: number; files: string[] }> {
      const raw = join(await tempDir('sqlprecopyraw'), 'raw');
      await mkdir(raw);
      const container = await engine.inspect(fifo.getId());
      const pre = await startSqlitePreCopy(engine, container, [path], raw, new AbortController().signal);
      try {
        await between();
        await docker.getContainer(fifo.getId()).pause();
        let copiedWhilePaused: number;
        let paused: Awaited<ReturnType<typeof engine.exec>>;
        try {
          copiedWhilePaused = await pre.catchUp();
          paused = await engine.exec(reader.id, ['bash', '-c', 'for s in "" -wal -journal; do [ -e "$P$s" ] && echo "db$s $(sha256sum < "$P$s" | cut -d" " -f1)"; done; true'], { env: { P: path } });
          expect(paused.exitCode, paused.stderr).toBe(0);
        } finally {
          await docker.getContainer(fifo.getId()).unpause();
        }
        // Staged in the helper while paused, fetched now that the app runs again.
        await pre.collect();
        const inRaw: string[] = [];
        for (const suffix of DATABASE_FILES) {
          const file = rawFile(raw, 0, suffix);
          if (existsSync(file)) inRaw.push(`db${suffix} ${await sha256(file)}`);
        }
        expect(inRaw).toEqual(paused.stdout.trim().split('\n'));
        return { copiedWhilePaused, files: inRaw.map((l) => l.split(' ')[0]!.replace('db', 'app.db')) };
      } finally {
        await pre.dispose();
        expect(await helpersOf(fifo)).toBe(0);
      }
    }

    /** Another container with the app's volumes (read-only): it reads the files while the app is paused. */
    let reader: Docker.Container;

    beforeAll(async () => {
      reader = await docker.createContainer({
        Image: IMAGES.app,
        Entrypoint: ['sleep', 'infinity'],
        Labels: { 'stackvault.exclude': 'true' },
        HostConfig: { VolumesFrom: [`${fifo.getId()}:ro`], AutoRemove: true },
      });
      await reader.start();
      await insert(500);
      // Nothing the pre-copy will copy changes in the 2 s margin before it.
      await new Promise((r) => setTimeout(r, 3000));
    });

    afterAll(async () => {
      await reader?.remove({ force: true }).catch(() => undefined);
    });

    it('nothing changed: nothing is copied while paused', async () => {
      const { copiedWhilePaused, files } = await preCopyAround(async () => undefined);
      expect(files).toEqual(['app.db', 'app.db-wal']);
      expect(copiedWhilePaused).toBe(0);
    });

    it('rows and a checkpoint (TRUNCATE) in between: the rewritten main file and the emptied WAL are copied again', async () => {
      const { copiedWhilePaused, files } = await preCopyAround(async () => {
        await insert(200);
        await onAppConnection('PRAGMA wal_checkpoint(TRUNCATE);');
        await insert(3);
      });
      expect(files).toEqual(['app.db', 'app.db-wal']);
      expect(copiedWhilePaused).toBe(2);
      expect(await count(fifo)).toBe(703);
    });

    it('a path no shell should see unquoted (quotes, $(...), a newline): listed, staged and fetched as it is', async () => {
      const odd = "/app/data/it's a\n$(touch pwned) `id` \\ db";
      const sql = (statement: string) => run(fifo, ['bash', '-c', 'sqlite3 "$P" "$S" >/dev/null'], { P: odd, S: statement });
      await sql('PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);');
      await new Promise((r) => setTimeout(r, 3000));
      // Its last connection closed: the WAL is checkpointed into the main file, which changed.
      const { copiedWhilePaused, files } = await preCopyAround(() => sql('INSERT INTO t VALUES (2);').then(() => undefined), odd);
      expect(files).toEqual(['app.db']);
      expect(copiedWhilePaused).toBe(1);
    });

    it('the WAL checkpointed away (the last connection closed) in between: it is not kept', async () => {
      await insert(50);
      await new Promise((r) => setTimeout(r, 3000));
      const { copiedWhilePaused, files } = await preCopyAround(async () => {
        await run(fifo, ['bash', '-c', 'echo .quit > /tmp/sql; while [ -e /app/data/app.db-wal ]; do sleep 0.1; done']);
      });
      expect(files).toEqual(['app.db']);
      expect(copiedWhilePaused).toBe(1);
      expect(await count(fifo)).toBe(753);
    });
  });
});
