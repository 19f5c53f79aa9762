import { describe, expect, it } from 'vitest';
import { manifestProblem, parseManifest } from '../../src/core/manifest.js';

const good = () => ({
  schemaVersion: 1,
  id: 'sv_backup_20261121_020000',
  createdAt: '2026-11-21T02:00:00.000Z',
  type: 'daily',
  comment: '',
  services: [{ name: 'pg', driver: 'postgres', status: 'ok', artifact: 'pg.sql.gz', sha256: 'a'.repeat(64), bytes: 10 }],
});

describe('manifest reader', () => {
  it('accepts a valid manifest', () => expect(manifestProblem(good())).toBeUndefined());

  it.each([
    ['not JSON', '{', /not valid JSON/],
    ['an array', '[]', /not an object/],
    ['newer schema', JSON.stringify({ ...good(), schemaVersion: 99 }), /schemaVersion 99, newer/],
    ['artifact with a path', JSON.stringify({ ...good(), services: [{ ...good().services[0], artifact: '../../etc/passwd' }] }), /artifact is not a plain file name/],
    ['absolute artifact', JSON.stringify({ ...good(), services: [{ ...good().services[0], artifact: '/etc/passwd' }] }), /artifact/],
    ['bad checksum', JSON.stringify({ ...good(), services: [{ ...good().services[0], sha256: 'zz' }] }), /sha256/],
    ['unknown status', JSON.stringify({ ...good(), services: [{ ...good().services[0], status: 'maybe' }] }), /status is 'maybe'/],
    ['bad date', JSON.stringify({ ...good(), createdAt: 'yesterday' }), /createdAt/],
  ])('rejects %s', (_what, text, message) => {
    expect(() => parseManifest(text, 'm.json')).toThrow(message);
  });

  // Property: whatever bytes a manifest holds, the reader either returns a manifest or throws
  // a StackvaultError with exit code 5; it never crashes with anything else.
  it('never fails in another way on random mutations', () => {
    const base = JSON.stringify(good());
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 3000; i++) {
      const chars = [...base];
      for (let k = 0; k <= rand(4); k++) chars.splice(rand(chars.length), rand(3), String.fromCharCode(32 + rand(95)));
      try {
        const m = parseManifest(chars.join(''), 'm.json');
        expect(manifestProblem(m)).toBeUndefined();
      } catch (err) {
        expect((err as { exitCode?: number }).exitCode).toBe(5);
      }
    }
  });
});
