import { DatabaseSync } from 'node:sqlite';

/**
 * Opens a frozen copy (db + -wal beside it) so SQLite recovers it, writes a clean single-file
 * copy with VACUUM INTO, and checks that copy. Returns row counts per table.
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

/** integrity_check must say ok; returns the row count of every table. */
export function checkedTableCounts(file: string, originalPath: string): Record<string, number> {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const check = db.prepare('PRAGMA integrity_check').all().map((r) => Object.values(r)[0]).join('; ');
    if (check !== 'ok') throw new Error(`the copy of ${originalPath} failed integrity_check: ${check}`);
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all();
    const counts: Record<string, number> = {};
    for (const t of tables) {
      const name = String(t.name);
      counts[name] = Number(db.prepare(`SELECT count(*) AS n FROM "${name.replaceAll('"', '""')}"`).get()!.n);
    }
    return counts;
  } finally {
    db.close();
  }
}
