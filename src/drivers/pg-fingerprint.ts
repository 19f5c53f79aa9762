import { createHash, type Hash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import type { DockerEngine } from '../docker/engine.js';
import { type Fingerprint, type ItemHasher, MultisetDigest, methodVersions } from './fingerprint.js';
import { databaseArg, fromHex, hexOf, RAW_NAMES_ENV, shownName } from './pg-names.js';
import { PsqlLexer, StatementHolder } from './psql-lexer.js';

/**
 * PostgreSQL content fingerprints, computed on both sides without the replay path:
 *  - from the artifact, on the host, by reading the dump's bytes: every COPY row (a multiset
 *    per table, with the column list), every sequence's setval, every large object's bytes,
 *    the databases and the roles;
 *  - from a live server, by `COPY (SELECT <the same columns> FROM ONLY <table>) TO STDOUT` in
 *    the database's own encoding, which prints rows exactly as pg_dump's COPY did.
 * Names are kept as bytes seen through latin1, so any database encoding compares exactly.
 */
/** How each method hashes a row; v1 is still computed to check backups whose manifest holds one. */
const METHODS = methodVersions({ 'postgres-copy-v1': 'sha256', 'postgres-copy-v2': 'murmur3-128' });
export const PG_FINGERPRINT_METHOD = METHODS.current;
const { methodFor } = METHODS;

/** pg_dumpall writes this last; a dump without it was cut off. */
export const PG_DUMP_END = '-- PostgreSQL database cluster dump complete';

/** Session settings pg_dump uses for its COPY output (pg_dump.c setup_connection), plus UTC. */
export const PG_DUMP_ENV = { PGTZ: 'UTC', PGDATESTYLE: 'ISO' } as const;

const NEWLINE = 0x0a;
const QUOTED = '"(?:[^"]|"")*"';
// A table with no columns is `COPY "s"."t"  FROM stdin;` (two spaces), its rows empty lines.
// Names may hold line breaks and carriage returns (a header over several lines is read joined).
const COPY_HEADER = new RegExp(`^COPY (${QUOTED}\\.${QUOTED}) +(?:(\\(.*\\)) +)?FROM stdin;$`, 's');
/** The statements read whole when a quoted name or string puts them over several lines. */
const HELD = /^(?:COPY |SELECT pg_catalog\.setval\(|CREATE ROLE |CREATE DATABASE )/;
const SETVAL = /^SELECT pg_catalog\.setval\('((?:[^']|'')*)', (-?\d+), (true|false)\);$/;
const LO_CREATE = /^SELECT pg_catalog\.lo_create\('(\d+)'\);$/;
const LO_OPEN = /^SELECT pg_catalog\.lo_open\('(\d+)', \d+\);$/;
const LO_WRITE = /^SELECT pg_catalog\.lowrite\(0, E?'\\{1,2}x([0-9a-fA-F]*)'\);$/;
const CREATE_DATABASE = new RegExp(`^CREATE DATABASE (${QUOTED})`);
const CREATE_ROLE = new RegExp(`^CREATE ROLE (${QUOTED});$`);

const unquoteIdent = (q: string) => q.slice(1, -1).replaceAll('""', '"');

/** Where part names come from: one place, so both sides name things alike. */
const partName = {
  table: (db: string, table: string) => `${db}/table ${table}`,
  sequence: (db: string, seq: string) => `${db}/sequence ${seq}`,
  largeObject: (db: string, oid: string) => `${db}/large object ${oid}`,
};

/** The database a `\connect` line switches to (`\connect "db"` or `\connect -reuse-previous=on "dbname='db'"`). */
export function connectTarget(line: string): string | undefined {
  const m = /^\\connect (?:-reuse-previous=on )?(".*"|\S+)\s*$/.exec(line);
  if (!m) return undefined;
  const arg = m[1]!.startsWith('"') ? unquoteIdent(m[1]!) : m[1]!;
  const conninfo = /^dbname='((?:[^'\\]|\\.)*)'$/.exec(arg);
  return conninfo ? conninfo[1]!.replace(/\\(.)/g, '$1') : arg;
}

/**
 * A copy of a piece that is kept after its chunk was handed on: a view would keep the whole
 * 64 KB chunk alive, long enough to reach V8's old generation, which frees it only at a full
 * collection (such chunks piled up to 64 MB before one came).
 */
const kept = (piece: Buffer) => Buffer.from(piece);

/** Cuts byte chunks into line pieces without decoding or holding them: `(piece, endsLine)`. */
function eachLinePiece(chunk: Buffer, onPiece: (piece: Buffer, endsLine: boolean) => void): void {
  let start = 0;
  while (start < chunk.length) {
    const nl = chunk.indexOf(NEWLINE, start);
    if (nl < 0) {
      onPiece(chunk.subarray(start), false);
      return;
    }
    onPiece(chunk.subarray(start, nl), true);
    start = nl + 1;
  }
}

/**
 * Reads COPY text output one line at a time. Rows go into the current digest as they stream
 * (a row may be far larger than a chunk) and are never held. `\.` ends a block, and lines
 * starting `\z` are our markers: COPY never prints a backslash followed by `.` or `z` at the
 * start of a row (it doubles backslashes). Other lines (no digest set) are handed over as text.
 */
class CopyRows {
  private digest: MultisetDigest | undefined;
  private kind: 'row' | 'special' | undefined;
  private pending: Buffer = Buffer.alloc(0);
  private text: Buffer[] = [];
  private textBytes = 0;
  private row: ItemHasher | undefined;

  constructor(private readonly onLine: (text: string, special: boolean) => void) {}

  into(digest: MultisetDigest | undefined): void {
    this.digest = digest;
  }

  piece(piece: Buffer, endsLine: boolean): void {
    if (this.kind === undefined) {
      this.pending = this.pending.length ? Buffer.concat([this.pending, piece]) : piece;
      if (this.pending.length >= 2 || endsLine) {
        const p = this.pending;
        this.kind = p[0] === 0x5c && (p[1] === 0x2e || p[1] === 0x7a) ? 'special' : 'row';
        this.pending = Buffer.alloc(0);
        this.feed(p);
      } else this.pending = kept(this.pending);
    } else {
      this.feed(piece);
    }
    if (!endsLine) return;
    if (this.kind === 'row' && this.digest) (this.row ?? this.digest.item()).end();
    else this.onLine(Buffer.concat(this.text).toString('latin1'), this.kind === 'special');
    this.kind = undefined;
    this.row = undefined;
    this.text = [];
    this.textBytes = 0;
  }

  private feed(bytes: Buffer): void {
    if (this.kind === 'row' && this.digest) {
      this.row ??= this.digest.item();
      this.row.update(bytes);
    } else if (this.textBytes < 1 << 16) {
      this.text.push(kept(bytes));
      this.textBytes += bytes.length;
    }
  }
}

interface Accumulator {
  method: string;
  tables: Map<string, { columns: string; rows: MultisetDigest }>;
  sequences: Map<string, string>;
  largeObjects: Map<string, { digest(encoding: 'hex'): string }>;
  databases: Set<string>;
  roles: Set<string>;
}

function newAccumulator(method = PG_FINGERPRINT_METHOD): Accumulator {
  return { method, tables: new Map(), sequences: new Map(), largeObjects: new Map(), databases: new Set(), roles: new Set() };
}

function toFingerprint(acc: Accumulator): Fingerprint {
  const parts: Record<string, string> = {
    databases: JSON.stringify([...acc.databases].sort()),
    roles: JSON.stringify([...acc.roles].sort()),
  };
  for (const [name, t] of acc.tables) parts[name] = `${t.columns || '()'} ${t.rows}`;
  for (const [name, v] of acc.sequences) parts[name] = v;
  for (const [name, h] of acc.largeObjects) parts[name] = h.digest('hex');
  return { method: acc.method, parts };
}

/**
 * The fingerprint of a `pg_dumpall` script, fed its raw bytes as they stream by
 * (`push`), without decoding anything but the short statement lines it looks for.
 */
export class PgDumpFingerprinter {
  private readonly acc: Accumulator;
  /** `recorded`: a manifest's fingerprint, to be computed the same way (else the current method). */
  constructor(recorded?: Fingerprint) {
    this.acc = newAccumulator(methodFor(recorded));
  }
  private db = '';
  private inCopy = false;
  private line: Buffer[] = [];
  private lineBytes = 0;
  private largeObject: Hash | undefined;
  private readonly largeObjects = new Map<string, Hash>();
  private readonly lexer = new PsqlLexer();
  /**
   * A statement (HELD) that a line break in a quoted name or string puts over several lines, read
   * joined as psql sends it; one longer than any pg_dump writes is read as it is (no statement of ours).
   */
  private readonly holder = new StatementHolder<undefined>(this.lexer, { starts: HELD, within: 'quoted-text' });
  private readonly copy = new CopyRows((text) => {
    if (text === '\\.' || text === '\\.\r') {
      this.inCopy = false;
      this.copy.into(undefined);
    }
  });

  push(chunk: Buffer): void {
    eachLinePiece(chunk, (piece, endsLine) => {
      if (this.inCopy) return this.copy.piece(piece, endsLine);
      if (this.lineBytes < 1 << 20) this.line.push(endsLine ? piece : kept(piece)); // statements we read are short; long ones are never ours
      this.lineBytes += piece.length;
      if (!endsLine) return;
      const text = this.lineBytes < 1 << 20 ? Buffer.concat(this.line).toString('latin1') : '';
      this.line = [];
      this.lineBytes = 0;
      this.statement(text);
    });
  }

  /** A Writable that feeds the fingerprinter (to tee or pipe a dump through). */
  writable(): Writable {
    return new Writable({
      write: (chunk: Buffer, _e, cb) => {
        try {
          this.push(chunk);
          cb();
        } catch (err) {
          cb(err as Error); // fails the stream, not the process
        }
      },
    });
  }

  /** Call once the whole dump went through. */
  result(): Fingerprint {
    if (this.lineBytes > 0) {
      this.statement(Buffer.concat(this.line).toString('latin1'));
      this.line = [];
      this.lineBytes = 0;
    }
    this.holder.end(); // the dump ended inside a quoted name or string: no statement of ours
    return toFingerprint(this.acc);
  }

  /** Whether pg_dumpall's final line went by: a dump without it was cut off. */
  complete = false;

  private statement(line: string): void {
    if (line === PG_DUMP_END) this.complete = true;
    const facts = this.lexer.line(line);
    // A statement we read whose names or strings hold line breaks is read joined, as psql sends it.
    const statement = this.holder.line(line, facts, undefined, line.length + 1);
    if (!statement) return;
    const { goesOn } = statement;
    const text = statement.held ? statement.texts.join('\n') : line;
    const atStart = statement.held || facts.startsStatement; // a held statement's first line began where psql starts one
    // Where psql would see a COPY (not a line that looks like one inside a quoted body), as one
    // whole statement (the restore's filter reads it so, pg-restore-filter.ts).
    const whole = atStart && !goesOn && facts.statementEnds.length === 1 && facts.statementEnds[0] === line.length - 1;
    const copy = whole ? COPY_HEADER.exec(text) : null;
    if (copy) {
      const rows = new MultisetDigest(METHODS.itemHash(this.acc.method));
      this.acc.tables.set(partName.table(this.db, copy[1]!), { columns: copy[2] ?? '', rows });
      this.inCopy = true;
      this.copy.into(rows);
      return;
    }
    if (text.startsWith('\\connect')) {
      this.db = connectTarget(text) ?? this.db;
      return;
    }
    const setval = SETVAL.exec(text);
    if (setval) {
      this.acc.sequences.set(partName.sequence(this.db, setval[1]!.replaceAll("''", "'")), `${setval[2]} ${setval[3] === 'true' ? 't' : 'f'}`);
      return;
    }
    const loCreate = LO_CREATE.exec(text);
    if (loCreate) {
      const hash = createHash('sha256');
      this.largeObjects.set(partName.largeObject(this.db, loCreate[1]!), hash);
      this.acc.largeObjects.set(partName.largeObject(this.db, loCreate[1]!), hash);
      return;
    }
    const loOpen = LO_OPEN.exec(text);
    if (loOpen) {
      this.largeObject = this.largeObjects.get(partName.largeObject(this.db, loOpen[1]!));
      return;
    }
    const loWrite = LO_WRITE.exec(text);
    if (loWrite) {
      this.largeObject?.update(Buffer.from(loWrite[1]!, 'hex'));
      return;
    }
    const database = CREATE_DATABASE.exec(text);
    if (database) {
      this.acc.databases.add(unquoteIdent(database[1]!));
      return;
    }
    const role = CREATE_ROLE.exec(text);
    if (role) this.acc.roles.add(unquoteIdent(role[1]!));
  }
}

export interface LiveFingerprintOptions {
  engine: DockerEngine;
  containerId: string;
  user: string;
  /** The backup's fingerprint: its column orders are used where the columns are the same. */
  expected?: Fingerprint;
}

/**
 * The fingerprint of a running server, read with psql inside the container. Each database is
 * read in its own encoding, so rows come out as the bytes pg_dump wrote; names come as hex of
 * their stored bytes (pg-names.ts), so every byte of a name comes back, whatever it is.
 */
export async function livePgFingerprint(o: LiveFingerprintOptions): Promise<Fingerprint> {
  // Computed the way the backup's was, so a backup from before a method change still checks.
  const acc = newAccumulator(methodFor(o.expected));
  const dbRows = await catalogQuery(o, 'postgres', `SELECT ${hexOf('datname')}, ${hexOf('pg_encoding_to_char(encoding)')} FROM pg_database WHERE datallowconn`);
  for (const [name] of dbRows) acc.databases.add(name!);
  for (const [role] of await catalogQuery(o, 'postgres', `SELECT ${hexOf('rolname')} FROM pg_roles WHERE rolname !~ '^pg_'`)) acc.roles.add(role!);
  for (const [db, encoding] of dbRows) await readDatabase(o, acc, db!, encoding!);
  return toFingerprint(acc);
}

/**
 * Rows of a catalog query that selects only hexOf columns, each field as its bytes through
 * latin1. psql prints hex as it is, so its own separators (`|` and a line break) split
 * nothing else; an empty field is an empty string (or NULL).
 */
async function catalogQuery(o: LiveFingerprintOptions, db: string, sql: string): Promise<string[][]> {
  const r = await o.engine.exec(o.containerId, ['psql', '-U', o.user, '-d', databaseArg(db), '-v', 'ON_ERROR_STOP=1', '-AtXq', '-c', sql], { env: RAW_NAMES_ENV });
  if (r.exitCode !== 0) throw new Error(`psql on ${shownName(db)} failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n')[0] ?? ''}`);
  const text = r.stdout.replace(/\n$/, '');
  if (!/^[0-9a-f|\n]*$/.test(text)) throw new Error(`psql on ${shownName(db)} printed more than the hex it was asked for: ${JSON.stringify(text.slice(0, 60))}`);
  return text ? text.split('\n').map((row) => row.split('|').map(fromHex)) : [];
}

/** The tables to read: their qualified name, column list and an extension's filter (empty if none), quoted as pg_dump quotes them. */
const TABLES_SQL = `
SELECT ${hexOf(`'"' || replace(n.nspname, '"', '""') || '"."' || replace(c.relname, '"', '""') || '"'`)},
       ${hexOf(`coalesce((SELECT string_agg('"' || replace(a.attname, '"', '""') || '"', ', ' ORDER BY a.attnum)
                 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''), '')`)},
       ${hexOf(`coalesce((SELECT e.extcondition[array_position(e.extconfig, c.oid)] FROM pg_extension e WHERE c.oid = ANY (e.extconfig)), '')`)}
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence <> 't' AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND (NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
       OR EXISTS (SELECT 1 FROM pg_extension e WHERE c.oid = ANY (e.extconfig)))`;

const SEQUENCES_SQL = `
SELECT ${hexOf(`'"' || replace(n.nspname, '"', '""') || '"."' || replace(c.relname, '"', '""') || '"'`)}
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'S' AND c.relpersistence <> 't' AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`;

const LARGE_OBJECTS_SQL = `COPY (SELECT m.oid, encode(sha256(coalesce((SELECT string_agg(l.data, ''::bytea ORDER BY l.pageno) FROM pg_largeobject l WHERE l.loid = m.oid), ''::bytea)), 'hex') FROM pg_largeobject_metadata m) TO STDOUT;`;

/** The column list to read a table with: the backup's order when the columns are the same. */
function columnOrder(expected: Fingerprint | undefined, part: string, live: string): string {
  const want = expected?.parts[part]?.match(/^(\(.*\)|\(\)) n=/s)?.[1]; // `s`: names may hold line breaks
  if (!want) return live ? `(${live})` : '';
  const names = (cols: string) => (cols.match(new RegExp(QUOTED, 'g')) ?? []).sort().join(',');
  return names(want) === names(`(${live})`) ? (want === '()' ? '' : want) : live ? `(${live})` : '';
}

async function readDatabase(o: LiveFingerprintOptions, acc: Accumulator, db: string, encoding: string): Promise<void> {
  const tables = await catalogQuery(o, db, TABLES_SQL);
  const sequences = await catalogQuery(o, db, SEQUENCES_SQL);
  // The script is built as bytes in the database's encoding (names are latin1 views of them).
  // pg_dump's own session settings (setup_connection): values whose text depends on them
  // (regclass names are schema-qualified under an empty search_path and quoted with
  // quote_all_identifiers; floats; intervals) then print exactly as in the dump.
  const script: string[] = [
    "SET row_security = off; SET extra_float_digits = 3; SET IntervalStyle = postgres; SET DateStyle = ISO; SET statement_timeout = 0; SET quote_all_identifiers = true; SET search_path = '';",
  ];
  const targets: Array<{ kind: 'table'; name: string; columns: string; rows: MultisetDigest } | { kind: 'sequence'; name: string }> = [];
  for (const [table, live, condition] of tables) {
    const name = partName.table(db, table!);
    const columns = columnOrder(o.expected, name, live!);
    const where = condition ? ` ${condition}` : '';
    script.push(`\\echo '\\\\zT ${targets.length}'`, `COPY (SELECT ${columns ? columns.slice(1, -1) : ''} FROM ONLY ${table}${where}) TO STDOUT;`);
    targets.push({ kind: 'table', name, columns, rows: new MultisetDigest(METHODS.itemHash(acc.method)) });
  }
  for (const [seq] of sequences) {
    script.push(`\\echo '\\\\zS ${targets.length}'`, `COPY (SELECT last_value, is_called FROM ${seq}) TO STDOUT;`);
    targets.push({ kind: 'sequence', name: partName.sequence(db, seq!) });
  }
  script.push(`\\echo '\\\\zL'`, LARGE_OBJECTS_SQL, `\\echo '\\\\zE'`);

  let current: (typeof targets)[number] | 'lo' | undefined;
  let ended = false;
  const rows = new CopyRows((text, marker) => {
    if (marker) {
      const m = /^\\z([TSLE])(?: (\d+))?$/.exec(text);
      if (!m) throw new Error(`unexpected psql output line: ${text.slice(0, 60)}`);
      if (m[1] === 'E') ended = true;
      current = m[1] === 'L' ? 'lo' : m[1] === 'E' ? undefined : targets[Number(m[2])];
      rows.into(current && current !== 'lo' && current.kind === 'table' ? current.rows : undefined);
      return;
    }
    if (current === 'lo') {
      const [oid, sha] = text.split('\t');
      acc.largeObjects.set(partName.largeObject(db, oid!), { digest: () => sha ?? '' });
    } else if (current?.kind === 'sequence') {
      const [value, called] = text.split('\t');
      acc.sequences.set(current.name, `${value} ${called}`);
    }
  });
  const out = new Writable({
    write(chunk: Buffer, _e, cb) {
      try {
        eachLinePiece(chunk, (piece, endsLine) => rows.piece(piece, endsLine));
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
  });
  out.on('error', () => undefined); // fails the exec (and so this read) through the write callback
  const r = await o.engine.exec(o.containerId, ['psql', '-U', o.user, '-d', databaseArg(db), '-v', 'ON_ERROR_STOP=1', '-qAX'], {
    env: { PGCLIENTENCODING: encoding, ...PG_DUMP_ENV },
    stdin: Readable.from([Buffer.from(`${script.join('\n')}\n`, 'latin1')]),
    stdout: out,
  });
  if (r.exitCode !== 0 || !ended) throw new Error(`reading ${shownName(db)} for its fingerprint failed: ${r.stderr.trim().split('\n')[0] || `psql exited ${r.exitCode}`}`);
  for (const t of targets) if (t.kind === 'table') acc.tables.set(t.name, { columns: t.columns, rows: t.rows });
}
