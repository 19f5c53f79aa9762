import { workerSink } from '../util/worker-sink.js';
import { randomBytes } from 'node:crypto';
import { pipeline as pipeStreams, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { DockerEngine } from '../docker/engine.js';
import { finished, teeTo } from '../util/backpressure.js';
import { type Fingerprint, firstDifference } from './fingerprint.js';
import { livePgFingerprint, PG_DUMP_END, PG_DUMP_ENV, PgDumpFingerprinter } from './pg-fingerprint.js';
import type { Driver } from './types.js';
import { recorded } from './details.js';
import { array, type Infer, object, optional, string } from '../util/schema.js';
import { isServer } from './recognise.js';
import { execChecked } from './exec.js';
import { PgRestoreFilter, quoteIdent } from './pg-restore-filter.js';

/**
 * PostgreSQL: `pg_dumpall --clean --if-exists` inside the container, as $POSTGRES_USER over
 * the local socket (trust auth in the official image, so no password is involved). The dump
 * streams out through the exec stream; the exec's exit code decides success.
 */
const SIGNS = {
  images: ['postgres', 'postgresql', 'postgis', 'timescaledb', 'timescaledb-ha', 'pgvector'],
  env: ['PG_MAJOR', 'PG_VERSION'],
  binaries: ['postgres', 'postmaster'],
};

/** The superuser the dump ran as (restores and throwaways use the same), and the databases it holds. */
const DETAILS = object({ superuser: optional(string), databases: optional(array(string)) });

export const postgresDriver: Driver<Infer<typeof DETAILS>> = {
  details: DETAILS,
  name: 'postgres',
  format: 'sql',
  artifactEnd: { text: PG_DUMP_END, what: "pg_dumpall's final line" },
  imageNames: SIGNS.images,
  recognise: (c) => isServer(c, SIGNS),

  secrets: (c) => [c.env.POSTGRES_PASSWORD, c.env.PGPASSWORD].filter((s): s is string => Boolean(s)),

  async backup({ engine, container, output }) {
    const user = superuser(container.env);
    const databases = (await sql(engine, container.id, user, 'postgres', 'SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1')).split('\n').filter(Boolean);
    // The content fingerprint is read off the dump's bytes as they stream past, on another
    // thread: hashing every row would otherwise hold up the reading.
    const fingerprinter = workerSink<{ fingerprint: Fingerprint; complete: boolean }>(new URL('./pg-fingerprint.js', import.meta.url), 'dumpFingerprintSink');
    const tee = teeTo(output, fingerprinter.writable);
    const result = await engine.exec(container.id, ['pg_dumpall', '-U', user, '--clean', '--if-exists', '--quote-all-identifiers'], { stdout: tee, env: PG_DUMP_ENV });
    // The exec is over once its stream is; the last chunks may still wait in the tee. The backup
    // is not written until they are in the output.
    await finished(tee);
    const { fingerprint, complete } = await fingerprinter.result;
    if (!complete) throw new Error("the dump ended without pg_dumpall's final line: it was cut off");
    if (result.exitCode !== 0) {
      throw new Error(`pg_dumpall exited with code ${result.exitCode}: ${firstLine(result.stderr) || 'no error output'}`);
    }
    return { details: { superuser: user, databases }, fingerprint };
  },

  /**
   * Afterwards the cluster holds exactly the dump: databases and roles created since the
   * backup are dropped, and the dump replays with ON_ERROR_STOP so any error stops it.
   */
  async restore({ engine, container, entry, open }) {
    const id = container.id;
    const user = superuser(container.env);
    const q = (db: string, query: string) => sql(engine, id, user, db, query);
    const version = Number(await q('postgres', 'SHOW server_version_num'));
    const inBackup = new Set([...(recorded(DETAILS, entry).databases ?? []), 'template0', 'template1', 'postgres']);
    const current = (await q('postgres', 'SELECT datname FROM pg_database ORDER BY 1')).split('\n').filter(Boolean);
    for (const db of current.filter((d) => !inBackup.has(d))) {
      await q('postgres', `DROP DATABASE ${quoteIdent(db)}${version >= 130000 ? ' WITH (FORCE)' : ''}`);
    }
    if (version < 130000) await q('postgres', 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname IS NOT NULL');

    const filter = new PgRestoreFilter(user, version >= 130000);
    const replay = await engine.exec(id, ['psql', '-U', user, '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-X', '-q'], {
      // pipeline, not pipe(): an artifact that fails mid-read fails psql's stdin, and so the exec.
      stdin: pipeStreams(open(), filter, () => undefined),
      env: { PGOPTIONS: '-c client_min_messages=warning' }, // NOTICEs ("does not exist, skipping") are noise here
    });
    if (replay.exitCode !== 0) throw new Error(`replaying the dump stopped at an error: ${errorLine(replay.stderr) || `psql exited ${replay.exitCode}`}`);

    const roles = (await q('postgres', "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 1")).split('\n').filter(Boolean);
    const extra = roles.filter((r) => !filter.roles.has(r) && r !== user);
    if (extra.length) {
      const dbs = (await q('postgres', 'SELECT datname FROM pg_database WHERE datallowconn')).split('\n').filter(Boolean);
      for (const db of dbs) await q(db, `DROP OWNED BY ${extra.map(quoteIdent).join(', ')}`);
      for (const role of extra) await q('postgres', `DROP ROLE ${quoteIdent(role)}`);
    }
  },

  /** The same superuser as the backed-up server, so the dump's ownership replays as it was. */
  throwaway: (entry) => ({ env: { POSTGRES_USER: recorded(DETAILS, entry).superuser ?? 'postgres', POSTGRES_PASSWORD: randomBytes(18).toString('base64url') } }),

  /** Replays the dump into a fresh server (ON_ERROR_STOP) and counts every table's rows. */
  async deepVerify(ctx) {
    const details = recorded(DETAILS, ctx.entry);
    const user = details.superuser ?? 'postgres';
    const expected = (details.databases ?? []).filter((d) => !d.startsWith('template')).sort();
    return ctx.inThrowaway(postgresDriver.throwaway!(ctx.entry), async (container) => {
      const q = (db: string, query: string) => sql(ctx.engine, container.id, user, db, query);
      const databases = (await q('postgres', 'SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1')).split('\n').filter(Boolean);
      const missing = expected.filter((d) => !databases.includes(d));
      if (missing.length) throw new Error(`databases missing after the replay: ${missing.join(', ')}`);
      const expectedFp = ctx.entry.fingerprint ?? (await postgresDriver.artifactFingerprint!({ ...ctx }));
      const fingerprint = await livePgFingerprint({ engine: ctx.engine, containerId: container.id, user, expected: expectedFp });
      const diff = firstDifference(expectedFp, fingerprint);
      if (diff) throw new Error(`the replayed copy does not hold the backup's content: ${diff}`);
      return { databases, rows: rowCounts(fingerprint), fingerprint: 'equal to the backup' };
    });
  },

  async plan(engine, container) {
    const size = await sql(engine, container.id, superuser(container.env), 'postgres', 'SELECT sum(pg_database_size(datname)) FROM pg_database WHERE datallowconn').catch(() => '');
    return { method: 'pg_dumpall, streamed from a consistent snapshot per database', interrupts: 'online', ...(size ? { estimatedBytes: Number(size) } : {}) };
  },

  /** The whole dump goes through the replay filter first, so a foreign command refuses the restore before it starts. */
  async checkRestore({ container, open }) {
    await pipeline(open(), new PgRestoreFilter(superuser(container.env), true), new Writable({ write: (_c, _e, cb) => cb() }));
  },

  /** Read off the dump on the host: COPY rows, sequences, large objects, databases, roles. */
  async artifactFingerprint({ open, entry }) {
    const fingerprinter = new PgDumpFingerprinter(entry.fingerprint);
    await pipeline(open(), fingerprinter.writable());
    return fingerprinter.result();
  },

  liveFingerprint: ({ engine, container, expected }) => livePgFingerprint({ engine, containerId: container.id, user: superuser(container.env), expected }),

  async ready(engine, container) {
    const r = await engine.exec(container.id, ['psql', '-U', superuser(container.env), '-d', 'postgres', '-AtXc', 'SELECT 1']);
    return r.exitCode === 0 && r.stdout.trim() === '1';
  },
};

/** Rows per database and table (`schema.table`), read off a fingerprint's table parts. */
function rowCounts(fp: Fingerprint): Record<string, Record<string, number>> {
  const rows: Record<string, Record<string, number>> = {};
  for (const [part, value] of Object.entries(fp.parts)) {
    const m = /^(.*)\/table "((?:[^"]|"")*)"\."((?:[^"]|"")*)"$/.exec(part);
    const n = /\bn=(\d+)/.exec(value);
    if (!m || !n) continue;
    const unq = (s: string) => s.replaceAll('""', '"');
    (rows[m[1]!] ??= {})[`${unq(m[2]!)}.${unq(m[3]!)}`] = Number(n[1]);
  }
  return rows;
}

export function superuser(env: Record<string, string>): string {
  return env.POSTGRES_USER || 'postgres';
}

function sql(engine: DockerEngine, id: string, user: string, db: string, query: string): Promise<string> {
  return execChecked(engine, id, ['psql', '-U', user, '-d', db, '-v', 'ON_ERROR_STOP=1', '-AtXq', '-c', query], `psql on ${db}`);
}

const firstLine = (text: string) => text.trim().split('\n')[0] ?? '';

/** The line that says what went wrong: psql prints `psql:<stdin>:12: ERROR:  ...`. */
const errorLine = (text: string) =>
  text
    .split('\n')
    .find((l) => /\b(ERROR|FATAL|PANIC):/.test(l))
    ?.trim() ?? firstLine(text);
