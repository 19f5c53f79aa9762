import { spawn } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { checkAndDigest, checkBackupCopy, checkedTableCounts, sqliteTableDigests } from '../../src/drivers/sqlite-host.js';
import { MultisetDigest } from '../../src/drivers/fingerprint.js';
import { SQLITE_CHILD_ARGV, sqliteDeadlineMs } from '../../src/drivers/sqlite.js';
import { inChild } from '../../src/util/child-call.js';
import { tempDir } from '../support/artifacts.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function newDb(sql: string): Promise<string> {
  const dir = await tempDir('sqlite-bounded');
  dirs.push(dir);
  const file = join(dir, 'x.db');
  const db = new DatabaseSync(file);
  try {
    db.exec(sql);
  } finally {
    db.close();
  }
  return file;
}

/** The hunt's F4 file: an FTS5 table whose external content is a view that never ends. */
const ENDLESS_FTS =
  "CREATE VIEW v AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x AS id, 'a' AS body FROM c; CREATE VIRTUAL TABLE t USING fts5(body, content='v', content_rowid='id');";

const HOST = new URL('../../src/drivers/sqlite-host.js', import.meta.url);

/** sqlite-host.ts's `fn` in a child process, as the driver runs it. */
const inHostChild = <R>(fn: string, args: unknown[], timeoutMs = 20_000, signal?: AbortSignal) =>
  inChild<R>(HOST, fn, args, { timeoutMs, timeoutMessage: 'deadline passed', ...(signal ? { signal } : {}) });

/** SQLite's temporary files, were any left on the host (temp_store=MEMORY keeps them in the heap). */
const sqliteTempFiles = async () => (await readdir('/var/tmp').catch(() => [] as string[])).filter((n) => n.startsWith('etilqs_')).length;

describe('reading a SQLite file that may be hostile', () => {
  it('checks and digests an FTS table whose content never ends in well under a second, without reading it', async () => {
    const file = await newDb(ENDLESS_FTS);
    const started = Date.now();
    const counted = checkedTableCounts(file, '/app/data/notes.db');
    const digests = sqliteTableDigests(file, 'murmur3-128');
    const clean = join(dirs.at(-1)!, 'clean.db');
    const both = checkAndDigest(file, clean, '/app/data/notes.db', 'murmur3-128');
    expect(Date.now() - started).toBeLessThan(3000);
    // The virtual table is named, not counted; its shadow tables are ordinary ones, counted and digested.
    expect(counted).toEqual({ tables: { t_config: 1, t_data: 2, t_docsize: 0, t_idx: 0 }, virtual: ['t'] });
    expect(Object.keys(digests).sort()).toEqual(['schema', 'table t_config', 'table t_data', 'table t_docsize', 'table t_idx']);
    expect(both.digests).toEqual(digests);
  });

  it('in a child process too, as the driver runs it', async () => {
    const file = await newDb(ENDLESS_FTS);
    const started = Date.now();
    const r = await inHostChild<{ tables: Record<string, number>; virtual: string[]; digests: Record<string, string> }>('checkBackupCopy', [file, '/app/data/notes.db', 'murmur3-128', false]);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(r.virtual).toEqual(['t']);
    expect(r.digests).toEqual(sqliteTableDigests(file, 'murmur3-128'));
  });

  it("stops the older methods' read of its virtual table at the deadline, and on an abort, without filling /var/tmp", async () => {
    const file = await newDb(ENDLESS_FTS);
    const before = await sqliteTempFiles();
    let started = Date.now();
    await expect(inHostChild('sqliteTableDigests', [file, 'murmur3-128', true], 3000)).rejects.toThrow('deadline passed');
    expect(Date.now() - started).toBeLessThan(8000);
    const abort = new AbortController();
    started = Date.now();
    setTimeout(() => abort.abort(new Error('interrupted by SIGTERM')), 1000);
    await expect(inHostChild('checkBackupCopy', [file, '/app/data/notes.db', 'murmur3-128', true], 60_000, abort.signal)).rejects.toThrow('interrupted by SIGTERM');
    expect(Date.now() - started).toBeLessThan(6000);
    expect(await sqliteTempFiles()).toBeLessThanOrEqual(before);
  });

  it('refuses a file that is not a database, and one that fails integrity_check, naming it', async () => {
    const dir = await tempDir('sqlite-bounded');
    dirs.push(dir);
    const junk = join(dir, 'junk.db');
    await writeFile(junk, Buffer.alloc(8192, 7));
    await expect(inHostChild('checkBackupCopy', [junk, '/app/data/notes.db', 'murmur3-128', false])).rejects.toThrow('file is not a database');
    // A good database with a page of its table overwritten.
    const file = await newDb(`CREATE TABLE t (x); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < 2000) INSERT INTO t SELECT randomblob(100) FROM c;`);
    const db = new DatabaseSync(file);
    const pageSize = Number(db.prepare('PRAGMA page_size').get()!.page_size);
    db.close();
    const { open } = await import('node:fs/promises');
    const handle = await open(file, 'r+');
    await handle.write(Buffer.alloc(pageSize, 0xff), 0, pageSize, pageSize * 3);
    await handle.close();
    await expect(inHostChild('checkBackupCopy', [file, '/app/data/notes.db', 'murmur3-128', false])).rejects.toThrow(/\/app\/data\/notes.db|malformed/);
  });

  it('still covers an ordinary FTS table through its shadow tables', async () => {
    const file = await newDb("CREATE VIRTUAL TABLE docs USING fts5(body); INSERT INTO docs(body) VALUES ('the first note'), ('the second note');");
    const digests = sqliteTableDigests(file, 'murmur3-128');
    expect(digests['table docs']).toBeUndefined();
    expect(digests['table docs_content']).toMatch(/^n=2 /);
    const db = new DatabaseSync(file);
    db.exec("UPDATE docs SET body = 'the second note, changed' WHERE rowid = 2");
    db.close();
    const changed = sqliteTableDigests(file, 'murmur3-128');
    expect(changed['table docs_content']).not.toBe(digests['table docs_content']);
    expect(changed['table docs_data']).not.toBe(digests['table docs_data']);
  });

  it('reads virtual tables for the older methods as they did, and ordinary tables the same under both rules', async () => {
    const file = await newDb("CREATE TABLE plain (a, b); INSERT INTO plain VALUES (1, 'x'), (2.5, NULL); CREATE VIRTUAL TABLE docs USING fts5(body); INSERT INTO docs(body) VALUES ('a note');");
    const current = sqliteTableDigests(file, 'murmur3-128');
    const older = sqliteTableDigests(file, 'murmur3-128', true);
    // What the code before sqlite-v3 gave for this file (sqlite-v2): backups recorded then still verify.
    expect(older).toEqual({
      schema: 'ec7e05cd613db35a6fe50f89c8a50fdca4b0d4163d1146e624f5b3bd5a5f27e5',
      'table docs': 'n=1 3c8d370d0458962804bb4c05c32d7e08',
      'table docs_config': 'n=1 997f555c8a2c8a8851c7b84829103eb2',
      'table docs_content': 'n=1 83cf7b9042564f70a3153a9037791142',
      'table docs_data': 'n=3 f096dcee70b4bf14335010e4c8daa85f',
      'table docs_docsize': 'n=1 b07e987a6f6d61d35d42e88fa1245e09',
      'table docs_idx': 'n=1 fb440dd59d7e1aa5553bcb7d4c51ba19',
      'table plain': 'n=2 6e6a38837c9963ce445f94647842926b',
    });
    expect(sqliteTableDigests(file, 'sha256', true)['table docs']).toBe('n=1 9bad6cb37ea04f94fd256206ab6a2564e5317513618d1618c85cdde9d51e90e0');
    const { 'table docs': _virtual, ...rest } = older;
    expect(rest).toEqual(current);
    expect(checkBackupCopy(file, '/x', 'sha256', true).digests).toEqual(sqliteTableDigests(file, 'sha256', true));
  });
});

/** Whether a process is still there and not a zombie (its parent gone, it may wait to be reaped). */
async function alive(pid: number): Promise<boolean> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return status !== '' && !/^State:\s+Z/m.test(status);
}

async function until(what: () => Promise<boolean>, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (await what()) return true;
  return false;
}

describe('inChild', () => {
  it('the child kills itself when its parent is killed outright (SIGKILL), even inside a query that never ends', async () => {
    const file = await newDb(ENDLESS_FTS);
    const childCall = new URL('../../src/util/child-call.ts', import.meta.url).href;
    const script = `import { inChild } from ${JSON.stringify(childCall)};
      inChild(new URL(${JSON.stringify(HOST.href)}), 'sqliteTableDigests', [${JSON.stringify(file)}, 'murmur3-128', true], { timeoutMs: 600000, timeoutMessage: 'x' }).catch(() => {});
      setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ['--experimental-transform-types', '--no-warnings', '--input-type=module', '-e', script], { stdio: 'ignore' });
    let child = 0;
    expect(
      await until(async () => {
        const kids = (await readFile(`/proc/${parent.pid}/task/${parent.pid}/children`, 'utf8').catch(() => '')).trim();
        child = Number(kids.split(/\s+/)[0] || 0);
        return child > 0;
      }, 15_000),
    ).toBe(true);
    await new Promise((r) => setTimeout(r, 1500)); // inside the endless read by now
    expect(await alive(child)).toBe(true);
    parent.kill('SIGKILL');
    expect(await until(async () => !(await alive(child)), 10_000)).toBe(true);
  });

  it('a child that cannot be started is an error of the call, not an unheard error event that ends the process', async () => {
    // Its node binary gone (an update replacing .tools/node while a restore ran did this):
    // node emits an 'error' for the spawn and another for the message sent to the child.
    const childCall = new URL('../../src/util/child-call.ts', import.meta.url).href;
    const script = `import { inChild } from ${JSON.stringify(childCall)};
      process.execPath = '/nonexistent/node';
      inChild(new URL(${JSON.stringify(HOST.href)}), 'checkedTableCounts', ['/x.db', '/x'], { timeoutMs: 60000, timeoutMessage: 'deadline passed' }).then(
        () => console.log('answered'),
        (err) => console.log('rejected: ' + err.message),
      );`;
    const parent = spawn(process.execPath, ['--experimental-transform-types', '--no-warnings', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    parent.stdout.on('data', (d: Buffer) => (out += d.toString()));
    parent.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => parent.once('close', resolve));
    expect({ code, out, err }).toEqual({ code: 0, out: 'rejected: a child process could not be started (spawn /nonexistent/node ENOENT)\n', err: '' });
  });

  it('answers with what the function returns, and with its error', async () => {
    const file = await newDb('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
    expect(await inHostChild('checkedTableCounts', [file, '/x'])).toEqual({ tables: { t: 1 }, virtual: [] });
    await expect(inHostChild('noSuchFunction', [])).rejects.toThrow('exports no function noSuchFunction');
    await expect(inHostChild('checkedTableCounts', [join(tmpdir(), 'stackvault-no-such-dir', 'x.db'), '/x'])).rejects.toThrow(/unable to open/);
  });
});

describe('the deadline of a copy compacted with VACUUM INTO', () => {
  it('grows with the square of the schema, which VACUUM INTO reads again per table it creates (50,000 empty tables, 209 MB, got 165 s and were never backed up)', async () => {
    // The schema counted as the driver counts it: in the child, on a frozen copy whose -wal holds some of it.
    const dir = await tempDir('sqlite-bounded');
    dirs.push(dir);
    const file = join(dir, 'wal.db');
    const db = new DatabaseSync(file);
    db.exec('PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE a (x); CREATE INDEX ax ON a (x); CREATE VIEW v AS SELECT x FROM a; CREATE TABLE b (y)');
    const frozen = join(dir, 'frozen.db');
    await writeFile(frozen, await readFile(file));
    await writeFile(`${frozen}-wal`, await readFile(`${file}-wal`));
    db.close();
    expect(await inHostChild<number>('schemaEntries', [frozen])).toBe(4);
    // A small schema keeps the deadline of its size; 50,000 entries get more than the 137 s measured, ten times over.
    expect(sqliteDeadlineMs(209e6, 4)).toBe(sqliteDeadlineMs(209e6));
    expect(sqliteDeadlineMs(209e6)).toBe(164_500);
    expect(sqliteDeadlineMs(209e6, 50_000)).toBeGreaterThan(10 * 137_000);
  });
});

describe('a row holding a big blob', () => {
  /** The digest as the SQL wrote each row before: every value in hex by SQLite, the row one string. */
  function digestsAsBefore(file: string): Record<string, string> {
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      const parts: Record<string, string> = {};
      for (const { name } of db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>) {
        const cols = (db.prepare('SELECT name FROM pragma_table_info(?)').all(name) as Array<{ name: string }>).map((c) => `"${c.name}"`);
        const exprs = cols.map((c) => `typeof(${c}) || ':' || CASE typeof(${c}) WHEN 'real' THEN printf('%!.17g', ${c}) ELSE hex(${c}) END`);
        const rows = new MultisetDigest('murmur3-128');
        for (const r of db.prepare(`SELECT ${exprs.join(` || '|' || `)} AS r FROM "${name}"`).all() as Array<{ r: string }>) rows.addBytes(Buffer.from(r.r, 'latin1'));
        parts[`table ${name}`] = rows.toString();
      }
      return parts;
    } finally {
      db.close();
    }
  }

  /** The digests of a database made by `sql`, in the child as the driver runs it, against digestsAsBefore. */
  const expectDigestsAsBefore = async (sql: string) => {
    const file = await newDb(sql);
    const { schema: _, ...now } = await inChild<Record<string, string>>(HOST, 'sqliteTableDigests', [file, 'murmur3-128'], {
      timeoutMs: 120_000,
      timeoutMessage: 'deadline passed',
      execArgv: SQLITE_CHILD_ARGV,
    });
    expect(now).toEqual(digestsAsBefore(file));
  };

  it('digests it as before, in the child as the driver runs it, where a 150 MB blob ended the child out of memory', async () => {
    await expectDigestsAsBefore(
      "CREATE TABLE m (a, b, c, d); INSERT INTO m VALUES (1, 'tëxt', x'00ff10', 2.5), (NULL, x'', -7, 'z'), (x'abcdef0123', randomblob(3000000), 'é', 1e300); CREATE TABLE big (id INTEGER PRIMARY KEY, v BLOB, note TEXT); INSERT INTO big VALUES (1, randomblob(150000000), 'after the blob')",
    );
  }, 180_000);

  it('digests a 150 MB text as before too, read as its bytes: hex() of it in SQL ended the child out of memory', async () => {
    await expectDigestsAsBefore(
      "CREATE TABLE big (id INTEGER PRIMARY KEY, t TEXT, note TEXT); INSERT INTO big VALUES (1, 'é' || printf('%.*c', 150000000, 'x') || '日本', 'after the text'), (2, char(0) || printf('%.*c', 70000, 'y'), 'a NUL first')",
    );
  }, 180_000);
});
