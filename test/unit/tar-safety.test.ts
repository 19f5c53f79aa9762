import { describe, expect, it } from 'vitest';
import { unsafeEntry } from '../../src/util/tar-safety.js';

describe('archive entry safety', () => {
  it.each([
    [{ path: 'data/chroma.sqlite3', type: 'File' }, undefined],
    [{ path: 'data/', type: 'Directory' }, undefined],
    [{ path: 'data/a/link', type: 'SymbolicLink', linkpath: '../b' }, undefined],
    [{ path: 'data/link', type: 'SymbolicLink', linkpath: '/data/x' }, undefined],
    [{ path: 'data/hard', type: 'Link', linkpath: 'data/x' }, undefined],
    [{ path: '/etc/passwd', type: 'File' }, /absolute/],
    [{ path: 'data/../../etc/cron.d/x', type: 'File' }, /\.\./],
    [{ path: '../x', type: 'File' }, /\.\./],
    [{ path: 'data/evil', type: 'SymbolicLink', linkpath: '/etc/shadow' }, /symlink to \/etc\/shadow points outside data\//],
    [{ path: 'data/evil', type: 'SymbolicLink', linkpath: '../../root' }, /outside/],
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
