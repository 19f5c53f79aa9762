import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { pipeline as pipeStreams, Readable, Transform, type TransformCallback, Writable } from 'node:stream';
import { pipeline, finished as streamFinished } from 'node:stream/promises';
import type { DockerEngine } from '../docker/engine.js';
import { openSession } from '../docker/command-session.js';
import { finished, teeTo, writeWithRoom } from '../util/backpressure.js';
import { RefusalJudge, refusal } from '../util/refusal-judge.js';
import { TailKeeper } from '../util/tail-keeper.js';
import { type Fingerprint, firstDifference } from './fingerprint.js';
import { livePgFingerprint, PG_DUMP_END, PG_DUMP_ENV, PgDumpFingerprinter } from './pg-fingerprint.js';
import type { Driver } from './types.js';
import { recorded } from './details.js';
import { array, type Infer, object, optional, string } from '../util/schema.js';
import { isServer } from './recognise.js';
import { databaseArg, escapedName, fromHex, hexOf, isUtf8Name, nameBytes, RAW_NAMES_ENV, shownName, unescapedName } from './pg-names.js';
import { execChecked } from './exec.js';
import { PgRestoreFilter, psqlRestricts, quoteIdent, RESTRICT_RELEASES, type ReplayPsql } from './pg-restore-filter.js';

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

/**
 * The superuser the dump ran as (restores and throwaways use the same), the databases it holds,
 * and the encoding of the `postgres` database, in which a replay creates the roles and drops the
 * databases (a throwaway is made in it, so names that are not UTF-8 replay there too).
 * `databases` holds the names that are UTF-8, as their text; `databasesNotUtf8` the others, as
 * escapedName (`caf\xe9`). Versions before this key (commit b31ea60) wrote every name into `databases`, a byte
 * that is not UTF-8 as U+FFFD; they read a newer manifest's `databases` as ever and pass over
 * the other key (details keep keys a schema does not name).
 */
const DETAILS = object({ superuser: optional(string), databases: optional(array(string)), databasesNotUtf8: optional(array(string)), encoding: optional(string) });

/** The databases a backup holds, as the bytes the server names them by (see DETAILS). */
const recordedNames = (details: Infer<typeof DETAILS>) => [...(details.databases ?? []).map(nameBytes), ...(details.databasesNotUtf8 ?? []).map(unescapedName)];

export const postgresDriver: Driver<Infer<typeof DETAILS>, ContainerPsql> = {
  details: DETAILS,
  name: 'postgres',
  format: 'sql',
  artifactEnd: { text: PG_DUMP_END, what: "pg_dumpall's final line" },
  imageNames: SIGNS.images,
  recognise: (c) => isServer(c, SIGNS),

  secrets: (c) => [c.env.POSTGRES_PASSWORD, c.env.PGPASSWORD].filter((s): s is string => Boolean(s)),

  async backup({ engine, container, output, recordFingerprint }) {
    const user = superuser(container.env);
    const { databases, encoding } = await recordedDatabases((db, query) => sql(engine, container.id, user, db, query));
    const fingerprinter = dumpTap(recordFingerprint !== false);
    const judge = await restoreJudge(engine, container.id, user);
    const tee = teeTo(output, fingerprinter.writable, judge);
    const result = await engine.exec(container.id, ['pg_dumpall', '-U', user, '--clean', '--if-exists', '--quote-all-identifiers'], { stdout: tee, env: PG_DUMP_ENV });
    // The exec is over once its stream is; the last chunks may still wait in the tee. The backup
    // is not written until they are in the output.
    await finished(tee);
    const { fingerprint, complete } = await fingerprinter.result;
    // pg_dumpall's own error first: a dump it gave up on is cut off too, and its error says why.
    if (result.exitCode !== 0) {
      throw new Error(dumpFailure('pg_dumpall', result.exitCode, result.stderr));
    }
    if (!complete) throw new Error("the dump ended without pg_dumpall's final line: it was cut off");
    return { details: { superuser: user, ...databases, ...(encoding ? { encoding } : {}) }, ...(fingerprint ? { fingerprint } : {}), ...refusal(judge) };
  },

  /**
   * Consistent backups: one exported snapshot per database. Before the window a psql session
   * per database connects and opens a REPEATABLE READ transaction (which takes its snapshot
   * at its first query); inside the window each runs `pg_export_snapshot()`, so every
   * database's point lies in the window; after it, `pg_dump --snapshot` dumps each database
   * from its point while the session holds the transaction open. The artifact is what
   * pg_dumpall writes (globals, DROP DATABASE, then each database as it runs pg_dump), so it
   * is checked, fingerprinted and restored as any other.
   *
   * What the sessions cannot hold is checked around them: the databases are listed again as
   * the first session's snapshot sees them (pg_database is a catalog, read at the point), and a
   * database created after the sessions opened fails the service rather than be left out; the
   * roles (pg_dumpall --globals-only, which takes no snapshot) are read before the window and
   * as soon as it has closed, and a change between the two is said in a warning.
   */
  async prepareSnapshot({ engine, container, signal, recordFingerprint }) {
    const user = superuser(container.env);
    const q = (db: string, query: string) => sql(engine, container.id, user, db, query);
    const { databases, encoding } = await recordedDatabases(q);
    // pg_dumpall's own list and order (template1 first), as the names' bytes.
    const dumped = await names(q, 'postgres', 'datname', "pg_database WHERE datallowconn AND datconnlimit <> -2 ORDER BY (datname <> 'template1'), datname");
    const rolesBefore = await pgDumpallGlobals(engine, container.id, user);
    const sessions: PsqlSession[] = [];
    const release = () => Promise.all(sessions.map((s) => s.close())).then(() => undefined);
    try {
      for (const db of dumped) {
        const session = psqlSession(engine, container.id, user, db, signal);
        sessions.push(session);
        session.send("SELECT 'stackvault:ready';\nBEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\n");
        await session.line(/^stackvault:ready$/);
      }
    } catch (err) {
      await release();
      throw err;
    }
    const snapshots = new Map<string, string>();
    let rolesAfter: Promise<{ head: Buffer; tail: Buffer }> | undefined;
    return {
      async fix() {
        await Promise.all(
          dumped.map(async (db, i) => {
            sessions[i]!.send('SELECT pg_export_snapshot();\n');
            snapshots.set(db, await sessions[i]!.line(/^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$/));
          }),
        );
      },
      afterWindow() {
        // Read as the window closes (not when this store's turn to stream comes, maybe minutes
        // later): a role dropped meanwhile would be missing for objects the dump still gives it.
        // Not inside the window: an exec there competes with the other stores' points.
        rolesAfter = pgDumpallGlobals(engine, container.id, user);
        rolesAfter.catch(() => undefined); // awaited in backup
      },
      async backup(output) {
        if (snapshots.size !== dumped.length) throw new Error('the snapshot points were not fixed');
        const atPoint = await databasesSeenBy(sessions[0]!);
        const added = atPoint.filter((d) => !dumped.includes(d));
        if (added.length) {
          throw new Error(`the database ${added.map((d) => JSON.stringify(shownName(d))).join(', ')} was created while the backup got ready, so it has no snapshot at the point; run the backup again`);
        }
        const globals = await (rolesAfter ??= pgDumpallGlobals(engine, container.id, user));
        const warnings = sameRoles(rolesBefore, globals)
          ? []
          : ['roles or tablespaces changed around the consistency window (between getting ready and just after it): the backup holds them as they were just after it'];
        const fingerprinter = dumpTap(recordFingerprint !== false);
        fingerprinter.result.catch(() => undefined); // awaited below, unless the dump failed first
        const judge = await restoreJudge(engine, container.id, user);
        const tee = teeTo(output, fingerprinter.writable, judge);
        const write = (bytes: Buffer) => new Promise<void>((resolve, reject) => writeWithRoom(tee, bytes, (err) => (err ? reject(err) : resolve())));
        try {
          await write(withDroppedDatabases(globals.head, dumped));
          for (const db of dumped) {
            // A comment line, as pg_dumpall writes it (the name's bytes); a line break in the name must not end it.
            await write(Buffer.from(`--\n-- Database "${db.replace(/[\r\n]/g, ' ')}" dump\n--\n\n`, 'latin1'));
            // As pg_dumpall runs it: template1 and postgres exist on any server, so they are dropped and created again.
            const create = db === 'template1' || db === 'postgres' ? ['--clean', '--create'] : ['--create'];
            const r = await engine.exec(container.id, ['pg_dump', '-U', user, '-Fp', '--quote-all-identifiers', ...create, `--snapshot=${snapshots.get(db)!}`, '-d', databaseArg(db)], {
              stdout: tee,
              env: PG_DUMP_ENV,
            });
            if (r.exitCode !== 0) throw new Error(dumpFailure(`pg_dump of ${shownName(db)}`, r.exitCode, r.stderr));
            // Dumped: its point is no longer needed. A session on template1 keeps CREATE DATABASE from copying it.
            await sessions[dumped.indexOf(db)]!.close();
          }
          await write(globals.tail);
        } finally {
          await finished(tee).catch(() => undefined);
        }
        const { fingerprint, complete } = await fingerprinter.result;
        if (!complete) throw new Error("the assembled dump lacks pg_dumpall's final line");
        return {
          details: { superuser: user, ...databases, ...(encoding ? { encoding } : {}), snapshots: dumped.length },
          ...(fingerprint ? { fingerprint } : {}),
          ...(warnings.length ? { warnings } : {}),
          ...refusal(judge),
        };
      },
      release: async () => {
        await rolesAfter?.catch(() => undefined);
        await release();
      },
    };
  },

  /**
   * Afterwards the cluster holds exactly the dump: databases and roles created since the
   * backup are dropped, and the dump replays with ON_ERROR_STOP so any error stops it.
   */
  async restore({ engine, container, entry, open, log, checked }) {
    const id = container.id;
    const user = superuser(container.env);
    // Before anything changes: a psql whose version cannot be read is refused. checkRestore
    // read it already in a restore; a throwaway server (deep verify) has had no check.
    const psql = checked ?? (await replayPsql(engine, id));
    if (!psql.restrictKey) {
      log(
        `warning: ${psql.versionLine} cannot restrict its own commands (\\restrict came with ${RESTRICT_RELEASES}): only stackvault's reading of the dump keeps psql commands out of it, and it refuses whatever an older psql could read otherwise; update the image`,
      );
    }
    const q = (db: string, query: string) => sql(engine, id, user, db, query);
    const version = Number(await q('postgres', 'SHOW server_version_num'));
    // The dump sets every role's password as it was backed up, the superuser's too: compared
    // (as a digest) with the one before, so a password changed since is said, not left to be
    // found by an app that no longer logs in.
    const password = () => q('postgres', "SELECT coalesce(md5(rolpassword), '') FROM pg_authid WHERE rolname = current_user").catch(() => undefined);
    const passwordBefore = await password();
    // Compared as bytes. A backup of a version before databasesNotUtf8 recorded a name whose bytes are
    // not UTF-8 with replacement characters, so it is not found here and is dropped now, which
    // changes nothing: the dump drops and creates every database it holds.
    const inBackup = new Set([...recordedNames(recorded(DETAILS, entry)), 'template0', 'template1', 'postgres']);
    const current = await names(q, 'postgres', 'datname', 'pg_database');
    for (const db of current.filter((d) => !inBackup.has(d))) {
      await q('postgres', `DROP DATABASE ${quoteIdent(db)}${version >= 130000 ? ' WITH (FORCE)' : ''}`);
    }
    if (version < 130000) await q('postgres', 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname IS NOT NULL');

    const filter = new PgRestoreFilter(user, version >= 130000, psql);
    const replay = await engine.exec(id, ['psql', '-U', user, '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-X', '-q'], {
      // pipeline, not pipe(): an artifact that fails mid-read fails psql's stdin, and so the exec.
      stdin: pipeStreams(open(), filter, () => undefined),
      env: { PGOPTIONS: '-c client_min_messages=warning' }, // NOTICEs ("does not exist, skipping") are noise here
    });
    if (replay.exitCode !== 0) throw new Error(`replaying the dump stopped at an error: ${errorLine(replay.stderr) || `psql exited ${replay.exitCode}`}`);
    const passwordAfter = await password();
    if (passwordBefore !== undefined && passwordAfter !== undefined && passwordBefore !== passwordAfter) {
      log(
        `warning: the password of ${user} (the superuser POSTGRES_USER names) was set back to the one in this backup: if it was changed since (POSTGRES_PASSWORD on a new volume, ALTER ROLE), clients that log in with the newer one are refused until it is set again (ALTER ROLE ... PASSWORD)`,
      );
    }

    const roles = await rows(q, 'postgres', `SELECT oid, ${hexOf('rolname')} FROM pg_roles WHERE rolname !~ '^pg_'`);
    const extra = roles.map(([oid, hex]) => ({ oid: oid!, name: fromHex(hex!) })).filter((r) => !filter.roles.has(r.name) && r.name !== nameBytes(user));
    if (extra.length) {
      const dbs = await rows(q, 'postgres', `SELECT ${hexOf('datname')}, pg_encoding_to_char(encoding) FROM pg_database WHERE datallowconn`);
      for (const [hex, encoding] of dbs) await q(fromHex(hex!), dropRoles('DROP OWNED BY', extra, encoding!));
      await q('postgres', dropRoles('DROP ROLE', extra, dbs.find(([hex]) => fromHex(hex!) === 'postgres')?.[1] ?? 'UTF8'));
    }
  },

  /**
   * The same superuser as the backed-up server, so the dump's ownership replays as it was, and
   * made in the encoding of its `postgres` database if that is not UTF-8 (a SQL_ASCII cluster's
   * role and database names need not be UTF-8, and a UTF-8 database refuses them). The C locale
   * goes with every encoding; the dump creates `postgres` and `template1` again with their own.
   */
  throwaway: (entry) => {
    const { superuser: user, encoding } = recorded(DETAILS, entry);
    return {
      env: {
        POSTGRES_USER: user ?? 'postgres',
        POSTGRES_PASSWORD: randomBytes(18).toString('base64url'),
        ...(encoding && encoding !== 'UTF8' ? { POSTGRES_INITDB_ARGS: `--encoding=${encoding} --locale=C` } : {}),
      },
    };
  },

  /** Replays the dump into a fresh server (ON_ERROR_STOP) and counts every table's rows. */
  async deepVerify(ctx) {
    const details = recorded(DETAILS, ctx.entry);
    const user = details.superuser ?? 'postgres';
    const expected = recordedNames(details).filter((d) => !d.startsWith('template'));
    return ctx.inThrowaway(postgresDriver.throwaway!(ctx.entry), async (container) => {
      const q = (db: string, query: string) => sql(ctx.engine, container.id, user, db, query);
      const replayed = await names(q, 'postgres', 'datname', 'pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1');
      // By bytes; and, for an earlier version's record (U+FFFD for each byte that is not UTF-8), by that text.
      const legacy = new Set(replayed.map((d) => nameBytes(Buffer.from(d, 'latin1').toString('utf8'))));
      const missing = expected.filter((d) => !replayed.includes(d) && !legacy.has(d)).map(shownName);
      if (missing.length) throw new Error(`databases missing after the replay: ${missing.join(', ')}`);
      const databases = replayed.map(shownName);
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

  /**
   * The whole dump goes through the replay filter first, so a foreign command refuses the
   * restore before it starts. So does a server the dump cannot come back to exactly: an older
   * major version than the pg_dump that wrote it (a 17 dump stops at 17's `SET
   * transaction_timeout` on 13, after the databases were dropped), or a superuser the backup
   * does not hold (the server's own superuser cannot be dropped, so the roles would differ).
   */
  async checkRestore({ engine, container, entry, open, check }) {
    const psql = await replayPsql(engine, container.id);
    const user = superuser(container.env);
    const filter = new PgRestoreFilter(user, true, psql);
    const dumpedBy = new DumpedBy();
    await pipeline(open(), dumpedBy, filter, new Writable({ write: (_c, _e, cb) => cb() }));
    const server = Math.floor(Number(await sql(engine, container.id, user, 'postgres', 'SHOW server_version_num')) / 10000);
    if (dumpedBy.major !== undefined && Number.isInteger(server) && server < dumpedBy.major) {
      throw new Error(
        `it was dumped by pg_dump ${dumpedBy.major} and ${container.name} runs PostgreSQL ${server}: a dump does not load into an older major version than the one that wrote it; restore it into PostgreSQL ${dumpedBy.major} or newer`,
      );
    }
    if (check !== false && !filter.roles.has(nameBytes(user))) {
      const backedUp = recorded(DETAILS, entry).superuser;
      throw new Error(
        `its roles do not include ${user}, the superuser ${container.name} runs as (POSTGRES_USER), which a restore cannot drop, so the roles would not come back as backed up; start the server with POSTGRES_USER=${backedUp ?? 'the backed-up superuser'} on an empty volume, or restore with --no-check to keep ${user} beside them`,
      );
    }
    return psql; // restore replays through the same psql: it is not asked again
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

/**
 * The restore's own reading of the dump (PgRestoreFilter, through this container's psql),
 * applied as the dump is written: a dump the restore would refuse is known now, not when it is
 * needed (a restore into this container uses this psql).
 */
async function restoreJudge(engine: DockerEngine, id: string, user: string): Promise<RefusalJudge> {
  return new RefusalJudge(new PgRestoreFilter(user, true, await replayPsql(engine, id)));
}

/**
 * Passes a dump on unchanged and reads the major version of the pg_dump that wrote it from its
 * first `-- Dumped by pg_dump version N` line, looked for in the first MiB only (after the roles,
 * before the first database's data); undefined when it is not there.
 */
class DumpedBy extends Transform {
  major: number | undefined;
  /** The start of the line the last chunk ended in: only it can still complete a match. */
  private head = '';
  private seen = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.major === undefined && this.seen <= 1 << 20) {
      this.seen += chunk.length;
      const text = this.head + chunk.toString('latin1');
      const m = /^-- Dumped by pg_dump version (\d+)/m.exec(text);
      if (m) this.major = Number(m[1]);
      // The version is within a line's first 40 bytes: a longer line start is kept short.
      this.head = text.slice(text.lastIndexOf('\n') + 1).slice(0, 64);
    }
    cb(null, chunk);
  }
}

/**
 * What watches a dump as it streams past: its content fingerprint and whether pg_dumpall's
 * final line went by; without a fingerprint (a restore point), only the dump's last bytes, to
 * look for that line. The fingerprint is read on the main thread: 350 MB/s of one core here,
 * faster than pg_dump writes. On another thread (as before) the whole `create` took more CPU
 * (14.1-14.7 s against 12.8-13.1 s), longer (12.6-12.7 s against 11.7-12.1 s) and more
 * memory (188-192 MB against 161-173 MB): each chunk was copied into a message, and a worker
 * thread costs 18 MB before it does anything. `result` settles once the Writable has finished,
 * and fails if it failed or was cut off first.
 */
function dumpTap(withFingerprint: boolean): { writable: Writable; result: Promise<{ fingerprint?: Fingerprint; complete: boolean }> } {
  const watch = <R>(writable: Writable, read: () => R) => {
    const result = streamFinished(writable).then(read);
    result.catch(() => undefined); // the caller reads it after the dump; a failure also fails the Writable
    return { writable, result };
  };
  if (!withFingerprint) {
    const tail = new TailKeeper();
    return watch(tail, () => ({ complete: tail.text().includes(`\n${PG_DUMP_END}\n`) }));
  }
  const fingerprinter = new PgDumpFingerprinter();
  return watch(fingerprinter.writable(), () => ({ fingerprint: fingerprinter.result(), complete: fingerprinter.complete }));
}

/** Rows per database and table (`schema.table`), read off a fingerprint's table parts. */
function rowCounts(fp: Fingerprint): Record<string, Record<string, number>> {
  const rows: Record<string, Record<string, number>> = {};
  for (const [part, value] of Object.entries(fp.parts)) {
    const m = /^(.*)\/table "((?:[^"]|"")*)"\."((?:[^"]|"")*)"$/.exec(part);
    const n = /\bn=(\d+)/.exec(value);
    if (!m || !n) continue;
    const unq = (s: string) => shownName(s.replaceAll('""', '"')); // part names are bytes
    (rows[shownName(m[1]!)] ??= {})[`${unq(m[2]!)}.${unq(m[3]!)}`] = Number(n[1]);
  }
  return rows;
}

/** A psql session kept open in the container: statements go in on its stdin, lines come back. */
interface PsqlSession {
  send(statements: string): void;
  /** The next output line matching `pattern` (earlier lines are skipped); rejects if psql ends first. */
  line(pattern: RegExp): Promise<string>;
  /** Ends its input (so psql ends its transaction and exits) and waits for it. */
  close(): Promise<void>;
}

function psqlSession(engine: DockerEngine, id: string, user: string, db: string, signal: AbortSignal): PsqlSession {
  // SQL_ASCII: databasesSeenBy's names come as their bytes (the session prints nothing else but ASCII).
  const session = openSession(engine, id, ['psql', '-U', user, '-d', databaseArg(db), '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1'], {
    signal,
    env: RAW_NAMES_ENV,
    label: `the psql session holding the snapshot of ${shownName(db)}`,
  });
  return {
    send: (statements) => session.send(statements),
    // Only psql's short answers come out here (no data): text.
    line: async (pattern) => {
      for (;;) {
        const line = (await session.readUntil('\n')).toString('utf8');
        if (pattern.test(line)) return line;
      }
    },
    close: async () => {
      await session.close();
    },
  };
}

/**
 * The databases pg_dumpall would dump, as the session's transaction sees them: after its
 * snapshot is taken, the list as of that point. Names travel as hex, so any name comes back whole.
 */
async function databasesSeenBy(session: PsqlSession): Promise<string[]> {
  session.send(`SELECT 'stackvault:databases:' || coalesce(string_agg(${hexOf('datname')}, ',' ORDER BY datname), '') FROM pg_database WHERE datallowconn AND datconnlimit <> -2;\n`);
  const line = await session.line(/^stackvault:databases:[0-9a-f,]*$/);
  const hex = line.slice('stackvault:databases:'.length);
  return hex ? hex.split(',').map(fromHex) : [];
}

/**
 * Whether two reads of the globals say the same, apart from the random key of the
 * `\restrict` and `\unrestrict` lines that pg_dumpall writes anew each time.
 */
function sameRoles(a: { head: Buffer; tail: Buffer }, b: { head: Buffer; tail: Buffer }): boolean {
  const restrictLine = /^\\(un)?restrict [A-Za-z0-9]+$/;
  const strip = (g: { head: Buffer; tail: Buffer }) =>
    Buffer.concat([g.head, g.tail])
      .toString('latin1')
      .split('\n')
      .filter((l) => !restrictLine.test(l))
      .join('\n');
  return strip(a) === strip(b);
}

/** `pg_dumpall --globals-only`, cut before its final line: the assembled dump puts the databases there. */
async function pgDumpallGlobals(engine: DockerEngine, id: string, user: string): Promise<{ head: Buffer; tail: Buffer }> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  const r = await engine.exec(id, ['pg_dumpall', '-U', user, '--globals-only', '--clean', '--if-exists', '--quote-all-identifiers'], { stdout: sink, env: PG_DUMP_ENV });
  if (r.exitCode !== 0) throw new Error(`pg_dumpall --globals-only exited with code ${r.exitCode}: ${firstLine(r.stderr) || 'no error output'}`);
  const globals = Buffer.concat(chunks);
  const end = globals.lastIndexOf(Buffer.from(`--\n${PG_DUMP_END}\n`));
  if (end < 0) throw new Error('pg_dumpall --globals-only ended without its final line: it was cut off');
  return { head: Buffer.concat([globals.subarray(0, end), Buffer.from('--\n-- Databases\n--\n\n')]), tail: globals.subarray(end) };
}

/** The globals with pg_dumpall's DROP DATABASE section where it writes it: before the roles are dropped. `databases`: the names' bytes. */
function withDroppedDatabases(head: Buffer, databases: string[]): Buffer {
  const drops = databases.filter((d) => !['template0', 'template1', 'postgres'].includes(d)).map((d) => `DROP DATABASE IF EXISTS ${quoteIdent(d)};\n`);
  const section = Buffer.from(`--\n-- Drop databases (except postgres and template1)\n--\n\n${drops.join('')}\n\n`, 'latin1');
  let at = head.indexOf(Buffer.from('--\n-- Drop roles\n--\n'));
  if (at < 0) at = head.indexOf(Buffer.from('--\n-- Databases\n--\n'));
  if (head.subarray(at - 2, at).equals(Buffer.from('\n\n'))) at -= 2;
  return Buffer.concat([head.subarray(0, at), section, head.subarray(at)]);
}

export function superuser(env: Record<string, string>): string {
  return env.POSTGRES_USER || 'postgres';
}

/**
 * Runs a statement in a database: both are bytes through latin1 (names in them are the server's
 * bytes, pg-names.ts). The statement goes in on psql's stdin, not its command line, which is text;
 * in SQL_ASCII, so the server takes its bytes as they are.
 */
function sql(engine: DockerEngine, id: string, user: string, db: string, query: string): Promise<string> {
  return execChecked(engine, id, ['psql', '-U', user, '-d', databaseArg(db), '-v', 'ON_ERROR_STOP=1', '-AtXq'], `psql on ${shownName(db)}`, {
    env: RAW_NAMES_ENV,
    stdin: Readable.from([Buffer.from(`${query};\n`, 'latin1')]),
  });
}

/**
 * The names a catalog query lists (`SELECT column FROM from`), as the bytes the server holds
 * (through latin1): each comes as hex, one a line, whatever bytes it holds.
 */
async function names(q: (db: string, query: string) => Promise<string>, db: string, column: string, from: string): Promise<string[]> {
  const hex = await q(db, `SELECT ${hexOf(column)} FROM ${from}`);
  return hex.split('\n').filter(Boolean).map(fromHex);
}

/**
 * `DROP OWNED BY` or `DROP ROLE` of these roles, in a database of this encoding. A role's name
 * is the bytes of the session that made it: one made in a SQL_ASCII or LATIN1 database need not
 * be UTF-8, and a UTF8 database refuses such bytes in any statement. There the server names the
 * roles itself, by oid (PL/pgSQL, in every database unless someone dropped it).
 */
function dropRoles(what: 'DROP OWNED BY' | 'DROP ROLE', roles: Array<{ oid: string; name: string }>, encoding: string): string {
  if (encoding !== 'UTF8' || roles.every((r) => isUtf8(Buffer.from(r.name, 'latin1')))) return `${what} ${roles.map((r) => quoteIdent(r.name)).join(', ')}`;
  const oids = roles.map((r) => Number(r.oid)).join(', ');
  return `DO $$BEGIN EXECUTE (SELECT '${what} ' || string_agg(quote_ident(rolname), ', ') FROM pg_roles WHERE oid IN (${oids})); END$$`;
}

/** The rows of a query that selects only hexOf columns and plain ASCII ones (fields split at `|`, rows at line breaks). */
async function rows(q: (db: string, query: string) => Promise<string>, db: string, query: string): Promise<string[][]> {
  return (await q(db, query))
    .split('\n')
    .filter(Boolean)
    .map((row) => row.split('|'));
}

/**
 * The databases a backup records (the ones pg_dumpall dumps and some it does not), as DETAILS
 * holds them, and the encoding of `postgres` (one query: a backup waits for each).
 */
async function recordedDatabases(q: (db: string, query: string) => Promise<string>): Promise<{ databases: Pick<Infer<typeof DETAILS>, 'databases' | 'databasesNotUtf8'>; encoding?: string }> {
  const found = await rows(q, 'postgres', `SELECT ${hexOf('datname')}, CASE WHEN datname = 'postgres' THEN pg_encoding_to_char(encoding) END FROM pg_database WHERE datallowconn ORDER BY datname`);
  const encoding = found.find(([, e]) => e)?.[1];
  const all = found.map(([hex]) => fromHex(hex!));
  const notUtf8 = all.filter((d) => !isUtf8Name(d));
  return {
    databases: {
      databases: all.filter(isUtf8Name).map((d) => Buffer.from(d, 'latin1').toString('utf8')),
      ...(notUtf8.length ? { databasesNotUtf8: notUtf8.map(escapedName) } : {}),
    },
    encoding: encoding && /^[A-Z0-9_]+$/.test(encoding) ? encoding : undefined,
  };
}

const firstLine = (text: string) => text.trim().split('\n')[0] ?? '';

/**
 * Why pg_dump (or pg_dumpall) gave up. Its first line ("Dumping the contents of table "t"
 * failed: PQgetResult() failed.") often hides the cause, which the server's error and hint
 * lines below it say; two limits of PostgreSQL itself that a big database reaches get a
 * sentence that says what to do, since nothing stackvault can do gets such a database dumped.
 */
function dumpFailure(tool: string, exitCode: number, stderr: string): string {
  // COPY builds each row's text in one buffer, which PostgreSQL caps at 1 GB (MaxAllocSize).
  if (/Cannot enlarge string buffer/.test(stderr)) {
    const table = /Dumping the contents of table "(.*)" failed/.exec(stderr)?.[1];
    return `${tool} failed: a row${table ? ` of table "${table}"` : ''} is over 1 GB as text (bytea counts twice its size, as hex), more than PostgreSQL can send as one row, so no pg_dump can dump it; keep values this big in large objects or files, not in one row`;
  }
  // pg_dump holds a lock on every table of a database until it is done.
  if (/out of shared memory/.test(stderr) && /max_locks_per_transaction/.test(stderr)) {
    return `${tool} failed: pg_dump locks every table of a database at once, and a database has more tables than the server's lock table holds (max_locks_per_transaction x max_connections); start PostgreSQL with a higher max_locks_per_transaction (e.g. \`postgres -c max_locks_per_transaction=1024\` as the service's command) and back up again`;
  }
  const first = firstLine(stderr);
  const server = /Error message from server: (.*)/.exec(stderr)?.[1]?.trim();
  return `${tool} exited with code ${exitCode}: ${first || 'no error output'}${server && !first.includes(server) ? ` (${server})` : ''}`;
}

/** The line that says what went wrong: psql prints `psql:<stdin>:12: ERROR:  ...`. */
const errorLine = (text: string) =>
  text
    .split('\n')
    .find((l) => /\b(ERROR|FATAL|PANIC):/.test(l))
    ?.trim() ?? firstLine(text);

/** The container's psql: what the replay filter must know, and the line it printed. */
type ContainerPsql = ReplayPsql & { versionLine: string };

/**
 * The container's psql as the replay filter must know it: its major version, and a key for its
 * own guard if it has \restrict (hex: letters and digits, as \restrict wants; random per
 * restore, so no dump can hold it). A psql whose version cannot be read is refused: the filter
 * must read the dump as that psql does.
 */
async function replayPsql(engine: DockerEngine, id: string): Promise<ContainerPsql> {
  const versionLine = await execChecked(engine, id, ['psql', '--version'], 'psql --version');
  const major = Number(/\(PostgreSQL\) (\d+)/.exec(versionLine)?.[1]);
  if (!Number.isInteger(major)) throw new Error(`cannot tell the version of the container's psql from ${JSON.stringify(versionLine.slice(0, 80))}; refusing to replay a dump through it`);
  return { versionLine, major, ...(psqlRestricts(versionLine) ? { restrictKey: randomBytes(24).toString('hex') } : {}) };
}
