import { createHash, randomBytes } from 'node:crypto';
import { pipeline as pipeStreams, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type ContainerDetails, type DockerEngine, foreignText } from '../docker/engine.js';
import { finished, teeTo } from '../util/backpressure.js';
import { RefusalJudge, refusal } from '../util/refusal-judge.js';
import { TailKeeper } from '../util/tail-keeper.js';
import { atLeastPatchInSeries, type FirstFixedPatch } from '../util/version-series.js';
import { execChecked } from './exec.js';
import { type Fingerprint, firstDifference } from './fingerprint.js';
import { exponentOpen, numberRunIntoWord, type ProgramToken, refused, StoredProgram } from './mariadb-program.js';
import { isServer } from './recognise.js';
import type { Driver } from './types.js';
import { array, type Infer, object, optional, string } from '../util/schema.js';

/**
 * MariaDB and MySQL: `mariadb-dump` (or `mysqldump`) of every database in one consistent
 * InnoDB snapshot (--single-transaction), with routines, events, triggers and the `mysql`
 * schema (users and grants), run inside the container as root over the unix socket. No
 * password on any command line: the official mariadb image lets root@localhost in over the
 * socket, and where a root password is set it goes to the client in MYSQL_PWD (the exec's
 * environment, not its argv).
 */
const SIGNS = {
  images: ['mariadb', 'mysql', 'mysql-server', 'percona-server', 'percona'],
  env: ['MARIADB_VERSION', 'MARIADB_MAJOR', 'MYSQL_MAJOR'],
  binaries: ['mariadbd', 'mysqld'],
};
/** Schemas of the server itself; `mysql` is in the dump (users, grants) but never dropped. */
const SYSTEM_SCHEMAS = ['mysql', 'information_schema', 'performance_schema', 'sys'];
const DUMP_END = '-- Dump completed';
const FINGERPRINT_METHOD = 'mariadb-checksum-v1';
/** The privilege tables whose content is the users and grants. */
const PRIVILEGE_TABLES = ['global_priv', 'db', 'tables_priv', 'columns_priv', 'procs_priv', 'proxies_priv', 'roles_mapping'];

/** The databases the dump holds. */
const DETAILS = object({ databases: optional(array(string)) });

export const mariadbDriver: Driver<Infer<typeof DETAILS>> = {
  details: DETAILS,
  name: 'mariadb',
  format: 'sql',
  artifactEnd: { text: DUMP_END, what: "mariadb-dump's final line" },
  imageNames: SIGNS.images,
  recognise: (c) => isServer(c, SIGNS),

  secrets: (c) => ['MARIADB_ROOT_PASSWORD', 'MYSQL_ROOT_PASSWORD', 'MARIADB_PASSWORD', 'MYSQL_PASSWORD', 'MYSQL_PWD'].map((k) => c.env[k]).filter((s): s is string => Boolean(s)),

  async backup({ engine, container, output }) {
    const databases = await userDatabases(engine, container);
    const tail = new TailKeeper();
    const judge = new RefusalJudge(new HostileSqlFilter());
    const tee = teeTo(output, tail, judge);
    const result = await engine.exec(container.id, client('dump', DUMP_ARGS), { stdout: tee, env: auth(container) });
    return dumpOutcome(result, tee, tail, judge, databases);
  },

  /**
   * Consistent backups: mariadb-dump's own snapshot (START TRANSACTION WITH CONSISTENT
   * SNAPSHOT, at its start) is the point. The dump starts inside the window, and the window
   * holds until its output shows the first database (written only after that statement, so
   * the point lies in the window; stdout's buffering can only make it later); the rest of the
   * dump streams after it.
   */
  async prepareSnapshot({ engine, container, output }) {
    const databases = await userDatabases(engine, container);
    const tail = new TailKeeper(Buffer.from('\n-- Current Database: '));
    const judge = new RefusalJudge(new HostileSqlFilter());
    const tee = teeTo(output, tail, judge);
    let dump: ReturnType<DockerEngine['exec']> | undefined;
    return {
      async fix() {
        dump = engine.exec(container.id, client('dump', DUMP_ARGS), { stdout: tee, env: auth(container) });
        dump.catch(() => undefined); // awaited in backup or release
        await Promise.race([tail.seen, dump.then(() => undefined)]);
      },
      async backup() {
        if (!dump) throw new Error('the snapshot point was not fixed');
        return dumpOutcome(await dump, tee, tail, judge, databases);
      },
      release: async () => {
        await dump?.catch(() => undefined);
      },
    };
  },

  /**
   * Afterwards the server holds exactly the dump: every user database is dropped first (those
   * created since the backup included), the dump replays and stops at its first error, and the
   * `mysql` schema's privilege tables come back whole, so users created since are gone too.
   */
  async restore({ engine, container, open, log }) {
    // Before anything changes: a client without the sandbox command stops at the dump's first
    // line, so that line is left out of its replay (the filter and --binary-mode still guard).
    const sandbox = clientHasSandbox((await engine.exec(container.id, client('sql', ['--version']), { env: auth(container) })).stdout);
    // The server refuses a statement longer than its max_allowed_packet (16 MB unless configured;
    // a throwaway server has that), and mariadb-dump writes a row as one INSERT of up to 1 GB
    // (twice the row, in hex). That setting is read-only in a session, which takes the server's
    // value when it connects: so the server's is raised just before the replay's client connects,
    // and that session's first statement (its init command) sets the server's back, keeping its
    // own. A stackvault killed during the replay thus leaves the server's setting as it was. The
    // client is given the largest too, for clients that check what they send (the MariaDB 10.5
    // and 11.8 clients do not).
    const packet = Number(await sql(engine, container, 'SELECT @@global.max_allowed_packet'));
    const raise = Number.isSafeInteger(packet) && packet > 0 && packet < MAX_PACKET;
    const credentialsBefore = await credentials(engine, container);
    for (const db of await userDatabases(engine, container)) await sql(engine, container, `DROP DATABASE ${quoteIdent(db)}`);
    if (raise) await sql(engine, container, `SET GLOBAL max_allowed_packet = ${MAX_PACKET}`);
    try {
      const done = () => undefined;
      // The client's error comes after it echoes the failing statement (11.8), which can be a long one.
      // Kept as bytes and decoded once: a character split across two chunks stays whole.
      let tail = Buffer.alloc(0);
      const init = raise ? `SET GLOBAL max_allowed_packet = ${packet}, SESSION ${RESTORE_SQL_MODE}` : RESTORE_SESSION_MODE;
      const replay = await engine.exec(container.id, client('sql', ['--binary-mode', '--default-character-set=utf8mb4', `--max-allowed-packet=${MAX_PACKET}`, `--init-command=${init}`]), {
        // pipeline, not pipe(): an artifact that fails mid-read fails the client's stdin, and so the exec.
        stdin: sandbox ? pipeStreams(open(), new HostileSqlFilter(), done) : pipeStreams(open(), new HostileSqlFilter(), new WithoutSandboxLine(), done),
        env: auth(container),
        onStderr: (chunk) => {
          tail = Buffer.concat([tail, chunk]).subarray(-4096);
        },
      });
      // The tail is the raw stderr (the exec's collected one comes with secrets hidden): hidden here before it is quoted.
      if (replay.exitCode !== 0)
        throw new Error(`replaying the dump stopped at an error: ${foreignText(engine, clientError(`${replay.stderr}\n${tail.toString('utf8')}`)) || `exit ${replay.exitCode}`}`);
      await sql(engine, container, 'FLUSH PRIVILEGES').catch(passwordOnlyRoot(container));
      const { changed, gone } = changedCredentials(credentialsBefore, await credentials(engine, container));
      if (changed.length || gone.length) {
        const what = [
          ...(changed.length ? [`set how ${changed.join(', ')} log in back to this backup's`] : []),
          ...(gone.length ? [`removed ${gone.join(', ')}, which this backup does not hold`] : []),
        ].join(' and ');
        log(
          `warning: the restored privilege tables ${what} (accounts this container's environment names): clients that log in with credentials made since the backup (MARIADB_ROOT_PASSWORD or MARIADB_USER on a new volume, ALTER USER) are refused until they are set again (ALTER USER or CREATE USER)`,
        );
      }
    } finally {
      // Already back unless the client never connected; a server that went down starts with its own anyway.
      if (raise) await sql(engine, container, `SET GLOBAL max_allowed_packet = ${packet}`).catch(() => undefined);
    }
  },

  /**
   * A dump that would write or read files in the container, or load a library, is refused
   * before anything changes. So is one whose root@localhost would lock stackvault out: the
   * privilege tables come back whole, and a root that logs in neither over the socket nor with
   * this container's root password (a password-only root, and MARIADB_ROOT_PASSWORD changed
   * since) left the restore unproven and its rollback refused ("Access denied"), the store on
   * the backup's data and reported failed.
   */
  async checkRestore({ container, open }) {
    const root = new RootLoginReader();
    await pipeline(open(), root, new HostileSqlFilter(), new Writable({ write: (_c, _e, cb) => cb() }));
    if (lockedOut(root.priv(), auth(container).MYSQL_PWD ?? '')) {
      throw new Error(
        `its root@localhost logs in neither over the unix socket nor with the root password ${container.name} is given (MARIADB_ROOT_PASSWORD), so once its privilege tables are in, stackvault could not log in to prove the restore or put the restore point back; restore it into a server given the backed-up root password`,
      );
    }
  },

  throwaway: () => throwawaySpec(),

  /**
   * The dump loaded into a throwaway server of the same image, read there as a live one. In a
   * restore the throwaway gets the restored container's root password: once loaded, its root is
   * the backup's, and one that logs in only by password (no unix socket: `ALTER USER root@localhost
   * IDENTIFIED BY ...` leaves it so) opens with that password, which checkRestore made sure of.
   * With a random one, every restore of such a backup failed its check and was rolled back.
   */
  artifactFingerprint: (ctx) => ctx.inThrowaway(throwawaySpec(ctx.target && auth(ctx.target).MYSQL_PWD), (container) => liveFingerprint(ctx.engine, container).catch(passwordOnlyRoot(container))),

  liveFingerprint: ({ engine, container }) => liveFingerprint(engine, container),

  async deepVerify(ctx) {
    return ctx.inThrowaway(throwawaySpec(), async (container) => {
      const fp = await liveFingerprint(ctx.engine, container).catch(passwordOnlyRoot(container));
      const difference = ctx.entry.fingerprint ? firstDifference(ctx.entry.fingerprint, fp) : undefined;
      if (difference) throw new Error(`the loaded copy does not hold the backup's content: ${difference}`);
      const tables = Object.keys(fp.parts).filter((p) => p.startsWith('table ')).length;
      return { databases: await userDatabases(ctx.engine, container), tables };
    });
  },

  /** Online: the dump reads one InnoDB snapshot while the server runs. The size is the tables' on the server, a rough guide to the dump's. */
  async plan(engine, container) {
    const size = await sql(engine, container, 'SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables').catch(() => '');
    return {
      method: 'mariadb-dump --all-databases --single-transaction, streamed out',
      interrupts: 'online',
      ...(/^\d+$/.test(size.trim()) ? { estimatedBytes: Number(size.trim()) } : {}),
    };
  },

  async ready(engine, container) {
    const r = await engine.exec(container.id, client('sql', ['-N', '-B', '-e', 'SELECT 1']), { env: auth(container) });
    return r.exitCode === 0 && r.stdout.trim() === '1';
  },
};

/**
 * Runs MariaDB's client programs, or MySQL's where those are all the image has. As root over
 * the unix socket (the socket plugin lets OS root in without a password).
 */
function client(program: 'sql' | 'dump', args: string[]): string[] {
  const [mariadb, mysql] = program === 'sql' ? ['mariadb', 'mysql'] : ['mariadb-dump', 'mysqldump'];
  return ['sh', '-c', `if command -v ${mariadb} >/dev/null 2>&1; then exec ${mariadb} "$@"; else exec ${mysql} "$@"; fi`, 'sh', '-uroot', ...args];
}

/** The root password, when the container was given one, for the client's environment (never argv). */
function auth(c: ContainerDetails): Record<string, string> {
  const password = c.env.MARIADB_ROOT_PASSWORD || c.env.MYSQL_ROOT_PASSWORD;
  return password ? { MYSQL_PWD: password } : {};
}

function sql(engine: DockerEngine, c: ContainerDetails, query: string): Promise<string> {
  return execChecked(engine, c.id, client('sql', ['-N', '-B', '--default-character-set=utf8mb4', '-e', query]), 'mariadb', { env: auth(c) });
}

/**
 * Passes a dump on unchanged and keeps the privilege JSON of root@localhost from its
 * `global_priv` rows (MariaDB 10.4+; one row a line from 11, all on the INSERT's line before).
 * Only those INSERT statements are held (capped); every other line is passed by, whatever its length.
 */
export class RootLoginReader extends Transform {
  private found: string | undefined;
  /** The text of a global_priv INSERT being read, or of a line start that may begin one. */
  private held = '';
  private inInsert = false;
  /** In the rest of a line already judged to be none of those rows. */
  private skipping = false;
  private gaveUp = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    if (!this.gaveUp) this.scan(chunk.toString('latin1'));
    cb(null, chunk);
  }

  private scan(text: string): void {
    let at = 0;
    while (at < text.length) {
      const nl = text.indexOf('\n', at);
      const piece = text.slice(at, nl < 0 ? text.length : nl);
      at = nl < 0 ? text.length : nl + 1;
      if (this.skipping) {
        this.skipping = nl < 0;
        continue;
      }
      const line = this.held + piece;
      if (nl < 0) {
        // A line cut by the chunk's end: kept only while it may be, or is, the privilege rows.
        const keep = this.inInsert || INSERT_GLOBAL_PRIV.startsWith(line.slice(0, INSERT_GLOBAL_PRIV.length));
        this.held = keep ? line : '';
        this.skipping = !keep;
        if (this.held.length > 16 << 20) this.giveUp();
        return;
      }
      this.held = '';
      if (!this.inInsert && line.startsWith(INSERT_GLOBAL_PRIV)) this.inInsert = true;
      if (!this.inInsert) continue;
      const row = /\('localhost','root','((?:[^'\\]|\\.)*)'\)/.exec(line);
      if (row) this.found = row[1];
      if (line.trimEnd().endsWith(';')) this.inInsert = false;
    }
  }

  private giveUp(): void {
    this.gaveUp = true;
    this.held = '';
    this.found = undefined;
  }

  /** root@localhost's privilege JSON, undefined when the dump has none that could be read. */
  priv(): Record<string, unknown> | undefined {
    if (this.gaveUp || this.found === undefined) return undefined;
    try {
      const json = JSON.parse(this.found.replace(/\\(.)/g, (_m, c: string) => ({ n: '\n', r: '\r', t: '\t', '0': '\0' })[c] ?? c));
      return json && typeof json === 'object' ? (json as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  }
}

const INSERT_GLOBAL_PRIV = 'INSERT INTO `global_priv` VALUES';

/**
 * Whether root@localhost, as `priv` says it logs in, would let stackvault in with `password`:
 * not when its only ways are mysql_native_password hashes of other passwords. Any other plugin
 * (the unix socket, ed25519) or no readable record: no verdict, as before.
 */
export function lockedOut(priv: Record<string, unknown> | undefined, password: string): boolean {
  if (!priv) return false;
  const ways = [priv, ...(Array.isArray(priv.auth_or) ? (priv.auth_or as unknown[]) : [])]
    .filter((w): w is Record<string, unknown> => Boolean(w) && typeof w === 'object')
    // An empty alternative in auth_or is the account's own plugin, given at the top.
    .filter((w) => typeof w.plugin === 'string');
  if (ways.length === 0 || ways.some((w) => w.plugin !== 'mysql_native_password')) return false;
  const sha1 = (b: Buffer | string) => createHash('sha1').update(b).digest();
  const mine = password === '' ? '' : `*${sha1(sha1(password)).toString('hex').toUpperCase()}`;
  return !ways.some((w) => String(w.authentication_string ?? '').toUpperCase() === mine);
}

/**
 * The accounts the container's environment names (root, and MARIADB_USER or MYSQL_USER) with a
 * digest of how each logs in, one `user@host digest` a line; undefined where they cannot be read.
 * The dump brings the privilege tables back whole, passwords included: a password changed since
 * the backup is said, not left to be found by an app that no longer logs in.
 */
async function credentials(engine: DockerEngine, c: ContainerDetails): Promise<string[] | undefined> {
  const names = [...new Set(['root', c.env.MARIADB_USER, c.env.MYSQL_USER].filter((n): n is string => Boolean(n)))];
  const list = names.map((n) => `'${n.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`).join(', ');
  const queries = [
    // MariaDB 10.4+: every way an account logs in is in its JSON, alternatives (OR unix_socket) too.
    `SELECT CONCAT(User, '@', Host, ' ', MD5(COALESCE(JSON_EXTRACT(Priv, '$.authentication_string', '$.auth_or'), ''))) FROM mysql.global_priv WHERE User IN (${list}) ORDER BY 1`,
    `SELECT CONCAT(User, '@', Host, ' ', MD5(COALESCE(authentication_string, ''))) FROM mysql.user WHERE User IN (${list}) ORDER BY 1`,
  ];
  for (const query of queries) {
    const lines = await sql(engine, c, query).catch(() => undefined);
    if (lines !== undefined) return lines.split('\n').filter(Boolean);
  }
  return undefined;
}

/** The accounts of `before` that log in otherwise in `after`, and those no longer there. */
function changedCredentials(before: string[] | undefined, after: string[] | undefined): { changed: string[]; gone: string[] } {
  if (!before || !after) return { changed: [], gone: [] };
  const account = (line: string) => line.slice(0, line.lastIndexOf(' '));
  const differ = before.filter((line) => !after.includes(line)).map(account);
  const still = new Set(after.map(account));
  return { changed: differ.filter((a) => still.has(a)), gone: differ.filter((a) => !still.has(a)) };
}

async function userDatabases(engine: DockerEngine, c: ContainerDetails): Promise<string[]> {
  return (await sql(engine, c, 'SHOW DATABASES'))
    .split('\n')
    .filter((d) => d && !SYSTEM_SCHEMAS.includes(d))
    .sort();
}

const quoteIdent = (name: string) => `\`${name.replaceAll('`', '``')}\``;
const quoteString = (s: string) => `'${s.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
const firstLine = (text: string) => text.trim().split('\n')[0] ?? '';
/** The client's own error line (11.8's client first echoes the failing statement between `--------------` lines), shortened. */
const clientError = (stderr: string) => (stderr.split('\n').find((l) => /^ERROR \d+/.test(l)) ?? firstLine(stderr)).slice(0, 300);

function throwawaySpec(rootPassword?: string) {
  // To initialise the throwaway's empty data directory; the dump brings its own users.
  return { env: { MARIADB_ROOT_PASSWORD: rootPassword || randomBytes(12).toString('hex') }, volumes: ['/var/lib/mysql'] };
}

/**
 * A server that loaded a backup whose root@localhost logs in only by a password it was not
 * given shuts stackvault out: said so, rather than as the client's "Access denied". Seen in
 * verify --deep, whose throwaway cannot be given the backup's root password.
 */
const passwordOnlyRoot =
  (c: ContainerDetails) =>
  (err: unknown): never => {
    if (/Access denied for user 'root'@'localhost'/.test(String((err as Error)?.message))) {
      throw new Error(
        `once the backup's privilege tables were in, its root@localhost let stackvault in neither over the unix socket nor with the root password ${c.name} is given, so the loaded data cannot be read (verify --deep cannot give its throwaway the backup's root password; a restore gives it the restored container's)`,
      );
    }
    throw err;
  };

/**
 * The server's own account of its content, independent of the dump and of the replay: every
 * table's CHECKSUM TABLE (a sum over rows, so row order does not count) and row count, every
 * table's columns and indexes, views, routines, triggers, events, databases with their
 * character sets, and the privilege tables (users, their authentication and grants).
 */
async function liveFingerprint(engine: DockerEngine, c: ContainerDetails): Promise<Fingerprint> {
  const system = SYSTEM_SCHEMAS.map(quoteString).join(',');
  const parts: Record<string, string> = {};
  const metadata = [
    `SELECT 'database', SCHEMA_NAME, CONCAT_WS(' ', DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN (${system})`,
    `SELECT 'columns', CONCAT(TABLE_SCHEMA, '.', TABLE_NAME), MD5(GROUP_CONCAT(CONCAT_WS(' ', COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, IFNULL(COLUMN_DEFAULT, '-'), EXTRA, IFNULL(COLLATION_NAME, '-')) ORDER BY ORDINAL_POSITION SEPARATOR '\\n')) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA NOT IN (${system}) GROUP BY TABLE_SCHEMA, TABLE_NAME`,
    `SELECT 'indexes', CONCAT(TABLE_SCHEMA, '.', TABLE_NAME), MD5(GROUP_CONCAT(CONCAT_WS(' ', INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, IFNULL(SUB_PART, '-')) ORDER BY INDEX_NAME, SEQ_IN_INDEX SEPARATOR '\\n')) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA NOT IN (${system}) GROUP BY TABLE_SCHEMA, TABLE_NAME`,
    `SELECT 'view', CONCAT(TABLE_SCHEMA, '.', TABLE_NAME), MD5(VIEW_DEFINITION) FROM information_schema.VIEWS WHERE TABLE_SCHEMA NOT IN (${system})`,
    `SELECT 'routine', CONCAT(ROUTINE_SCHEMA, '.', ROUTINE_NAME, ' ', ROUTINE_TYPE), MD5(CONCAT_WS(' ', ROUTINE_DEFINITION, DEFINER, SQL_MODE)) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA NOT IN (${system})`,
    `SELECT 'trigger', CONCAT(TRIGGER_SCHEMA, '.', TRIGGER_NAME), MD5(CONCAT_WS(' ', EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_TIMING, ACTION_STATEMENT, DEFINER)) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA NOT IN (${system})`,
    `SELECT 'event', CONCAT(EVENT_SCHEMA, '.', EVENT_NAME), MD5(CONCAT_WS(' ', EVENT_DEFINITION, IFNULL(INTERVAL_VALUE, '-'), IFNULL(INTERVAL_FIELD, '-'), STATUS, DEFINER)) FROM information_schema.EVENTS WHERE EVENT_SCHEMA NOT IN (${system})`,
  ].join(' UNION ALL ');
  for (const line of (await sql(engine, c, `SET SESSION group_concat_max_len = 1073741824; ${metadata}`)).split('\n').filter(Boolean)) {
    const [kind, name, digest] = line.split('\t');
    parts[`${kind} ${name}`] = digest ?? '';
  }
  const tables = (await sql(engine, c, `SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN (${system})`))
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t') as [string, string]);
  const all = [...tables, ...PRIVILEGE_TABLES.map((t) => ['mysql', t] as [string, string])];
  // Checksums and counts in batches, so a large catalogue stays within one command line.
  for (let i = 0; i < all.length; i += 200) {
    const batch = all.slice(i, i + 200);
    const names = batch.map(([db, t]) => `${quoteIdent(db)}.${quoteIdent(t)}`);
    const sums = (await sql(engine, c, `CHECKSUM TABLE ${names.join(', ')} EXTENDED`)).split('\n').filter(Boolean);
    const counts = (await sql(engine, c, names.map((n, j) => `SELECT ${j}, COUNT(*) FROM ${n}`).join(' UNION ALL '))).split('\n').filter(Boolean);
    batch.forEach(([db, t], j) => {
      const checksum = sums[j]?.split('\t').pop() ?? '?';
      const rows = counts.find((l) => l.startsWith(`${j}\t`))?.split('\t')[1] ?? '?';
      parts[`table ${db}.${t}`] = `n=${rows} checksum=${checksum}`;
    });
  }
  return { method: FINGERPRINT_METHOD, parts };
}

/** The largest max_allowed_packet (1 GB) of MariaDB's and MySQL's servers and clients: mariadb-dump reads, and the replay sends, rows up to it. */
const MAX_PACKET = 1024 * 1024 * 1024;
/** What mariadb-dump is run with, for a backup and a consistent one alike. */
export const DUMP_ARGS = [
  '--all-databases',
  '--single-transaction',
  '--routines',
  '--events',
  '--triggers',
  '--flush-privileges',
  '--hex-blob',
  '--default-character-set=utf8mb4',
  `--max-allowed-packet=${MAX_PACKET}`,
];

/** A finished dump's checks: its exit code and its final line; and whether the restore's filter, which read along, would refuse it. */
async function dumpOutcome(result: { exitCode: number; stderr: string }, tee: Writable, tail: TailKeeper, judge: RefusalJudge, databases: string[]) {
  await finished(tee); // the last chunks are in the output before the backup counts
  if (result.exitCode !== 0) throw new Error(`mariadb-dump exited with code ${result.exitCode}: ${firstLine(result.stderr) || 'no error output'}`);
  if (!tail.text().includes(DUMP_END)) throw new Error("the dump ended without mariadb-dump's final line: it was cut off");
  return { details: { databases }, ...refusal(judge) };
}

/**
 * Passes a dump through unchanged while reading it as the client and the server will, and
 * refuses it before anything runs if what runs could reach outside the database: files (INTO
 * OUTFILE/DUMPFILE, LOAD DATA/XML, LOAD_FILE), libraries (SONAME, INSTALL PLUGIN), SQL built at
 * run time (a statement that is PREPARE or EXECUTE), stored SQL run at once (CALL, a compound
 * statement outside a routine), server-wide settings (SET GLOBAL, PERSIST), and every client
 * command (`\x` anywhere outside a string, even inside an executable comment; only DELIMITER
 * `;`/`;;` on a line of its own and mariadb-dump's sandbox line, alone, as the dump's first line pass).
 *
 * Where a string ends depends on the session: sql_mode (NO_BACKSLASH_ESCAPES, ANSI_QUOTES) and
 * the client character set (a multi-byte set such as GBK can swallow a backslash). The restore
 * starts in mariadb-dump's own mode, and any statement that names sql_mode, the client
 * character set or their saved copies must be, whole and on a line of its own at the start of a
 * statement, one of the exact lines mariadb-dump writes; the mode they set is followed (a dump
 * of an ANSI_QUOTES trigger restores), a character set must be one where a backslash is always
 * a backslash. Comments are read by the client's rules (a `--` that begins a client statement
 * is a comment whatever follows it) and the server's; an executable comment that a server may
 * skip (a version above 5.7, or any /*M!) may hold no quote and no comment, and none may hold a
 * nested comment, so no statement can hide in what only looks like a string, a comment or an
 * executable comment's version number. Between DELIMITER ;; lines, where the client sends a
 * whole block as one query that the server splits at each `;` its grammar does not take into a
 * stored program's body, each statement is read as that grammar reads it (mariadb-program.ts):
 * a `;` is allowed only inside a body's BEGIN…END, IF…END IF, CASE…END CASE or loop, opened
 * where the server begins a statement; an executable comment a server may skip, and a number
 * run into a word (`1e1end`), are refused there. As a belt, an odd run of backslashes before C or c
 * (the charset command) is refused anywhere, and control bytes (0x7F too) outside strings. The
 * client character set is followed as the mode is: in latin1 the server reads 0xA0 as a space
 * and the client does not, so it is refused outside strings; sql_mode MSSQL, under which the
 * server reads [...] as a name, is refused. Works on bytes; nothing is decoded.
 */
export class HostileSqlFilter extends Transform {
  private state: 'code' | 'quoted' | 'line' | 'block' | 'blockStart' | 'blockStartM' | 'version' | 'sandbox' | 'sandboxEnd' | 'dashes' | 'delimiter' = 'code';
  private quote = 0;
  private quoteEscapes = false;
  private escaped = false;
  private star = false;
  /** Inside an executable comment (`/*!…*\/`): its content is code, and `*\/` closes it. */
  private executable = false;
  /** The executable comment is `/*M!…`, and whether some server may skip its content. */
  private maria = false;
  private skippable = false;
  /** The previous byte in code, for two-byte tokens. */
  private last = 0;
  private word = '';
  private words: string[] = [];
  private variable = false;
  private atCount = 0;
  private identifier = '';
  private identifierIsVariable = false;
  private versionDigits = '';
  /** How much of the sandbox line is matched. */
  private sandboxAt = 0;
  /** What followed the sandbox line on its line so far. */
  private sandboxEnd = '';
  /** The length of the current run of backslashes, wherever it is. */
  private backslashes = 0;
  /** Lines read so far, to say where a refusal was. */
  private lines = 1;
  /** The statement delimiter (the DELIMITER command), and how much of `;;` was just seen. */
  private delimiter = ';';
  private semicolons = 0;
  private statementStart = true;
  private firstWord = '';
  /** The statement so far is its first word alone (a label, `x:`, would follow it). */
  private onlyFirstWord = false;
  /** The client's statement buffer is empty (then any `--` begins a comment), and was so before a `-` or `/`. */
  private clientEmpty = true;
  private dashEmpty = false;
  private slashEmpty = false;
  /**
   * Between DELIMITER ;; lines, the statement as the server's parser reads it (mariadb-program.ts):
   * only a stored program's body holds a `;` that does not end it. Made at the statement's first token.
   */
  private program: StoredProgram | undefined;
  /** The current word began right after `@` or `.` (a name to the server's lexer), or right after an exponent's sign (`1e+`). */
  private wordAfterAt = false;
  private wordAfterDot = false;
  private wordAfterSign = false;
  /** The byte just read was the sign after an exponent's `e` (`1e` then `+`). */
  private exponentSign = false;
  /** The current line: its bytes (up to a limit), whether it began a statement, whether it names a guarded setting. */
  private line: number[] = [];
  private lineBeganStatement = true;
  private lineGuarded = false;
  /** The session's sql_mode as the dump sets it, and the copies it saves. */
  private mode = 'NO_AUTO_VALUE_ON_ZERO';
  private savedModes: Record<string, string> = {};
  /** The client character set as the dump sets it (the replay starts in utf8mb4), and the copies it saves. */
  private charset = 'utf8mb4';
  private savedCharsets: Record<string, string> = {};
  private quotingOf = { mode: '', ansi: false, noEscapes: false };

  /** `bytewise`: every byte through `step`, without the fast path through strings (the reference reading, for tests). */
  constructor(private readonly bytewise = false) {
    super();
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    try {
      const n = chunk.length;
      let i = 0;
      while (i < n) {
        // Most of a dump is inside strings (INSERT values), where only the closing quote, a
        // backslash and a line end mean anything: the bytes between go through in one step.
        if (this.state === 'quoted' && !this.escaped && this.backslashes === 0 && this.quote !== 0x60 && !this.bytewise) {
          const stop = quotedStop(chunk, i, this.quote);
          if (stop > i) {
            this.passQuoted(chunk, i, stop);
            i = stop;
            continue;
          }
        }
        // The rest of a word (a number, a hex literal): only the word's text changes; it is read
        // whole when it ends (endWord), as before.
        if (this.state === 'code' && this.word !== '' && !this.bytewise) {
          const stop = wordStop(chunk, i);
          if (stop > i) {
            this.passWord(chunk, i, stop);
            i = stop;
            continue;
          }
        }
        this.step(chunk[i++]!);
      }
      cb(null, chunk);
    } catch (err) {
      cb(new Error(`${(err as Error).message} (line ${this.lines} of the dump)`));
    }
  }

  override _flush(cb: (err?: Error | null) => void): void {
    try {
      this.step(0x0a); // the last line, as if it ended
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  /**
   * Bytes inside a string that are none of its quote, a backslash or a line end, after a byte
   * that was no backslash: to `step` each would only be kept for the line's text (no belt, no
   * control byte or 0xA0 rule applies inside a string; a `\`…`\C` run needs a backslash).
   */
  private passQuoted(chunk: Buffer, from: number, to: number): void {
    if (this.line.length >= 400) return;
    const room = Math.min(to, from + 400 - this.line.length);
    for (let j = from; j < room; j++) this.line.push(chunk[j]!);
  }

  /**
   * Word bytes after a word byte, none of them 0xA0 (a space to a latin1 server): to `step` and
   * `code` each only adds itself to the word and becomes the last byte (no belt, control byte,
   * comment, semicolon or client-command rule applies after a word byte).
   */
  private passWord(chunk: Buffer, from: number, to: number): void {
    this.passQuoted(chunk, from, to); // the line's text, as for a string
    this.word += chunk.toString('latin1', from, to).toLowerCase();
    this.last = chunk[to - 1]!;
    this.exponentSign = false;
  }

  private step(b: number): void {
    if (this.line.length < 400) this.line.push(b);
    // The belt: `\C` (the client's charset command) is never in mariadb-dump's output, in a string or out of one.
    if ((b === 0x43 || b === 0x63) && this.backslashes % 2 === 1) throw refused(`\\${String.fromCharCode(b)} (the client's charset command)`);
    this.backslashes = b === 0x5c ? this.backslashes + 1 : 0;
    // 0x7F too: after `--` the server takes a control byte for the space that makes a comment, the client does not.
    if (this.state !== 'quoted' && ((b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) || b === 0x7f)) throw refused(`the control byte 0x${b.toString(16).padStart(2, '0')} outside a string`);
    // In latin1 the server reads 0xA0 as a space (it ends a word, and makes `--` a comment); the client, in utf8mb4, does not.
    if (b === 0xa0 && this.charset === 'latin1' && this.state !== 'quoted' && this.state !== 'line' && this.state !== 'block')
      throw refused('the byte 0xA0 outside a string while the client character set is latin1 (a space to the server, not to the client)');
    if (b === 0x0a) return this.endLine();
    switch (this.state) {
      case 'quoted':
        if (this.escaped) this.escaped = false;
        else if (b === 0x5c && this.quoteEscapes) this.escaped = true;
        else if (b === this.quote) this.endQuoted();
        else if (this.quote === 0x60 && this.identifier.length < 40) this.identifier += String.fromCharCode(b).toLowerCase();
        return;
      case 'line':
        return;
      case 'block':
        if (this.star && b === 0x2f) this.state = 'code';
        this.star = b === 0x2a;
        return;
      case 'blockStart':
        if (b === 0x21) this.openExecutable(false);
        else if (b === 0x4d) this.state = 'blockStartM';
        else this.openComment(b);
        return;
      case 'blockStartM':
        if (b === 0x21) return this.openExecutable(true);
        return this.openComment(b);
      case 'version': // the 5 or 6 digits after /*! are a version, never part of a word
        if (b >= 0x30 && b <= 0x39 && this.versionDigits.length < 6) {
          this.versionDigits += String.fromCharCode(b);
          return;
        }
        this.state = 'code';
        if (this.versionDigits.length >= 5) {
          const version = Number(this.versionDigits);
          if (version >= 900_000) {
            // No server runs it, but the client reads it as code: only mariadb-dump's own sandbox line, first in the dump
            // (line 1 holds nothing but its `/*M!999999` and this byte).
            const firstInDump = this.lines === 1 && this.line.length === SANDBOX_HEAD.length + 1;
            if (!(this.maria && this.versionDigits === '999999' && firstInDump)) throw refused(`an executable comment for version ${version}, which no server runs but the client reads`);
            this.state = 'sandbox';
            this.sandboxAt = 0;
            return this.sandbox(b);
          }
          // A MariaDB 10.x server skips MySQL 5.7+ versions, an older server higher ones, MySQL every /*M!.
          this.skippable = this.maria || this.versionDigits.length === 6 || version >= 50_700;
        }
        // A word in it would open or close a block for one server and not for another.
        if (this.skippable && this.delimiter === ';;') throw refused('an executable comment that a server may skip between DELIMITER ;; lines');
        break;
      case 'sandbox':
        return this.sandbox(b);
      case 'sandboxEnd':
        // A client without the command gets the dump without that line, which must be all it is.
        this.sandboxEnd += String.fromCharCode(b);
        if (!SANDBOX_LINE_END.test(`${this.sandboxEnd}\n`)) throw refused('more after the sandbox line on its line');
        return;
      case 'dashes':
        if (b === 0x2d) return; // `---`: the last two dashes are the pair now, for the client and the server alike
        this.state = 'code';
        if (b === 0x20 || b === 0x09 || b === 0x0d) {
          this.state = 'line';
          return;
        }
        break;
      case 'delimiter':
        return; // the whole line is checked when it ends
    }
    this.code(b);
  }

  private code(b: number): void {
    const last = this.last;
    this.last = b;
    const afterSign = this.exponentSign;
    this.exponentSign = false;
    if (b === 0x2d && last !== 0x2d) this.dashEmpty = this.clientEmpty;
    if (b === 0x2f) this.slashEmpty = this.clientEmpty;
    if (b !== 0x3b && b !== 0x20 && b !== 0x09 && b !== 0x0d && b !== 0x23) this.clientEmpty = false;
    if (last === 0x2f && b === 0x2a) {
      // The server would end the executable comment at the inner `*/`; mariadb-dump never writes one.
      if (this.executable) throw refused('a comment inside an executable comment');
      this.endWord();
      this.state = 'blockStart';
      this.last = 0;
      return;
    }
    if (last === 0x2d && b === 0x2d) {
      if (this.executable && this.skippable) throw refused('a comment inside an executable comment that a server may skip');
      this.endWord();
      // The client takes any `--` that begins its statement for a comment, whatever follows it.
      this.clientEmpty = this.dashEmpty;
      this.state = this.dashEmpty ? 'line' : 'dashes';
      this.last = 0;
      return;
    }
    if (this.executable && last === 0x2a && b === 0x2f) {
      this.executable = false;
      this.last = 0;
      return;
    }
    if (last === 0x5c) throw refused(`a client command (\\${String.fromCharCode(b)})`);
    // A lone `;` is read before whatever follows it (a word after it belongs to the next statement).
    if (b !== 0x3b) {
      this.checkLoneSemicolon();
      this.semicolons = 0;
    }
    if (isWordByte(b)) {
      if (!this.word) {
        this.variable = this.atCount === 1;
        this.wordAfterAt = this.atCount > 0;
        this.wordAfterDot = last === 0x2e;
        this.wordAfterSign = afterSign;
        if (this.statementStart && !/[0-9]/.test(String.fromCharCode(b))) this.statementStart = false;
      }
      this.word += String.fromCharCode(b).toLowerCase();
      return;
    }
    this.endWord(b);
    const ats = this.atCount;
    this.atCount = b === 0x40 ? ats + 1 : 0;
    if (b === 0x3b) {
      this.semicolons++;
      if (this.delimiter === ';' || this.semicolons === 2) this.endStatement();
      return;
    }
    if (b === 0x3a && this.onlyFirstWord) throw refused(`a labelled compound statement (${this.firstWord}:), which runs at once`);
    if (b > 0x20) this.onlyFirstWord = false;
    if (b > 0x20 && b !== 0x2f && b !== 0x2d && b !== 0x2a && b !== 0x40) this.statementStart = false;
    if (b === 0x27 || b === 0x22 || b === 0x60) {
      if (this.executable && this.skippable) throw refused('a quote inside an executable comment that a server may skip');
      this.state = 'quoted';
      this.quote = b;
      this.identifier = '';
      this.identifierIsVariable = ats === 1;
      this.escaped = false;
      const { ansi, noEscapes } = this.quoting();
      // `identifiers` (and "…" under ANSI_QUOTES) know no backslash escapes; strings do, unless NO_BACKSLASH_ESCAPES.
      this.quoteEscapes = b === 0x60 || (b === 0x22 && ansi) ? false : !noEscapes;
      this.programToken({ quoted: b === 0x60 || (b === 0x22 && ansi) ? 'name' : 'string' });
    } else if (b === 0x23) {
      if (this.executable && this.skippable) throw refused('a comment inside an executable comment that a server may skip');
      this.state = 'line';
    } else if (b > 0x20 && b !== 0x2f && b !== 0x2a && b !== 0x2d) {
      // Not `/`, `*`, `-`: they may begin or end a comment, and are never more than an operator to the parser.
      this.programToken({ punct: String.fromCharCode(b) });
    }
  }

  /** Between DELIMITER ;; lines, a token of the statement for its reading as the parser's. */
  private programToken(t: ProgramToken): void {
    if (this.delimiter !== ';;') return;
    this.program ??= new StoredProgram(this.modeHas(['ORACLE']));
    this.program.token(t);
  }

  private openExecutable(maria: boolean): void {
    this.executable = true;
    this.maria = maria;
    this.skippable = maria; // MySQL skips every /*M!, with or without a version
    this.versionDigits = '';
    this.state = 'version';
  }

  /** A plain comment: the client drops it, so its statement buffer is as empty as before the `/`. */
  private openComment(b: number): void {
    this.state = 'block';
    this.star = b === 0x2a;
    this.clientEmpty = this.slashEmpty;
  }

  private sandbox(b: number): void {
    if (b !== SANDBOX_REST.charCodeAt(this.sandboxAt)) throw refused('an executable comment that only begins like the sandbox line');
    if (++this.sandboxAt === SANDBOX_REST.length) {
      this.state = 'sandboxEnd'; // only its line end may follow
      this.sandboxEnd = '';
      this.executable = false;
      this.last = 0;
    }
  }

  /** Between DELIMITER ;; lines the server splits the client's block at a `;` outside a stored program's body. */
  private checkLoneSemicolon(): void {
    if (this.delimiter !== ';;' || this.semicolons !== 1) return;
    this.semicolons = 0;
    if (!this.program?.semicolon()) throw refused("a `;` between DELIMITER ;; lines outside a stored program's body (more than one statement in one query)");
  }

  private endQuoted(): void {
    this.state = 'code';
    // A quoted name of a guarded setting (SET `sql_mode` = …, @`old_sql_mode`).
    if (this.quote === 0x60 && GUARDED.includes(this.identifier) && (this.firstWord === 'set' || this.identifierIsVariable)) this.lineGuarded = true;
  }

  private endStatement(): void {
    this.semicolons = 0;
    this.statementStart = true;
    this.clientEmpty = true;
    this.firstWord = '';
    this.onlyFirstWord = false;
    this.words = [];
    this.program = undefined;
  }

  /** `next`: the byte that ended the word (a `.` after it makes it a name to the server's lexer). */
  private endWord(next = 0): void {
    if (!this.word) return;
    const w = this.word;
    this.word = '';
    if (this.delimiter === ';;') this.programWord(w, next);
    if (!this.firstWord && !/^[0-9]+$/.test(w)) {
      this.firstWord = w;
      this.onlyFirstWord = true;
      if (FORBIDDEN_STATEMENTS.has(w)) throw refused(`${w.toUpperCase()} (SQL built at run time)`);
      if (w === 'call') throw refused('CALL (stored SQL run at once)');
      if (COMPOUND_STATEMENTS.has(w)) throw refused(`a compound statement (${w.toUpperCase()}) outside a routine, which runs at once`);
      if (w === 'delimiter') {
        // The client's DELIMITER command: only `;` or `;;`, alone on its line.
        if (!this.lineBeganStatement) throw refused('DELIMITER inside a statement or after one on its line');
        this.state = 'delimiter';
        return;
      }
    } else this.onlyFirstWord = false;
    const before = this.words.at(-1) ?? '';
    this.words.push(w);
    if (this.words.length > 3) this.words.shift();
    // The pair is spelled out only after a word that begins one (this runs for every number of every row).
    const pair = PAIR_STARTS.has(before) ? `${before} ${w}` : '';
    const found = FORBIDDEN_PAIRS.has(pair) ? pair : FORBIDDEN_WORDS.has(w) ? w : undefined;
    if (found) throw refused(found.toUpperCase());
    if (this.firstWord === 'set' && (w === 'global' || w === 'persist')) throw refused(`SET ${w.toUpperCase()} (a server-wide setting)`);
    if (this.firstWord === 'set' && (`${before} ${w}` === 'set charset' || this.words.join(' ').endsWith('character set'))) throw refused('a change of the client character set other than SET NAMES');
    if (GUARDED.includes(w) && (this.firstWord === 'set' || (this.variable && w !== 'names'))) this.lineGuarded = true;
  }

  /**
   * A word between DELIMITER ;; lines, as the server's lexer reads it: a name, never a keyword,
   * right after `@` or `.` and right before `.`; and a number run into a word, which the lexer
   * splits where this reading does not (`1e1end` is 1e1 then END), refused.
   */
  private programWord(w: string, next: number): void {
    if (!this.wordAfterAt) {
      if (this.wordAfterSign ? !/^[0-9]+$/.test(w) : numberRunIntoWord(w, this.wordAfterDot)) throw refused(`a number run into a word (${w}), which the server splits`);
      if ((next === 0x2b || next === 0x2d) && exponentOpen(w, this.wordAfterDot)) this.exponentSign = true;
    }
    this.programToken({ word: w, keyword: !this.wordAfterAt && !this.wordAfterDot && next !== 0x2e && !/^[0-9]/.test(w) });
  }

  /** A line that names a guarded setting must be one of mariadb-dump's own, whole; its mode is followed. */
  private endLine(): void {
    this.lines++;
    if (this.state === 'line') this.state = 'code';
    if (this.state === 'sandbox') throw refused('an executable comment that only begins like the sandbox line');
    if (this.state === 'sandboxEnd') this.state = 'code';
    if (this.state === 'code') {
      if (this.last === 0x5c) throw refused('a client command (a backslash at the end of a line)');
      this.endWord(0x0a);
      this.checkLoneSemicolon();
    }
    if (this.state === 'delimiter') {
      const m = /^[ \t]*delimiter[ \t]+(;;?)[ \t\r]*\n?$/i.exec(Buffer.from(this.line).toString('latin1'));
      if (!m) throw refused(`a DELIMITER line other than DELIMITER ; or DELIMITER ;; (${Buffer.from(this.line).toString('latin1').trim().slice(0, 40)})`);
      this.delimiter = m[1]!;
      this.state = 'code';
      this.endStatement();
    } else if (this.state === 'dashes') this.state = 'code';
    // The client reads line by line: `;` at a line's end and `;` at the next one's start are not `;;`.
    if (this.state === 'code') this.semicolons = 0;
    if (this.lineGuarded) {
      const text = Buffer.from(this.line).toString('latin1').trim();
      const end = this.delimiter === ';;' ? ';;?' : ';';
      const inner = this.lineBeganStatement ? (new RegExp(`^/\\*!\\d{5} (SET .*?) \\*/ ?${end}$`).exec(text)?.[1] ?? new RegExp(`^(SET [^;]*)${end}$`).exec(text)?.[1]) : undefined;
      if (!inner || !this.applyGuarded(inner)) throw refused(`a change of sql_mode or of the client character set that mariadb-dump does not write (${text.slice(0, 80)})`);
    }
    this.line = [];
    this.lineGuarded = false;
    this.lineBeganStatement = this.state === 'code' && this.statementStart;
    this.last = 0;
  }

  /** Applies one of mariadb-dump's lines; false for anything else. */
  private applyGuarded(statement: string): boolean {
    const s = statement.replace(/\s+/g, ' ');
    let m: RegExpExecArray | null;
    if ((m = /^SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='([A-Z_,]*)'$/i.exec(s))) {
      this.savedModes.old = this.mode;
      this.mode = m[1]!.toUpperCase();
    } else if (/^SET SQL_MODE=@OLD_SQL_MODE$/i.test(s)) this.mode = this.savedModes.old ?? this.mode;
    else if (/^SET @saved_sql_mode ?= @@sql_mode$/i.test(s)) this.savedModes.saved = this.mode;
    else if ((m = /^SET sql_mode ?= '([A-Z_,]*)'$/i.exec(s))) this.mode = m[1]!.toUpperCase();
    else if (/^SET sql_mode ?= @saved_sql_mode$/i.test(s)) this.mode = this.savedModes.saved ?? this.mode;
    else if (/^SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT$/i.test(s)) this.savedCharsets.old = this.charset;
    else if (/^SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT$/i.test(s)) this.charset = this.savedCharsets.old ?? this.charset;
    else if (/^SET @saved_cs_client ?= @@character_set_client$/i.test(s)) this.savedCharsets.saved = this.charset;
    else if (/^SET character_set_client ?= @saved_cs_client$/i.test(s)) this.charset = this.savedCharsets.saved ?? this.charset;
    else if ((m = SET_CHARSET.exec(s))) this.charset = m[1]!.toLowerCase();
    else return false;
    // Under MSSQL the server reads [...] as a name, where this reading sees a quote or a comment.
    if (this.modeHas(['MSSQL'])) throw refused(`sql_mode MSSQL, under which the server reads [...] as a name (${s.slice(0, 80)})`);
    return true;
  }

  private modeHas(modes: readonly string[]): boolean {
    return this.mode.split(',').some((m) => modes.includes(m));
  }

  /** How the mode reads quotes; asked at every quote, so worked out once per mode, not per string. */
  private quoting(): { ansi: boolean; noEscapes: boolean } {
    if (this.quotingOf.mode !== this.mode) this.quotingOf = { mode: this.mode, ansi: this.modeHas(ANSI_QUOTE_MODES), noEscapes: this.modeHas(['NO_BACKSLASH_ESCAPES']) };
    return this.quotingOf;
  }
}

/** The first index from `from` holding no word byte, or 0xA0; `chunk.length` when none does. */
function wordStop(chunk: Buffer, from: number): number {
  let i = from;
  for (const n = chunk.length; i < n; i++) {
    const b = chunk[i]!;
    if (!isWordByte(b) || b === 0xa0) break;
  }
  return i;
}

/** The first index from `from` holding `quote`, a backslash or a line end; `chunk.length` when none does. */
function quotedStop(chunk: Buffer, from: number, quote: number): number {
  let i = from;
  for (const n = chunk.length; i < n; i++) {
    const b = chunk[i]!;
    if (b === quote || b === 0x5c || b === 0x0a) break;
  }
  return i;
}

/** The sql_mode a replay runs under (mariadb-dump's own dumps set theirs where they need it). */
const RESTORE_SQL_MODE = "sql_mode='NO_AUTO_VALUE_ON_ZERO'";
/** The session mode a restore starts in (mariadb-dump's own), so the filter reads as the server does. */
export const RESTORE_SESSION_MODE = `SET SESSION ${RESTORE_SQL_MODE}`;
/** Settings that change how the rest of a dump is read, and the variables mariadb-dump saves them in. */
const GUARDED = ['sql_mode', 'old_sql_mode', 'saved_sql_mode', 'character_set_client', 'old_character_set_client', 'saved_cs_client', 'names'];
const ANSI_QUOTE_MODES = ['ANSI_QUOTES', 'ANSI', 'DB2', 'MAXDB', 'MSSQL', 'ORACLE', 'POSTGRESQL'];
/** Character sets in which a backslash byte is always a backslash (no multi-byte character ends in 0x5c). */
const SAFE_CHARSET = '(utf8mb4|utf8mb3|utf8|latin1|binary|ascii)';
/** SET NAMES x [COLLATE y] or SET character_set_client = x, for a set where a backslash is always a backslash. */
const SET_CHARSET = new RegExp(`^SET (?:NAMES|character_set_client ?=) ${SAFE_CHARSET}(?: COLLATE [a-z0-9_]+)?$`, 'i');
const isWordByte = (b: number) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x5f || b === 0x24 || b >= 0x80;
const FORBIDDEN_WORDS = new Set(['outfile', 'dumpfile', 'load_file', 'soname']);
const FORBIDDEN_PAIRS = new Set(['load data', 'load xml', 'install plugin']);
const PAIR_STARTS = new Set([...FORBIDDEN_PAIRS].map((p) => p.split(' ')[0]!));
/** Run at once when they begin a statement (a routine's body only stores them: mariadb's own system procedures use PREPARE). */
const FORBIDDEN_STATEMENTS = new Set(['prepare', 'execute']);
/** Compound statements, which MariaDB runs outside a routine too (mariadb-dump writes them only inside one). */
const COMPOUND_STATEMENTS = new Set(['begin', 'if', 'case', 'loop', 'while', 'repeat', 'for']);
/** The first line of a mariadb-dump from the releases in SANDBOX_SINCE on: the client's sandbox command. */
export const SANDBOX_LINE = '/*M!999999\\- enable the sandbox mode */';
/**
 * How that line may end: mariadb-dump writes a space before its newline (every version, `*\/ \n`),
 * an editor may drop it, a copy may make it CRLF. The filter passes nothing else on the line, and
 * a replay without the command leaves out all of it.
 */
const SANDBOX_LINE_END = /^ ?\r?\n/;
/** Its executable comment's opening, and what follows that. */
const SANDBOX_HEAD = '/*M!999999';
const SANDBOX_REST = SANDBOX_LINE.slice(SANDBOX_HEAD.length);

/**
 * The first MariaDB client release of each series with the sandbox command (\\-). 10.7–10.10
 * and 11.3 ended before it and never have it; 11.5 and later series have it from their first.
 */
const SANDBOX_SINCE: FirstFixedPatch = { '10.5': 25, '10.6': 18, '10.11': 8, '11.0': 6, '11.1': 5, '11.2': 4, '11.4': 2 };

/** Whether a client whose `--version` says this knows the sandbox command. MySQL's client and any it cannot read: no. */
export function clientHasSandbox(version: string): boolean {
  const m = /(\d+)\.(\d+)\.(\d+)-MariaDB/.exec(version);
  return m !== null && atLeastPatchInSeries([Number(m[1]), Number(m[2]), Number(m[3])], SANDBOX_SINCE);
}

/**
 * Leaves the sandbox line out of a dump's replay (an empty line in its place, so line numbers
 * stay), for a client without the command. HostileSqlFilter, before it, passes that line only
 * whole and on its own, so nothing the filter read is left out and no `\-` reaches the client.
 */
export class WithoutSandboxLine extends Transform {
  private head: Buffer | undefined = Buffer.alloc(0);

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    if (!this.head) return cb(null, chunk);
    this.head = Buffer.concat([this.head, chunk]);
    if (this.head.length < SANDBOX_LINE.length + 3) return cb(); // the line and its longest end, to know
    cb(null, this.release());
  }

  override _flush(cb: (err?: Error | null, data?: Buffer) => void): void {
    cb(null, this.head ? this.release() : undefined);
  }

  private release(): Buffer {
    const head = this.head!;
    this.head = undefined;
    if (!head.subarray(0, SANDBOX_LINE.length).equals(Buffer.from(SANDBOX_LINE, 'latin1'))) return head;
    const end = SANDBOX_LINE_END.exec(head.subarray(SANDBOX_LINE.length, SANDBOX_LINE.length + 3).toString('latin1'));
    return end ? Buffer.concat([Buffer.from('\n'), head.subarray(SANDBOX_LINE.length + end[0].length)]) : head;
  }
}
