import { SchemaError } from '../../src/util/schema.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import type { ServiceEntry } from '../../src/core/manifest.js';
import { sqliteDriver } from '../../src/drivers/sqlite.js';
import { ExitCode, StackvaultError } from '../../src/errors.js';

const entry = (files: unknown): ServiceEntry => ({ name: 'app', driver: 'sqlite', details: { files } }) as unknown as ServiceEntry;
const file = (path: unknown) => ({ path, entry: '0-x.db', tables: {} });

/** The empty copy `backup drill` starts for a SQLite app: what it mounts, and what it refuses of a manifest. */
describe('sqlite throwaway', () => {
  it('mounts a fresh volume at each database directory and labels exactly the recorded paths', () => {
    const spec = sqliteDriver.throwaway!(entry([file('/app/data/app.db'), file('/app/data/notes.db'), file('/srv/state/jobs')]));
    expect(spec.volumes).toEqual(['/app/data', '/srv/state']);
    expect(spec.labels).toEqual({ 'stackvault.sqlite.paths': '/app/data/app.db,/app/data/notes.db,/srv/state/jobs' });
    expect(spec.noHealthcheck).toBe(true);
    // The paths reach the shell as arguments, never inside its script.
    expect(spec.entrypoint!.slice(-3)).toEqual(['/app/data/app.db', '/app/data/notes.db', '/srv/state/jobs']);
    expect(spec.entrypoint![2]).not.toContain('/app/data');
  });

  it('creates an empty, valid SQLite database at each path, and none over an existing file or link', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sv-sqlite-throwaway-'));
    try {
      const spec = sqliteDriver.throwaway!(entry([file(join(dir, 'a.db')), file(join(dir, 'kept.db')), file(join(dir, 'link.db'))]));
      execFileSync('sh', ['-c', 'echo mine > "$1/kept.db"; ln -s "$1/target" "$1/link.db"', 'sh', dir]);
      // The entrypoint with its endless wait replaced by an exit, run in a plain sh.
      const script = spec.entrypoint![2]!.replace(/trap .*$/, 'exit 0');
      execFileSync(spec.entrypoint![0]!, [spec.entrypoint![1]!, script, ...spec.entrypoint!.slice(3)]);
      const db = new DatabaseSync(join(dir, 'a.db'));
      expect(db.prepare('PRAGMA integrity_check').get()).toEqual({ integrity_check: 'ok' });
      expect(db.prepare('SELECT count(*) AS n FROM sqlite_schema').get()).toEqual({ n: 0 });
      db.close();
      expect(readFileSync(join(dir, 'kept.db'), 'utf8')).toBe('mine\n');
      expect(() => readFileSync(join(dir, 'target'))).toThrow(/ENOENT/); // not written through the link
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ['/etc/app.db', /system directory \/etc/],
    ['/usr/lib/x.db', /system directory \/usr/],
    ['/app.db', /a file in \//],
    ['/app/../etc/x.db', /not a normalised path/],
    ['/app/./x.db', /not a normalised path/],
    ['/app//x.db', /not a normalised path/],
    ['app.db', /not an absolute path/],
    ['/app/a.db,/etc/passwd', /comma/],
    ['/app/a.db\n', /control character/],
    [' /app/a.db', /blanks/],
  ])('refuses a recorded path %j before anything is started (exit 5)', (path, why) => {
    let err: unknown;
    try {
      sqliteDriver.throwaway!(entry([file('/app/data/ok.db'), file(path)]));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StackvaultError);
    expect((err as StackvaultError).exitCode).toBe(ExitCode.integrity);
    expect((err as Error).message).toMatch(why);
  });

  it.each([[[]], [[file('/app/a.db'), file('/app/a.db')]]])('refuses a file list %j', (files) => {
    expect(() => sqliteDriver.throwaway!(entry(files))).toThrow(StackvaultError);
  });

  // Records no driver writes are the schema's to refuse (the core makes it exit 5 first).
  it.each([[undefined], ['/app/a.db'], [[file('/app/data/ok.db'), file(42)]]])("a record of files %j is refused by the driver's schema", (files) => {
    expect(() => sqliteDriver.details.parse({ files }, 'details')).toThrow(SchemaError);
    expect(() => sqliteDriver.throwaway!(entry(files))).toThrow(SchemaError);
  });
});
