// What the benchmark times: the manual procedure an admin ran before stackvault (one store after
// another), each store's raw copy alone (the floor), stackvault's commands, and a manual restore.
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { bash, docker, now, q, run, sampleTree, sleep, timed } from './proc.mjs';
import { PG_USER, SQLITE_DBS } from './stack.mjs';

/** Bytes of every file under a directory. */
export function dirBytes(dir) {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? dirBytes(p) : e.isFile() ? statSync(p).size : 0;
  }
  return n;
}

/** Counts a stream's bytes without keeping it (GNU tar and cat skip work when writing straight to /dev/null). */
const COUNT = 'wc -c';

const redisInfo = async (c) => {
  const text = await run('docker', ['exec', c, 'redis-cli', 'INFO', 'persistence']);
  const get = (k) => new RegExp(`^${k}:(\\S+)`, 'm').exec(text)?.[1];
  return { saves: Number(get('rdb_saves')), inProgress: get('rdb_bgsave_in_progress') === '1', status: get('rdb_last_bgsave_status') };
};

/**
 * BGSAVE as a careful admin runs it: wait out a save already running, then wait until the
 * server's save counter moved past the one before the request and the last save is ok.
 */
export async function bgsave(c) {
  for (let i = 0; ; i++) {
    const before = await redisInfo(c);
    if (Number.isNaN(before.saves)) throw new Error('redis INFO persistence has no rdb_saves');
    const reply = await run('docker', ['exec', c, 'redis-cli', 'BGSAVE']).catch((e) => e.message);
    if (/already in progress/i.test(reply) && i < 600) {
      await sleep(100);
      continue;
    }
    if (!/Background saving started/i.test(reply)) throw new Error(`redis BGSAVE answered: ${reply.trim()}`);
    for (;;) {
      await sleep(50);
      const after = await redisInfo(c);
      if (!after.inProgress && after.saves > before.saves) {
        if (after.status !== 'ok') throw new Error(`redis BGSAVE finished with status ${after.status}`);
        return;
      }
    }
  }
}

/** Stops a container for `work` and starts it again whatever happens; returns [downtime ms, work's result]. */
async function stopped(c, work) {
  const t0 = now();
  await docker('stop', c);
  let result;
  try {
    result = await work();
  } finally {
    await docker('start', c);
  }
  return [now() - t0, result];
}

/** Which SQLite backup tool the host has: Python's sqlite3 module (the backup API in one step), else the sqlite3 shell. */
export async function sqliteBackupTool() {
  const py = await run('python3', ['-c', 'import sqlite3; print(sqlite3.sqlite_version)']).catch(() => undefined);
  if (py)
    return {
      name: `python3 sqlite3.backup (SQLite ${py.trim()})`,
      backup: (src, dst) => run('python3', ['-c', 'import sqlite3,sys; s=sqlite3.connect(sys.argv[1]); d=sqlite3.connect(sys.argv[2]); s.backup(d); d.close(); s.close()', src, dst]),
    };
  await run('sqlite3', ['-version']);
  return { name: 'sqlite3 .backup', backup: (src, dst) => run('sqlite3', [src, `.backup ${q(dst)}`]) };
}

/**
 * The old manual procedure, one store after another: pg_dumpall to a file then gzip -6 of it;
 * BGSAVE then docker cp of the RDB; Chroma and Neo4j stopped, their volume tar czf'd, started;
 * each SQLite database through the backup API. Downtime is measured from stop to start.
 */
export async function baseline(stack, dir, sqliteTool) {
  mkdirSync(dir, { recursive: true });
  const steps = {};
  const downtimeMs = {};
  const t0 = now();
  {
    const c = stack.name('postgres');
    const [dumpMs] = await timed(() => bash(`docker exec ${q(c)} pg_dumpall -U ${PG_USER} --clean --if-exists > ${q(join(dir, 'postgres.sql'))}`));
    const rawBytes = statSync(join(dir, 'postgres.sql')).size;
    const [gzipMs] = await timed(() => run('gzip', ['-6', join(dir, 'postgres.sql')]));
    steps.postgres = { ms: dumpMs + gzipMs, dumpMs, gzipMs, rawBytes };
  }
  {
    const c = stack.name('redis');
    const [bgsaveMs] = await timed(() => bgsave(c));
    const [copyMs] = await timed(() => docker('cp', `${c}:/data/dump.rdb`, join(dir, 'redis.rdb')));
    steps.redis = { ms: bgsaveMs + copyMs, bgsaveMs, copyMs, rawBytes: statSync(join(dir, 'redis.rdb')).size };
  }
  for (const s of ['chroma', 'neo4j']) {
    const mp = await stack.mountpoint(s);
    const [down] = await stopped(stack.name(s), () => bash(`tar czf ${q(join(dir, `${s}.tar.gz`))} -C ${q(mp)} .`));
    downtimeMs[s] = down;
    steps[s] = { ms: down, rawBytes: Number((await bash(`du -sb ${q(mp)}`)).split('\t')[0]) };
  }
  {
    const mp = await stack.mountpoint('app');
    const [ms] = await timed(async () => {
      for (const db of SQLITE_DBS) await sqliteTool.backup(join(mp, db), join(dir, db));
    });
    steps.app = { ms, rawBytes: SQLITE_DBS.reduce((n, db) => n + statSync(join(dir, db)).size, 0) };
  }
  const ms = now() - t0;
  return { ms, bytes: dirBytes(dir), rawBytes: Object.values(steps).reduce((n, s) => n + s.rawBytes, 0), steps, downtimeMs };
}

/**
 * Each store's raw copy alone, uncompressed, to a byte counter: pg_dumpall; BGSAVE plus the RDB
 * through docker cp; the Chroma and Neo4j volumes through docker cp (the engine's archive API)
 * with the container stopped (the copy is timed, and stop-copy-start as a plain stop-and-copy);
 * the app's SQLite directory through docker cp. The floor is the slowest store, and the sum.
 */
export async function floor(stack) {
  const steps = {};
  const count = (cmd) => bash(`${cmd} | ${COUNT}`).then(Number);
  {
    const c = stack.name('postgres');
    const [ms, bytes] = await timed(() => count(`docker exec ${q(c)} pg_dumpall -U ${PG_USER} --clean --if-exists`));
    steps.postgres = { ms, bytes };
  }
  {
    const c = stack.name('redis');
    const [bgsaveMs] = await timed(() => bgsave(c));
    const [copyMs, bytes] = await timed(() => count(`docker cp ${q(`${c}:/data/dump.rdb`)} -`));
    steps.redis = { ms: bgsaveMs + copyMs, bgsaveMs, copyMs, bytes };
  }
  for (const s of ['chroma', 'neo4j']) {
    const c = stack.name(s);
    const [stopCopyStartMs, [ms, bytes]] = await stopped(c, () => timed(() => count(`docker cp ${q(`${c}:/data`)} -`)));
    steps[s] = { ms, bytes, stopCopyStartMs };
    await stack.waitReady([s]);
  }
  {
    const c = stack.name('app');
    const [ms, bytes] = await timed(() => count(`docker cp ${q(`${c}:/app/data`)} -`));
    steps.app = { ms, bytes };
  }
  const slowest = Object.entries(steps).sort((a, b) => b[1].ms - a[1].ms)[0];
  return { maxMs: slowest[1].ms, slowest: slowest[0], sumMs: Object.values(steps).reduce((n, s) => n + s.ms, 0), rawBytes: Object.values(steps).reduce((n, s) => n + s.bytes, 0), steps };
}

/**
 * The floor of any tool that copies every store, on this machine: the same raw copies as
 * `floor`, all at once (Chroma and Neo4j stopped before the clock starts, started after it
 * stops). Nothing is compressed, hashed or written; the stores share the cores as they do in
 * `create`.
 */
export async function floorTogether(stack) {
  const count = (cmd) => bash(`${cmd} | ${COUNT}`).then(Number);
  const stoppedOnes = ['chroma', 'neo4j'].map((s) => stack.name(s));
  await Promise.all(stoppedOnes.map((c) => docker('stop', c)));
  let ms;
  try {
    [ms] = await timed(() =>
      Promise.all([
        count(`docker exec ${q(stack.name('postgres'))} pg_dumpall -U ${PG_USER} --clean --if-exists`),
        bgsave(stack.name('redis')).then(() => count(`docker cp ${q(`${stack.name('redis')}:/data/dump.rdb`)} -`)),
        ...stoppedOnes.map((c) => count(`docker cp ${q(`${c}:/data`)} -`)),
        count(`docker cp ${q(`${stack.name('app')}:/app/data`)} -`),
      ]),
    );
  } finally {
    await Promise.all(stoppedOnes.map((c) => docker('start', c)));
  }
  await stack.waitReady(['chroma', 'neo4j']);
  return { ms };
}

/**
 * The manual restore, one store after another, each waited for before the next: psql replays
 * the gunzipped dump; Redis stopped, the RDB copied into its volume, started; Chroma and Neo4j
 * stopped, volume emptied, tar extracted (owners kept), started; the app stopped, its SQLite
 * files copied back (stale -wal/-shm removed), started.
 */
export async function manualRestore(stack, dir) {
  const steps = {};
  const downtimeMs = {};
  const t0 = now();
  {
    const c = stack.name('postgres');
    const errFile = join(dir, 'psql.err');
    const [ms] = await timed(() =>
      // Without ON_ERROR_STOP psql goes on past errors, as the plain procedure does: the dump's
      // DROP/CREATE ROLE of the connected superuser fail by design. A failing psql or gunzip fails the run.
      bash(`gunzip -c ${q(join(dir, 'postgres.sql.gz'))} | docker exec -i ${q(c)} psql -X -q -U ${PG_USER} -d postgres >/dev/null 2>${q(errFile)}`),
    );
    const errors = (await bash(`grep ERROR ${q(errFile)} || true`)).split('\n').filter(Boolean);
    const unexpected = errors.filter((l) => !/current user cannot be dropped|role "[^"]+" already exists/.test(l));
    if (unexpected.length) throw new Error(`manual restore: psql reported errors:\n  ${unexpected.slice(0, 5).join('\n  ')}`);
    steps.postgres = { ms, psqlErrors: errors.length };
  }
  {
    const c = stack.name('redis');
    const mp = await stack.mountpoint('redis');
    const [ms] = await timed(async () => {
      const [down] = await stopped(c, () => bash(`cp ${q(join(dir, 'redis.rdb'))} ${q(join(mp, 'dump.rdb'))} && chown 999:999 ${q(join(mp, 'dump.rdb'))}`));
      downtimeMs.redis = down;
      await stack.waitReady(['redis']);
    });
    steps.redis = { ms };
  }
  for (const s of ['chroma', 'neo4j']) {
    const mp = await stack.mountpoint(s);
    const [ms] = await timed(async () => {
      const [down] = await stopped(stack.name(s), () => bash(`find ${q(mp)} -mindepth 1 -delete && tar xzf ${q(join(dir, `${s}.tar.gz`))} -C ${q(mp)}`));
      downtimeMs[s] = down;
      await stack.waitReady([s]);
    });
    steps[s] = { ms };
  }
  {
    const mp = await stack.mountpoint('app');
    const [ms] = await timed(async () => {
      const [down] = await stopped(stack.name('app'), () =>
        bash(SQLITE_DBS.map((db) => `cp ${q(join(dir, db))} ${q(join(mp, db))} && rm -f ${q(join(mp, `${db}-wal`))} ${q(join(mp, `${db}-shm`))}`).join(' && ')),
      );
      downtimeMs.app = down;
      await stack.waitReady(['app']);
    });
    steps.app = { ms };
  }
  return { ms: now() - t0, steps, downtimeMs };
}

/** The Node flags on the CLI's first line (`#!/usr/bin/env -S node FLAGS`), as bot.sh runs it. */
export function nodeFlags(cli) {
  const first = readFileSync(cli, 'utf8').split('\n', 1)[0];
  return /^#!.*\bnode\b(.*)$/.exec(first)?.[1].trim().split(/\s+/).filter(Boolean) ?? [];
}

/**
 * Runs the stackvault CLI with `args` (and its Node flags), sampling the memory of its process tree; resolves with
 * the wall time, the parsed JSON on stdout and the peaks.
 */
export async function stackvault(cli, args) {
  let sampler;
  let rss;
  const t0 = now();
  let out;
  try {
    out = await run(process.execPath, [...nodeFlags(cli), cli, ...args], {
      label: `stackvault ${args.join(' ')}`,
      onSpawn: (child) => {
        sampler = sampleTree(child.pid);
      },
    });
  } finally {
    rss = sampler?.stop();
  }
  const ms = now() - t0;
  let json;
  try {
    json = JSON.parse(out);
  } catch {
    throw new Error(`stackvault ${args.join(' ')} printed no JSON: ${out.slice(0, 300)}`);
  }
  return { ms, json, rss };
}
