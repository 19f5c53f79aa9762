import { describe, expect, it } from 'vitest';
import { unsafeEntry } from '../../src/util/tar-safety.js';

describe('archive entry safety', () => {
  it.each([
    [{ path: 'data/chroma.sqlite3', type: 'File' }, undefined],
    [{ path: 'data/', type: 'Directory' }, undefined],
    [{ path: 'data/a/link', type: 'SymbolicLink', linkpath: 'b/c' }, undefined],
    [{ path: 'data/a', type: 'SymbolicLink', linkpath: '.' }, undefined],
    [{ path: 'data/link', type: 'SymbolicLink', linkpath: '/data/x' }, undefined],
    [{ path: 'data/hard', type: 'Link', linkpath: 'data/x' }, undefined],
    [{ path: '/etc/passwd', type: 'File' }, /absolute/],
    [{ path: 'data/../../etc/cron.d/x', type: 'File' }, /\.\./],
    [{ path: '../x', type: 'File' }, /\.\./],
    [{ path: 'data/evil', type: 'SymbolicLink', linkpath: '/etc/shadow' }, /symlink to \/etc\/shadow points outside data\//],
    [{ path: 'data/evil', type: 'SymbolicLink', linkpath: '../../root' }, /uses '\.\.'/],
    // Hunt F1, as the report appended them: '..' in a target that looks like the link's own
    // directory (a -> . makes a/.. the parent of the data path), and a './' or '//' in a path
    // that walks through a link recorded under its normal name.
    [{ path: 'data/b', type: 'SymbolicLink', linkpath: 'a/..' }, /symlink to a\/\.\. uses '\.\.'/],
    [{ path: 'data/a/link', type: 'SymbolicLink', linkpath: '../b' }, /uses '\.\.'/],
    [{ path: 'data/link', type: 'SymbolicLink', linkpath: '/data/x/../..' }, /uses '\.\.'/],
    [{ path: 'data/./b/usr/local/bin/neo4j-standin', type: 'File' }, /not in normal form/],
    [{ path: 'data//b/usr/local/bin/neo4j-standin', type: 'File' }, /not in normal form/],
    [{ path: 'data/./b', type: 'SymbolicLink', linkpath: 'a/..' }, /not in normal form/],
    [{ path: 'data//b', type: 'SymbolicLink', linkpath: 'a' }, /not in normal form/],
    [{ path: './data/x', type: 'File' }, /not in normal form/],
    [{ path: 'data/.', type: 'SymbolicLink', linkpath: '.' }, /not in normal form/],
    [{ path: 'data/x/', type: 'File' }, /not in normal form/],
    [{ path: 'data/d/', type: 'Directory' }, undefined],
    [{ path: 'data/d//', type: 'Directory' }, /not in normal form/],
    // Hunt F2: content on an entry that Docker reads as a header alone.
    [{ path: 'data/carrier', type: 'SymbolicLink', linkpath: 'databases', size: 128000 }, /SymbolicLink entry with 128000 bytes of content/],
    [{ path: 'data/hard', type: 'Link', linkpath: 'data/x', size: 512 }, /Link entry with 512 bytes/],
    [{ path: 'data/d/', type: 'Directory', size: 512 }, /Directory entry with 512 bytes/],
    [{ path: 'data/f', type: 'File', size: 512 }, undefined],
    // Hunt F5: hard link targets must be a normal path in the archive, as written.
    [{ path: 'data/shadow-copy', type: 'Link', linkpath: 'data/b/../etc/shadow' }, /uses '\.\.'/],
    [{ path: 'data/shadow-copy', type: 'Link', linkpath: 'data/./b/etc/shadow' }, /not a normal path/],
    [{ path: 'data/shadow-copy', type: 'Link', linkpath: '/data/x' }, /not a normal path/],
    [{ path: 'data/evil', type: 'Link', linkpath: 'etc/passwd' }, /hard link .* outside data\//],
    [{ path: 'data/dev', type: 'CharacterDevice' }, /device files/],
    [{ path: 'data/fifo', type: 'FIFO' }, /FIFOs/],
    [{ path: 'data/l', type: 'SymbolicLink' }, /without a target/],
  ])('%j', (entry, expected) => {
    const why = unsafeEntry(entry);
    if (expected === undefined) expect(why).toBeUndefined();
    else expect(why).toMatch(expected);
  });
});
