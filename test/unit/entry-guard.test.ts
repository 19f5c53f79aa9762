import { describe, expect, it } from 'vitest';
import type { ContainerDetails } from '../../src/docker/engine.js';
import { EntryGuard, unsafeDataPath, unsafeRecordedPath, unsafeThrowawayPath } from '../../src/drivers/volume-archive.js';

type E = { path: string; type: string; linkpath?: string; mode?: number; size?: number };
const file = (path: string, mode = 0o644): E => ({ path, type: 'File', mode });
const dir = (path: string): E => ({ path, type: 'Directory', mode: 0o755 });
const link = (path: string, linkpath: string, size = 0): E => ({ path, type: 'SymbolicLink', linkpath, mode: 0o777, size });
const hard = (path: string, linkpath: string, mode = 0o644): E => ({ path, type: 'Link', linkpath, mode });

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
    ['a hard link to a file the archive made', [dir('data/'), file('data/f'), hard('data/g', 'data/f'), hard('data/h', 'data/g')], undefined],
    ['a symlink to . and one down from it', [dir('data/'), link('data/a', '.'), link('data/c', 'a/base'), link('data/d', './base/')], undefined],
  ])('%s', (_what, entries, refusal) => {
    const why = firstRefusal(entries as E[]);
    if (refusal === undefined) expect(why).toBeUndefined();
    else expect(why).toContain(refusal);
  });
});

/** The report's entries are restored into /data (Neo4j and Chroma as the hunt ran them). */
function firstRefusalIntoData(entries: E[]): string | undefined {
  const guard = new EntryGuard(new Map([['data', '/data']]));
  for (const e of entries) {
    const why = guard.why(e as never);
    if (why) return why;
  }
  return undefined;
}

/**
 * HUNT-TAR.md F1, F2 and F5: the exact entries the hunt appended to honest backups, and the
 * ways of spelling them that main's guard let through. Each led Docker to write outside /data.
 */
describe('the hunt: entries that led a restore outside its paths', () => {
  const payload = (path: string) => file(path, 0o755);
  it.each([
    [
      'F1 as reported: ./ in the path walks through b -> a/.. with a -> .',
      [link('data/a', '.'), link('data/b', 'a/..'), payload('data/./b/usr/local/bin/neo4j-standin'), payload('data/./b/conf/written-on-the-host.sh')],
      "symlink to a/.. uses '..'",
    ],
    ['F1 with // in the path', [link('data/a', '.'), link('data/b', 'a/..'), payload('data//b/usr/local/bin/neo4j-standin')], "uses '..'"],
    ['F1 with ./ on the link', [link('data/a', '.'), link('data/./b', 'a/..'), payload('data/b/usr/local/bin/neo4j-standin')], 'not in normal form'],
    ['F1 with // on the link', [link('data/a', '.'), link('data//b', 'a/..'), payload('data/b/usr/local/bin/neo4j-standin')], 'not in normal form'],
    // The path rule on its own, with links whose targets are harmless.
    ['./ in a path behind a harmless link', [dir('data/'), link('data/b', 'databases'), payload('data/./b/x')], 'not in normal form'],
    ['// in a path behind a harmless link', [dir('data/'), link('data/b', 'databases'), payload('data//b/x')], 'not in normal form'],
    ['./ on a harmless link, the path behind it normal', [dir('data/'), link('data/./b', 'databases'), payload('data/b/x')], 'not in normal form'],
    ['// on a harmless link, the path behind it normal', [dir('data/'), link('data//b', 'databases'), payload('data/b/x')], 'not in normal form'],
    ['F2 as reported: a symlink that carries 128000 bytes of hidden entries', [dir('data/'), link('data/carrier', 'databases', 128000)], 'SymbolicLink entry with 128000 bytes of content'],
    ['F2 with a hard link as the carrier', [dir('data/'), file('data/f'), { path: 'data/carrier', type: 'Link', linkpath: 'data/f', mode: 0o644, size: 1024 }], 'Link entry with 1024 bytes'],
    [
      'F5 as reported: a hard link to /etc/shadow named through b -> a/..',
      [link('data/a', '.'), link('data/b', 'a/..'), hard('data/shadow-copy', 'data/b/etc/shadow'), file('data/planted-by-hostile-backup')],
      "uses '..'",
    ],
    ['F5: a hard link named through a link the archive made', [dir('data/'), link('data/a', '.'), hard('data/shadow-copy', 'data/a/x')], "through the symlink 'data/a'"],
    ['F5: a hard link to a link the archive made', [dir('data/'), file('data/x'), link('data/l', 'x'), hard('data/h', 'data/l')], "through the symlink 'data/l'"],
    ['F5: a hard link to a file the archive never made', [dir('data/'), hard('data/shadow-copy', 'data/etc/shadow')], 'not a file the archive made before it'],
    ['F5: a hard link made before its file', [dir('data/'), hard('data/h', 'data/f'), file('data/f')], 'not a file the archive made before it'],
    ['F5: a hard link to a directory', [dir('data/'), dir('data/d/'), hard('data/h', 'data/d')], 'not a file the archive made before it'],
    ['F5: a hard link to a file since replaced by a directory', [dir('data/'), file('data/d'), dir('data/d/'), hard('data/h', 'data/d')], 'not a file the archive made before it'],
  ])('%s', (_what, entries, refusal) => {
    expect(firstRefusalIntoData(entries)).toContain(refusal);
  });
});

/** A container with volumes at these destinations (Paperless-ngx's layout, and a config bind). */
const withMounts = (...destinations: string[]) =>
  ({
    id: 'c',
    name: 'c',
    image: 'app',
    labels: {},
    state: 'running',
    running: true,
    paused: false,
    env: {},
    cmd: [],
    imageId: 'sha256:0',
    mounts: destinations.map((destination) => ({ type: 'volume', name: 'v', source: `/var/lib/docker/volumes${destination}`, destination, rw: true })),
  }) as unknown as ContainerDetails;

describe('recorded paths a restore refuses outright', () => {
  it.each([
    ['/var/lib/postgresql/data', undefined],
    ['/data', undefined],
    ['/', 'system directory /'],
    ['/proc/1', 'system directory /proc'],
    ['/data/../etc', 'normalised'],
    ['data', 'absolute'],
    ['/data/', 'normalised'],
  ])('%s', (path, why) => {
    if (why === undefined) expect(unsafeRecordedPath(path)).toBeUndefined();
    else expect(unsafeRecordedPath(path)).toContain(why);
  });
});

// Data under /usr is data only on a mount: Paperless-ngx's volumes at /usr/src/paperless/* were
// refused whole ("inside the system directory /usr"), so its documents were never backed up.
describe('paths in system directories are data only on a volume or bind mounted there', () => {
  const paperless = withMounts('/usr/src/paperless/media', '/usr/src/paperless/consume', '/var/lib/postgresql');
  it.each([
    ['/usr/src/paperless/media', paperless, undefined],
    ['/usr/src/paperless/media/documents/originals', paperless, undefined],
    ['/usr/src/paperless/consume', paperless, undefined],
    ['/usr/src/paperless', paperless, 'system directory /usr and on no volume'],
    ['/usr/local/bin', paperless, 'system directory /usr and on no volume'],
    ['/etc', paperless, 'system directory /etc and on no volume'],
    ['/usr/share/elasticsearch/data', withMounts('/usr/share/elasticsearch/data'), undefined],
    ['/etc/app/state', withMounts('/etc/app'), undefined],
    ['/var/lib/postgresql/data', paperless, undefined],
    ['/data', withMounts(), undefined],
    ['/', withMounts('/'), 'system directory /'],
    ['/proc/sys', withMounts('/proc/sys'), 'system directory /proc'],
    ['/usr/src/paperless/../../etc', paperless, 'normalised'],
  ])('%s', (path, container, why) => {
    if (why === undefined) expect(unsafeDataPath(path, container)).toBeUndefined();
    else expect(unsafeDataPath(path, container)).toContain(why);
  });

  it('a record may hold such a path; whether it may be written is decided with the container', () => {
    expect(unsafeRecordedPath('/usr/src/paperless/media')).toBeUndefined();
    expect(unsafeDataPath('/usr/src/paperless/media', withMounts())).toContain('system directory /usr');
  });

  it('without a container (a throwaway nothing is mounted in yet) a system directory is refused', () => {
    expect(unsafeDataPath('/usr/src/paperless/media')).toContain('system directory /usr');
    expect(unsafeDataPath('/data')).toBeUndefined();
  });
});

describe('the volumes of a drill throwaway: never over the programs it runs', () => {
  it.each([
    ['/usr/src/paperless/media', undefined],
    ['/usr/share/elasticsearch/data', undefined],
    ['/root/.ollama', undefined],
    ['/data', undefined],
    ['/usr/bin', 'over /usr/bin'],
    ['/usr', 'over /usr/bin'],
    ['/usr/local', 'over /usr/local/bin'],
    ['/usr/lib/x86_64-linux-gnu', 'over /usr/lib'],
    ['/bin/sh', 'over /bin'],
    ['/etc', 'over /etc'],
    ['/etc/nginx/conf.d', 'over /etc'],
    ['/', 'inside the system directory /'],
    ['/proc/self', 'inside the system directory /proc'],
  ])('%s: %s', (path, why) => {
    if (why === undefined) expect(unsafeThrowawayPath(path)).toBeUndefined();
    else expect(unsafeThrowawayPath(path)).toContain(why);
  });
});
