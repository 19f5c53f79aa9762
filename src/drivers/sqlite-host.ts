import { createHash } from 'node:crypto';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { type ItemHash, MultisetDigest } from './fingerprint.js';

/**
 * Opens a frozen copy (db with its -wal or -journal beside it) so SQLite recovers it, writes a
 * clean single-file copy with VACUUM INTO, and checks that copy. Returns row counts per table.
 */
export function checkSqliteCopy(rawCopy: string, cleanCopy: string, originalPath: string): Record<string, number> {
  const source = new DatabaseSync(rawCopy);
  try {
    source.exec(`VACUUM INTO '${cleanCopy.replaceAll("'", "''")}'`);
  } finally {
    source.close();
  }
  return checkedTableCounts(cleanCopy, originalPath);
}

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** integrity_check must say ok; returns the row count of every table. */
export function checkedTableCounts(file: string, originalPath: string): Record<string, number> {
  return withDb(file, (db) => {
    const check = db
      .prepare('PRAGMA integrity_check')
      .all()
      .map((r) => Object.values(r)[0])
      .join('; ');
    if (check !== 'ok') throw new Error(`the copy of ${originalPath} failed integrity_check: ${check}`);
    const counts: Record<string, number> = {};
    for (const name of tableNames(db)) counts[name] = Number(db.prepare(`SELECT count(*) AS n FROM ${ident(name)}`).get()!.n);
    return counts;
  });
}

/**
 * Per table, a multiset of rows where every value is written with its type and exact bytes
 * (text and blobs in hex, reals with 17 significant digits), plus the schema. Row order and
 * page layout do not matter; any changed value, row or table does.
 */
export function sqliteTableDigests(file: string, itemHash: ItemHash): Record<string, string> {
  return withDb(file, (db) => {
    const parts: Record<string, string> = {};
    const schema = db.prepare("SELECT type, name, coalesce(sql, '') AS sql FROM sqlite_master ORDER BY type, name").all();
    parts.schema = createHash('sha256').update(JSON.stringify(schema)).digest('hex');
    for (const name of tableNames(db)) {
      const columns = db
        .prepare(`SELECT name FROM pragma_table_info(?)`)
        .all(name)
        .map((c) => ident(String(c.name)));
      const exprs = columns.map((c) => `typeof(${c}) || ':' || CASE typeof(${c}) WHEN 'real' THEN printf('%!.17g', ${c}) ELSE hex(${c}) END`);
      const rows = new MultisetDigest(itemHash);
      const sql = `SELECT ${exprs.length ? exprs.join(` || '|' || `) : "''"} AS r FROM ${ident(name)}`;
      // The row text is ASCII (type names, hex, digits), so latin1 gives its bytes as they are.
      for (const [r] of arrayRows(db.prepare(sql))) rows.addBytes(Buffer.from(String(r), 'latin1'));
      parts[`table ${name}`] = rows.toString();
    }
    return parts;
  });
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

function tableNames(db: DatabaseSync): string[] {
  return db
    .prepare("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .all()
    .map((t) => String(t.name));
}

function withDb<T>(file: string, work: (db: DatabaseSync) => T): T {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return work(db);
  } finally {
    db.close();
  }
}

/** checkSqliteCopy, then the clean copy's table digests: one call, so one worker thread (see sqlite.ts). */
export function checkAndDigest(rawCopy: string, cleanCopy: string, originalPath: string, itemHash: ItemHash): { tables: Record<string, number>; digests: Record<string, string> } {
  const tables = checkSqliteCopy(rawCopy, cleanCopy, originalPath);
  return { tables, digests: sqliteTableDigests(cleanCopy, itemHash) };
}
