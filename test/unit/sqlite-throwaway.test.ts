import { SchemaError } from '../../src/util/schema.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
    // No path reaches the shell: it only waits.
    expect(spec.entrypoint!.join(' ')).not.toContain('/app/data');
  });

  it('creates nothing at the paths: a new volume, as on a new host before the app first ran', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sv-sqlite-throwaway-'));
    try {
      const spec = sqliteDriver.throwaway!(entry([file(join(dir, 'a.db')), file(join(dir, 'b.db'))]));
      // The entrypoint with its endless wait replaced by an exit, run in a plain sh.
      const script = spec.entrypoint![2]!.replace(/while .*$/, 'exit 0');
      execFileSync(spec.entrypoint![0]!, [spec.entrypoint![1]!, script, ...spec.entrypoint!.slice(3)]);
      expect(readdirSync(dir)).toEqual([]);
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
