import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync, StatementSync } from 'node:sqlite';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { MultisetDigest } from '../../src/drivers/fingerprint.js';
import { sqliteTableDigests } from '../../src/drivers/sqlite-host.js';
import { tempDir } from '../support/artifacts.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function newDb(setup: (db: DatabaseSync) => void): Promise<string> {
  const dir = await tempDir('sqlite-digests');
  dirs.push(dir);
  const file = join(dir, 'x.db');
  const db = new DatabaseSync(file);
  try {
    setup(db);
  } finally {
    db.close();
  }
  return file;
}

/** Every SQLite type, a quoted table name, non-ASCII text, empty and binary blobs, NULLs, extreme reals. */
function everyKind(db: DatabaseSync): void {
  db.exec(`CREATE TABLE "odd ""name"" ü" (i INTEGER, r REAL, t TEXT, b BLOB, n); CREATE TABLE empty (x); CREATE INDEX ix ON "odd ""name"" ü"(t)`);
  const ins = db.prepare(`INSERT INTO "odd ""name"" ü" VALUES (?, ?, ?, ?, ?)`);
  ins.run(1, 0.1, 'plain', Buffer.from([0, 255, 10]), null);
  ins.run(-9007199254740991n, -1e300, 'Grüße, 日本語, 😀', Buffer.alloc(0), 42);
  ins.run(0, 5e-324, '', Buffer.from('text as blob'), 'text in an untyped column');
  ins.run(null, null, null, null, 3.5);
}

/** The same digests with StatementSync's array rows taken away, as on a Node without them. */
function withoutArrayRows<T>(work: () => T): T {
  const proto = StatementSync.prototype as unknown as Record<string, unknown>;
  const saved = Object.getOwnPropertyDescriptor(proto, 'setReturnArrays');
  Object.defineProperty(proto, 'setReturnArrays', { value: undefined, configurable: true, writable: true });
  try {
    return work();
  } finally {
    if (saved) Object.defineProperty(proto, 'setReturnArrays', saved);
  }
}

describe('SQLite table digests', () => {
  it('stay what older backups recorded (sqlite-v1 and sqlite-v2), with or without array rows', async () => {
    const file = await newDb(everyKind);
    // Recorded from the digests as they were before rows were read as arrays: manifests
    // written then must still verify.
    const v2 = {
      schema: '7a012e86484cbe2060859db2af4e364fd9ce88999db311751a32d3abd984c2f7',
      'table empty': 'n=0 00000000000000000000000000000000',
      'table odd "name" ü': 'n=4 663887501527f5fd2d3a700f79de7935',
    };
    const v1 = { ...v2, 'table empty': `n=0 ${'0'.repeat(64)}`, 'table odd "name" ü': 'n=4 fffa1cbbef60ef782a943ec111eeee35a8ba15586dbdce0a607162c639394994' };
    expect(sqliteTableDigests(file, 'murmur3-128')).toEqual(v2);
    expect(sqliteTableDigests(file, 'sha256')).toEqual(v1);
    expect(withoutArrayRows(() => sqliteTableDigests(file, 'murmur3-128'))).toEqual(v2);
  });

  it('match rows read back and written out by plain JS, for any integers, text and blobs', async () => {
    const cell = fc.oneof(fc.constant(null), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.string({ unit: 'binary', maxLength: 40 }), fc.uint8Array({ maxLength: 40 }));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(cell, cell), { maxLength: 30 }), async (rows) => {
        const file = await newDb((db) => {
          db.exec('CREATE TABLE t (a, b)');
          const ins = db.prepare('INSERT INTO t VALUES (?, ?)');
          for (const [a, b] of rows) ins.run(a, b);
        });
        // The reference reads the stored values (SQLite keeps text as UTF-8, so a lone
        // surrogate is what Node bound it as) and writes each as typeof:HEX of its bytes.
        const db = new DatabaseSync(file, { readOnly: true });
        const reference = new MultisetDigest('murmur3-128');
        const statement = db.prepare('SELECT a, b FROM t');
        statement.setReadBigInts(true);
        for (const row of statement.all()) {
          const text = [row.a, row.b].map((v) => {
            if (v === null) return 'null:';
            if (typeof v === 'bigint') return `integer:${Buffer.from(String(v)).toString('hex').toUpperCase()}`;
            if (typeof v === 'string') return `text:${Buffer.from(v, 'utf8').toString('hex').toUpperCase()}`;
            return `blob:${Buffer.from(v as Uint8Array)
              .toString('hex')
              .toUpperCase()}`;
          });
          reference.addBytes(Buffer.from(text.join('|'), 'latin1'));
        }
        db.close();
        expect(sqliteTableDigests(file, 'murmur3-128')['table t']).toBe(reference.toString());
      }),
      { numRuns: 60 },
    );
  });

  it('match them for texts past 64 KiB too, read as their bytes, in UTF-8 and UTF-16 databases', async () => {
    // Texts just past the size read as bytes, non-ASCII, some starting with a NUL (SQL's length() stops there).
    const big = fc
      .tuple(fc.string({ unit: 'grapheme', maxLength: 6 }), fc.integer({ min: 65_530, max: 70_000 }), fc.constantFrom('', '\0'))
      .map(([s, n, lead]) => lead + `${s}é`.repeat(Math.ceil(n / (s.length + 1))));
    const cell = fc.oneof(fc.constant(null), fc.string({ unit: 'grapheme', maxLength: 20 }), fc.uint8Array({ maxLength: 20 }), big);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('UTF-8', 'UTF-16le', 'UTF-16be'), fc.array(fc.tuple(cell, cell), { minLength: 1, maxLength: 6 }), async (encoding, rows) => {
        const file = await newDb((db) => {
          db.exec(`PRAGMA encoding = '${encoding}'; CREATE TABLE t (a, b)`);
          const ins = db.prepare('INSERT INTO t VALUES (?, ?)');
          for (const [a, b] of rows) ins.run(a, b);
        });
        const reference = new MultisetDigest('murmur3-128');
        const bytesOf = (text: string) => (encoding === 'UTF-8' ? Buffer.from(text, 'utf8') : encoding === 'UTF-16le' ? Buffer.from(text, 'utf16le') : Buffer.from(text, 'utf16le').swap16());
        for (const row of rows) {
          const text = row.map((v) => {
            if (v === null) return 'null:';
            if (typeof v === 'string') return `text:${bytesOf(v).toString('hex').toUpperCase()}`;
            return `blob:${Buffer.from(v).toString('hex').toUpperCase()}`;
          });
          reference.addBytes(Buffer.from(text.join('|'), 'latin1'));
        }
        expect(sqliteTableDigests(file, 'murmur3-128')['table t']).toBe(reference.toString());
      }),
      { numRuns: 40 },
    );
  });
});
