import { describe, expect, it } from 'vitest';
import { keepsPreCopiedBytes } from '../../src/drivers/pre-copy.js';
import { sqlitePaths } from '../../src/drivers/sqlite.js';

/** A listing entry: type, size, ctime (s); the rest as find would print it. */
const entry = (type: string, size: number, ctime: number) => ({ type, size, ctime, links: 1, mode: 0o644, uid: 0, gid: 0, mtime: ctime, link: '' });
const STARTED = 1000; // the helper's clock when the pre-copy began

describe('pre-copy: when a file keeps its pre-copied bytes', () => {
  const base = () =>
    new Map([
      ['/data', entry('d', 0, 10)],
      ['/data/db', entry('d', 0, 10)],
      ['/data/db/app.db', entry('f', 4096, 10)],
    ]);
  it.each([
    { name: 'unchanged since before the pre-copy', change: () => undefined, keeps: true },
    { name: 'its ctime within the margin before the start', change: (l: Map<string, ReturnType<typeof entry>>) => l.set('/data/db/app.db', entry('f', 4096, STARTED - 1)), keeps: false },
    { name: 'another size', change: (l: Map<string, ReturnType<typeof entry>>) => l.set('/data/db/app.db', entry('f', 8192, 10)), keeps: false },
    { name: 'a directory above it renamed (its ctime)', change: (l: Map<string, ReturnType<typeof entry>>) => l.set('/data/db', entry('d', 0, STARTED + 5)), keeps: false },
    { name: 'a symbolic link on the way, not a directory', change: (l: Map<string, ReturnType<typeof entry>>) => l.set('/data/db', entry('l', 0, 10)), keeps: false },
    { name: 'a directory on the way not listed', change: (l: Map<string, ReturnType<typeof entry>>) => l.delete('/data/db'), keeps: false },
    { name: 'two links', change: (l: Map<string, ReturnType<typeof entry>>) => l.set('/data/db/app.db', { ...entry('f', 4096, 10), links: 2 }), keeps: false },
  ])('$name', ({ change, keeps }) => {
    const listing = base();
    change(listing);
    expect(keepsPreCopiedBytes(listing, '/data/db/app.db', '/data', 4096, new Set(), STARTED)).toBe(keeps);
  });
  it('a file mapped shared and writable is copied again', () => {
    expect(keepsPreCopiedBytes(base(), '/data/db/app.db', '/data', 4096, new Set(['/data/db/app.db']), STARTED)).toBe(false);
  });
});

describe('stackvault.sqlite.paths', () => {
  it.each([
    ['/data/app.db,/data/notes.db', ['/data/app.db', '/data/notes.db']],
    [' /data/app.db , ', ['/data/app.db']],
  ])('%s is read as %j', (label, paths) => {
    expect(sqlitePaths({ 'stackvault.sqlite.paths': label })).toEqual(paths);
  });
  it.each(['data/app.db', '/data/../srv/app.db', '/data/./app.db', '/data//app.db', '/data/app.db/'])('%s is refused', (label) => {
    expect(() => sqlitePaths({ 'stackvault.sqlite.paths': label })).toThrow(/stackvault\.sqlite\.paths must list/);
  });
});
