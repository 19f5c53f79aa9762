import { randomBytes } from 'node:crypto';
import { pipeline as pipeStreams, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ContainerDetails, DockerEngine } from '../docker/engine.js';
import { finished, teeTo } from '../util/backpressure.js';
import { execChecked } from './exec.js';
import { type Fingerprint, firstDifference } from './fingerprint.js';
import { isServer } from './recognise.js';
import type { Driver } from './types.js';

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

export const mariadbDriver: Driver = {
  name: 'mariadb',
  format: 'sql',
  artifactEnd: { text: DUMP_END, what: "mariadb-dump's final line" },
  imageNames: SIGNS.images,
  recognise: (c) => isServer(c, SIGNS),

  secrets: (c) => ['MARIADB_ROOT_PASSWORD', 'MYSQL_ROOT_PASSWORD', 'MARIADB_PASSWORD', 'MYSQL_PASSWORD', 'MYSQL_PWD'].map((k) => c.env[k]).filter((s): s is string => Boolean(s)),

  async backup({ engine, container, output }) {
    const databases = await userDatabases(engine, container);
    const tail = new TailKeeper();
    const tee = teeTo(output, tail);
    const result = await engine.exec(
      container.id,
      client('dump', [
        '--all-databases',
        '--single-transaction',
        '--routines',
        '--events',
        '--triggers',
        '--flush-privileges',
        '--hex-blob',
        '--default-character-set=utf8mb4',
        '--max-allowed-packet=1G',
      ]),
      { stdout: tee, env: auth(container) },
    );
    await finished(tee); // the last chunks are in the output before the backup counts
    if (result.exitCode !== 0) throw new Error(`mariadb-dump exited with code ${result.exitCode}: ${firstLine(result.stderr) || 'no error output'}`);
    if (!tail.text().includes(DUMP_END)) throw new Error("the dump ended without mariadb-dump's final line: it was cut off");
    return { details: { databases } };
  },

  /**
   * Afterwards the server holds exactly the dump: every user database is dropped first (those
   * created since the backup included), the dump replays and stops at its first error, and the
   * `mysql` schema's privilege tables come back whole, so users created since are gone too.
   */
  async restore({ engine, container, open }) {
    for (const db of await userDatabases(engine, container)) await sql(engine, container, `DROP DATABASE ${quoteIdent(db)}`);
    const replay = await engine.exec(container.id, client('sql', ['--binary-mode', '--default-character-set=utf8mb4', `--init-command=${RESTORE_SESSION_MODE}`]), {
      // pipeline, not pipe(): an artifact that fails mid-read fails the client's stdin, and so the exec.
      stdin: pipeStreams(open(), new HostileSqlFilter(), () => undefined),
      env: auth(container),
    });
    if (replay.exitCode !== 0) throw new Error(`replaying the dump stopped at an error: ${firstLine(replay.stderr) || `exit ${replay.exitCode}`}`);
    await sql(engine, container, 'FLUSH PRIVILEGES');
  },

  /** A dump that would write or read files in the container, or load a library, is refused before anything changes. */
  async checkRestore({ open }) {
    await pipeline(open(), new HostileSqlFilter(), new Writable({ write: (_c, _e, cb) => cb() }));
  },

  throwaway: () => throwawaySpec(),

  /** The dump loaded into a throwaway server of the same image, read there as a live one. */
  artifactFingerprint: (ctx) => ctx.inThrowaway(throwawaySpec(), (container) => liveFingerprint(ctx.engine, container)),

  liveFingerprint: ({ engine, container }) => liveFingerprint(engine, container),

  async deepVerify(ctx) {
    return ctx.inThrowaway(throwawaySpec(), async (container) => {
      const fp = await liveFingerprint(ctx.engine, container);
      const difference = ctx.entry.fingerprint ? firstDifference(ctx.entry.fingerprint, fp) : undefined;
      if (difference) throw new Error(`the loaded copy does not hold the backup's content: ${difference}`);
      const tables = Object.keys(fp.parts).filter((p) => p.startsWith('table ')).length;
      return { databases: await userDatabases(ctx.engine, container), tables };
    });
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

async function userDatabases(engine: DockerEngine, c: ContainerDetails): Promise<string[]> {
  return (await sql(engine, c, 'SHOW DATABASES'))
    .split('\n')
    .filter((d) => d && !SYSTEM_SCHEMAS.includes(d))
    .sort();
}

const quoteIdent = (name: string) => `\`${name.replaceAll('`', '``')}\``;
const quoteString = (s: string) => `'${s.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
const firstLine = (text: string) => text.trim().split('\n')[0] ?? '';

function throwawaySpec() {
  // Only to initialise the throwaway's empty data directory; the dump brings its own users.
  return { env: { MARIADB_ROOT_PASSWORD: randomBytes(12).toString('hex') }, volumes: ['/var/lib/mysql'] };
}

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

/** Keeps the last bytes written, to see the dump's final line. */
class TailKeeper extends Writable {
  private tail = Buffer.alloc(0);
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.tail = Buffer.concat([this.tail, chunk]).subarray(-256);
    cb();
  }
  text(): string {
    return this.tail.toString('latin1');
  }
}

/**
 * Passes a dump through unchanged while reading it as the server will: quoted strings ('…',
 * "…", with backslash escapes), `identifiers`, comments (`-- `, `#`, `/* … *\/`), and
 * executable comments (`/*!…*\/`, `/*M!…*\/`), whose content runs. In what runs, it refuses
 * what reaches outside the database: files (INTO OUTFILE/DUMPFILE, LOAD DATA/XML, LOAD_FILE),
 * libraries (SONAME, INSTALL PLUGIN), and the client commands that run a program or read a
 * file (`\!`, `\.`; --binary-mode also disables them). Where a string ends depends on the
 * session's sql_mode (NO_BACKSLASH_ESCAPES, ANSI_QUOTES): the restore starts its session in the
 * standard mode, and a dump that would leave it (a mode with either, a computed mode, a saved
 * mode variable not saved from @@sql_mode, a global or one-statement mode) is refused, so no
 * statement can hide in what only looks like a string. Works on bytes; nothing is decoded.
 */
export class HostileSqlFilter extends Transform {
  private state: 'code' | 'quoted' | 'line' | 'block' | 'blockStart' | 'blockStartM' | 'dashes' | 'modeSet' | 'modeValue' | 'modeLiteral' | 'modeVariable' | 'savedSet' | 'savedValue' = 'code';
  /** The byte that ends the current quoted string or identifier, and whether backslash escapes in it. */
  private quote = 0;
  private quoteEscapes = false;
  private escaped = false;
  private star = false;
  /** The previous byte in code, for two-byte tokens (`/*`, `--`, `*\/`, `\!`). */
  private last = 0;
  private word = '';
  private previousWord = '';
  /** How many `@` came right before the current word: one marks a user variable. */
  private beforeWord = 0;
  private atCount = 0;
  /** Inside `SET STATEMENT … FOR …`, whose modes hold for one statement only. */
  private setStatement = false;
  /** An INTO earlier in this statement: variables after it are written. */
  private intoSeen = false;
  private modeText = '';

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    try {
      for (const b of chunk) this.step(b);
      cb(null, chunk);
    } catch (err) {
      cb(err as Error);
    }
  }

  override _flush(cb: (err?: Error | null) => void): void {
    try {
      this.endWord();
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  private step(b: number): void {
    switch (this.state) {
      case 'quoted':
        if (this.escaped) this.escaped = false;
        else if (b === 0x5c && this.quoteEscapes) this.escaped = true;
        else if (b === this.quote) this.state = 'code'; // a doubled quote re-enters at once
        return;
      case 'line':
        if (b === 0x0a) this.state = 'code';
        return;
      case 'block':
        if (this.star && b === 0x2f) this.state = 'code';
        this.star = b === 0x2a;
        return;
      case 'blockStart':
      case 'blockStartM':
        if (b === 0x21)
          this.state = 'code'; // executable: what follows runs (a version number first)
        else if (b === 0x4d && this.state === 'blockStart') this.state = 'blockStartM';
        else {
          this.state = 'block';
          this.star = b === 0x2a;
        }
        return;
      case 'dashes':
        this.state = 'code';
        if (b <= 0x20) {
          if (b !== 0x0a) this.state = 'line';
          return;
        }
        break; // `--x` is two minus signs: x is code
      case 'modeSet': // after the word sql_mode: an assignment, or only a read of it
        if (b <= 0x20 || b === 0x3a) return;
        if (b === 0x3d) {
          this.state = 'modeValue';
          return;
        }
        this.state = 'code';
        break;
      case 'modeValue': // after `sql_mode =`: a literal, or a variable (an earlier mode, saved by the dump)
        if (b <= 0x20) return;
        if (b === 0x27 || b === 0x22) {
          this.state = 'modeLiteral';
          this.quote = b;
          this.modeText = '';
          return;
        }
        if (b !== 0x40) throw modeRefused('to a computed value');
        this.state = 'modeVariable';
        this.modeText = '';
        return;
      case 'modeVariable': // `sql_mode = @name`: only the dump's own saved modes
        if (isWordByte(b)) {
          this.modeText += String.fromCharCode(b).toLowerCase();
          return;
        }
        if (!SAVED_MODE_VARIABLES.includes(this.modeText)) throw modeRefused(`from the variable @${this.modeText}`);
        this.state = 'code';
        break;
      case 'savedSet': // after `@saved_sql_mode`: an assignment must be `= @@sql_mode`
        if (b <= 0x20 || b === 0x3a) return;
        if (b === 0x3d) {
          this.state = 'savedValue';
          this.modeText = '';
          return;
        }
        this.state = 'code';
        break;
      case 'savedValue':
        if (b <= 0x20 && !this.modeText) return;
        if (b === 0x40 || isWordByte(b) || b === 0x2e) {
          this.modeText += String.fromCharCode(b).toLowerCase();
          return;
        }
        if (!['@@sql_mode', '@@session.sql_mode'].includes(this.modeText)) throw modeRefused('through a variable not saved from @@sql_mode');
        this.state = 'code';
        break;
      case 'modeLiteral':
        if (b !== this.quote) {
          this.modeText += String.fromCharCode(b).toUpperCase();
          return;
        }
        this.applyMode(this.modeText);
        this.state = 'code';
        return;
    }
    this.code(b);
  }

  private code(b: number): void {
    const last = this.last;
    this.last = b;
    if (last === 0x2f && b === 0x2a) return this.enter('blockStart');
    if (last === 0x2d && b === 0x2d) return this.enter('dashes');
    if (last === 0x2a && b === 0x2f) {
      this.last = 0; // the end of an executable comment (in plain code, `*/` means nothing else)
      return;
    }
    if (last === 0x5c && (b === 0x21 || b === 0x2e)) {
      throw new Error(`the dump holds a client command (\\${String.fromCharCode(b)}) that runs a program or reads a file; refusing to restore it`);
    }
    if (isWordByte(b)) {
      if (!this.word) this.beforeWord = this.atCount;
      this.word += String.fromCharCode(b).toLowerCase();
      return;
    }
    const variable = this.beforeWord === 1;
    const word = this.endWord();
    this.atCount = b === 0x40 ? this.atCount + 1 : 0;
    if (variable && SAVED_MODE_VARIABLES.includes(word) && this.intoSeen) throw modeRefused(`through @${word}, written by SELECT … INTO`);
    if (variable && SAVED_MODE_VARIABLES.includes(word) && (b <= 0x20 || b === 0x3d || b === 0x3a)) {
      this.state = 'savedSet';
      return this.step(b);
    }
    if (word === 'into') this.intoSeen = true;
    if (b === 0x3b) {
      this.setStatement = false;
      this.intoSeen = false;
    }
    if (word === 'sql_mode' && !variable && (b <= 0x20 || b === 0x3d || b === 0x3a)) {
      this.state = 'modeSet';
      return this.step(b);
    }
    if (b === 0x27 || b === 0x22 || b === 0x60) {
      this.state = 'quoted';
      this.quote = b;
      this.quoteEscapes = b !== 0x60; // `identifiers` know no backslash escapes; strings do (standard mode)
    } else if (b === 0x23) this.state = 'line';
  }

  private enter(state: 'blockStart' | 'dashes'): void {
    this.endWord();
    this.state = state;
    this.last = 0;
  }

  private applyMode(text: string): void {
    const quoting = text
      .split(',')
      .map((m) => m.trim())
      .find((m) => ['NO_BACKSLASH_ESCAPES', 'ANSI_QUOTES', 'ANSI', 'DB2', 'MAXDB', 'MSSQL', 'ORACLE', 'POSTGRESQL'].includes(m));
    if (quoting) throw modeRefused(`to include ${quoting}`);
  }

  private endWord(): string {
    if (!this.word) return '';
    const w = this.word;
    this.word = '';
    const before = this.previousWord;
    this.previousWord = w;
    const pair = `${before} ${w}`;
    const found = FORBIDDEN_PAIRS.has(pair) ? pair : FORBIDDEN_WORDS.has(w) ? w : undefined;
    if (found) throw new Error(`the dump holds ${found.toUpperCase()}, which reaches files or libraries outside the database; refusing to restore it`);
    if (pair === 'set statement') this.setStatement = true;
    if (w === 'sql_mode' && (this.setStatement || before === 'global' || before === 'persist')) throw modeRefused('for one statement or globally');
    return w;
  }
}

/** The variables mariadb-dump saves the session's sql_mode in, to set it back. */
const SAVED_MODE_VARIABLES = ['old_sql_mode', 'saved_sql_mode'];
const modeRefused = (how: string) => new Error(`the dump sets sql_mode ${how}, which changes where its strings end; refusing to restore it`);
/** The session mode a restore starts in (mariadb-dump's own), so the filter reads as the server does. */
export const RESTORE_SESSION_MODE = "SET SESSION sql_mode='NO_AUTO_VALUE_ON_ZERO'";
const isWordByte = (b: number) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x5f || b === 0x24 || b >= 0x80;
const FORBIDDEN_WORDS = new Set(['outfile', 'dumpfile', 'load_file', 'soname']);
const FORBIDDEN_PAIRS = new Set(['load data', 'load xml', 'install plugin']);
