import { describe, expect, it } from 'vitest';
import { EntryGuard, unsafeDataPath } from '../../src/drivers/volume-archive.js';

type E = { path: string; type: string; linkpath?: string; mode?: number };
const file = (path: string, mode = 0o644): E => ({ path, type: 'File', mode });
const dir = (path: string): E => ({ path, type: 'Directory', mode: 0o755 });
const link = (path: string, linkpath: string): E => ({ path, type: 'SymbolicLink', linkpath, mode: 0o777 });

/** The first refusal for a sequence of entries restored into /var/lib/postgresql/data (top "data") and /srv/uploads. */
function firstRefusal(entries: E[]): string | undefined {
  const guard = new EntryGuard(
    new Map([
      ['data', '/var/lib/postgresql/data'],
      ['uploads', '/srv/uploads'],
    ]),
  );
  for (const e of entries) {
    const why = guard.why(e as never);
    if (why) return why;
  }
  return undefined;
}

describe('where a restore may write (hostile archives)', () => {
  it.each([
    ['an ordinary tree', [dir('data/'), file('data/base/1'), dir('uploads/'), file('uploads/a b ✓.bin')], undefined],
    ['a relative symlink inside its path', [dir('data/'), link('data/current', 'base'), file('data/base/1')], undefined],
    ['an absolute symlink inside its own recorded path', [dir('data/'), link('data/pg_wal', '/var/lib/postgresql/data/wal')], undefined],
    [
      'a chain of symlinks that leads to / (each link looks harmless by its text)',
      [dir('data/'), link('data/a', '.'), link('data/a/a/a/a/x', '../../../..'), file('data/a/a/a/a/x/etc/passwd')],
      'behind the symlink',
    ],
    ['a file behind a symlink made earlier', [dir('data/'), link('data/out', 'base'), file('data/out/evil')], 'behind the symlink'],
    ['an absolute symlink out of its recorded path', [dir('data/'), link('data/x', '/etc')], 'outside /var/lib/postgresql/data'],
    ['an absolute symlink into a sibling that shares a prefix', [dir('data/'), link('data/x', '/var/lib/postgresql/database')], 'outside'],
    ['the recorded path itself made a symlink', [link('data', '/etc')], 'itself a symlink'],
    ['an entry under no recorded path', [file('usr/local/bin/pwned')], 'not under any recorded path'],
    ['a setuid file', [dir('data/'), file('data/sh', 0o4755)], 'setuid or setgid'],
    ['a .. path', [file('data/../etc/passwd')], 'unsafe'],
    ['a device file', [{ path: 'data/null', type: 'CharacterDevice', mode: 0o666 }], 'unsafe'],
  ])('%s', (_what, entries, refusal) => {
    const why = firstRefusal(entries as E[]);
    if (refusal === undefined) expect(why).toBeUndefined();
    else expect(why).toContain(refusal);
  });
});

describe('recorded paths a restore refuses outright', () => {
  it.each([
    ['/var/lib/postgresql/data', undefined],
    ['/data', undefined],
    ['/', 'system directory /'],
    ['/etc', 'system directory /etc'],
    ['/usr/local/bin', 'system directory /usr'],
    ['/data/../etc', 'normalised'],
    ['data', 'absolute'],
    ['/data/', 'normalised'],
  ])('%s', (path, why) => {
    if (why === undefined) expect(unsafeDataPath(path)).toBeUndefined();
    else expect(unsafeDataPath(path)).toContain(why);
  });
});
