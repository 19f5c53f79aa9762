import { createHash } from 'node:crypto';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { type ItemHash, MultisetDigest } from './fingerprint.js';

/**
 * SQLite's own heap (page cache, sorters, and with temp_store=MEMORY every temporary table and
 * index) may not grow past this: a query that would need more fails with "out of memory"
 * instead of filling the host's /var/tmp. Process-wide, which is one reason these functions run
 * in a child process of their own (sqlite.ts). Checking, compacting and digesting a 240 MB
 * database of the benchmark stays far below it.
 */
export const SQLITE_HEAP_LIMIT_BYTES = 256 * 1024 * 1024;

/**
 * Opens a database stackvault did not write (a copy of a live app's file, or a backup's): a
 * schema may be hostile. Its views and triggers may call no function that is not marked safe
 * for schemas (trusted_schema=OFF), the defensive flag refuses writes to the schema, no
 * extension is loaded, and temporary files are kept in SQLite's bounded heap, never on disk.
 */
function open(file: string, readOnly: boolean): DatabaseSync {
  const db = new DatabaseSync(file, { readOnly, allowExtension: false, defensive: true });
  try {
    db.exec(`PRAGMA trusted_schema = OFF; PRAGMA temp_store = MEMORY; PRAGMA hard_heap_limit = ${SQLITE_HEAP_LIMIT_BYTES}`);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * Opens a frozen copy (db with its -wal or -journal beside it) so SQLite recovers it, writes a
 * clean single-file copy with VACUUM INTO, and checks that copy. Returns row counts per table.
 */
export function checkSqliteCopy(rawCopy: string, cleanCopy: string, originalPath: string): Record<string, number> {
  const source = open(rawCopy, false);
  try {
    source.exec(`VACUUM INTO '${cleanCopy.replaceAll("'", "''")}'`);
  } finally {
    source.close();
  }
  return checkedTableCounts(cleanCopy, originalPath).tables;
}

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * integrity_check must say ok; returns the row count of every ordinary table, and the names of
 * the virtual tables, which are not counted: their rows are derived (an FTS index's content is
 * in its shadow tables, which are ordinary ones), and reading one may never end (an FTS table
 * whose content is a view that recurses without end).
 */
export function checkedTableCounts(file: string, originalPath: string): { tables: Record<string, number>; virtual: string[] } {
  return withDb(file, (db) => {
    const check = db
      .prepare('PRAGMA integrity_check')
      .all()
      .map((r) => Object.values(r)[0])
      .join('; ');
    if (check !== 'ok') throw new Error(`the copy of ${originalPath} failed integrity_check: ${check}`);
    const tables: Record<string, number> = {};
    for (const name of tableNames(db, false)) tables[name] = Number(db.prepare(`SELECT count(*) AS n FROM ${ident(name)}`).get()!.n);
    return { tables, virtual: virtualTableNames(db) };
  });
}

/**
 * Per table, a multiset of rows where every value is written with its type and exact bytes
 * (text and blobs in hex, reals with 17 significant digits), plus the schema. Row order and
 * page layout do not matter; any changed value, row or table does.
 *
 * Virtual tables are read only when `withVirtualTables` (the rule of the methods before
 * sqlite-v3, computed again only to check backups that recorded one of them): their rows are
 * derived from ordinary tables, which are digested, and reading them may never end.
 */
export function sqliteTableDigests(file: string, itemHash: ItemHash, withVirtualTables = false): Record<string, string> {
  return withDb(file, (db) => {
    const parts: Record<string, string> = {};
    const schema = db.prepare("SELECT type, name, coalesce(sql, '') AS sql FROM sqlite_master ORDER BY type, name").all();
    parts.schema = createHash('sha256').update(JSON.stringify(schema)).digest('hex');
    for (const name of tableNames(db, withVirtualTables)) {
      const columns = db
        .prepare(`SELECT name FROM pragma_table_info(?)`)
        .all(name)
        .map((c) => ident(String(c.name)));
      // A blob comes as it is and is written in hex here, a piece at a time (see addRow). A
      // text of over BIG_TEXT_BYTES is left out of the first pass (the cell says BIG_TEXT); the
      // rows that hold one are read in a second, with such texts as their bytes and a last column
      // saying which cells hold one ('1' for each): a column more for every row was 35 % slower.
      const big = (c: string) => `typeof(${c}) = 'text' AND octet_length(${c}) > ${BIG_TEXT_BYTES}`;
      const cells = (bigText: (c: string) => string) =>
        columns.map(
          (c) =>
            `CASE typeof(${c}) WHEN 'blob' THEN ${c} WHEN 'text' THEN CASE WHEN octet_length(${c}) > ${BIG_TEXT_BYTES} THEN ${bigText(c)} ELSE 'text:' || hex(${c}) END ELSE typeof(${c}) || ':' || CASE typeof(${c}) WHEN 'real' THEN printf('%!.17g', ${c}) ELSE hex(${c}) END END`,
        );
      const rows = new MultisetDigest(itemHash);
      let bigRows = 0;
      const sql = `SELECT ${columns.length ? cells(() => `'${BIG_TEXT}'`).join(', ') : "''"} FROM ${ident(name)}`;
      for (const values of arrayRows(db.prepare(sql))) {
        if (values.includes(BIG_TEXT)) bigRows++;
        else addRow(rows, values, '');
      }
      if (bigRows) {
        let read = 0;
        const bigSql = `SELECT ${cells((c) => `CAST(${c} AS BLOB)`).join(', ')}, ${columns.map((c) => `(${big(c)})`).join(' || ')} FROM ${ident(name)} WHERE ${columns.map(big).join(' OR ')}`;
        for (const values of arrayRows(db.prepare(bigSql))) {
          const texts = String(values.pop());
          addRow(rows, values, texts);
          read++;
        }
        if (read !== bigRows) throw new Error(`table ${name} gave ${read} rows with a big text where it had ${bigRows}`);
      }
      parts[`table ${name}`] = rows.toString();
    }
    return parts;
  });
}

/** Bytes of a blob written in hex at once: 1 MiB becomes 2 MiB of text. */
const HEX_PIECE = 1 << 20;
/** A text of more bytes is read as its bytes and written in hex here, like a blob: hex() in SQL would make a string twice its size. */
const BIG_TEXT_BYTES = 65_536;
/** A cell's value in the first pass for such a text: no cell written `type:HEX` can be it. */
const BIG_TEXT = 'text:>64KiB';
const BAR = Buffer.from('|');
const BLOB = Buffer.from('blob:');
const TEXT = Buffer.from('text:');

/**
 * One row as its item: each value `type:text` (text, integers and NULL in hex of their bytes,
 * reals with 17 digits, all as SQL writes them), joined by `|`. The row text is ASCII, so
 * latin1 gives its bytes as they are. A blob is written in SQL's upper-case hex here, 1 MiB at
 * a time, into the item's hash: hex() of a 150 MB blob in SQL made a 300 MB string, which ended
 * the child (its heap is capped at 128 MB) with a fatal out-of-memory, and a 60 MB one took the
 * child to 590 MB; past 512 MB of hex no string can hold it at all. A big text comes the same
 * way (`texts` has a '1' at its column) and is written `text:` and the hex of its bytes, as
 * SQL's hex() writes a text (its bytes in the database's encoding).
 */
function addRow(rows: MultisetDigest, values: unknown[], texts: string): void {
  if (!values.some((v) => v instanceof Uint8Array)) return rows.addBytes(Buffer.from(values.join('|'), 'latin1'));
  const item = rows.item();
  for (const [i, v] of values.entries()) {
    if (i > 0) item.update(BAR);
    if (!(v instanceof Uint8Array)) {
      item.update(Buffer.from(String(v), 'latin1'));
      continue;
    }
    item.update(texts[i] === '1' ? TEXT : BLOB);
    for (let at = 0; at < v.length; at += HEX_PIECE) {
      const hex = Buffer.from(v.buffer, v.byteOffset + at, Math.min(HEX_PIECE, v.length - at)).toString('hex');
      item.update(Buffer.from(hex.toUpperCase(), 'latin1'));
    }
  }
  item.end();
}

/**
 * A statement's rows as arrays. An object per row leaves native memory that only a full
 * collection frees: 700 k rows took a process from 43 to 80 MB, against 57 MB as arrays (and
 * 10-15 % faster). Node before 24 (or 23.11) has no arrays; it gets objects, in column order.
 */
function arrayRows(statement: StatementSync): Iterable<unknown[]> {
  if (typeof statement.setReturnArrays === 'function') {
    statement.setReturnArrays(true);
    return statement.iterate() as Iterable<unknown[]>;
  }
  return (function* () {
    for (const row of statement.iterate()) yield Object.values(row);
  })();
}

/**
 * A virtual table has no b-tree of its own (root page 0) and is created by CREATE VIRTUAL
 * TABLE; either is enough to leave it out. Told from sqlite_master alone: nothing here
 * connects to the virtual table's module.
 */
const VIRTUAL = "(rootpage IS NULL OR rootpage = 0 OR sql LIKE 'CREATE VIRTUAL TABLE%')";

/** Tables by name, as older methods listed them (virtual ones too) or ordinary ones only. */
function tableNames(db: DatabaseSync, withVirtualTables: boolean): string[] {
  return db
    .prepare(`SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'${withVirtualTables ? '' : ` AND NOT ${VIRTUAL}`} ORDER BY name`)
    .all()
    .map((t) => String(t.name));
}

function virtualTableNames(db: DatabaseSync): string[] {
  return db
    .prepare(`SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' AND ${VIRTUAL} ORDER BY name`)
    .all()
    .map((t) => String(t.name));
}

function withDb<T>(file: string, work: (db: DatabaseSync) => T): T {
  const db = open(file, true);
  try {
    return work(db);
  } finally {
    db.close();
  }
}

/**
 * How many entries (tables, indexes, views, triggers) the schema of a frozen copy has, read as
 * checkSqliteCopy opens it (recovering its -wal): VACUUM INTO's time grows with their square (sqlite.ts).
 */
export function schemaEntries(rawCopy: string): number {
  const db = open(rawCopy, false);
  try {
    return Number(db.prepare('SELECT count(*) AS n FROM sqlite_master').get()!.n);
  } finally {
    db.close();
  }
}

/** checkSqliteCopy, then the clean copy's table digests: one call, so one child process (see sqlite.ts). */
export function checkAndDigest(
  rawCopy: string,
  cleanCopy: string,
  originalPath: string,
  itemHash: ItemHash,
  withVirtualTables = false,
): { tables: Record<string, number>; digests: Record<string, string> } {
  const tables = checkSqliteCopy(rawCopy, cleanCopy, originalPath);
  return { tables, digests: sqliteTableDigests(cleanCopy, itemHash, withVirtualTables) };
}

/**
 * A database from a backup, before it is restored: integrity_check, the row counts, and the
 * digests of `method`'s rule, in one call. Throws, naming the file, when it is not a database.
 */
export function checkBackupCopy(
  file: string,
  originalPath: string,
  itemHash: ItemHash,
  withVirtualTables: boolean,
): { tables: Record<string, number>; virtual: string[]; digests: Record<string, string> } {
  const counted = checkedTableCounts(file, originalPath);
  return { ...counted, digests: sqliteTableDigests(file, itemHash, withVirtualTables) };
}
