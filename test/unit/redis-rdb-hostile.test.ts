import fc from 'fast-check';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { rdbFingerprint } from '../../src/drivers/redis-rdb.js';
import { len, listpackOf, lpInt, lpStr, lzfStr, raw, rdb, ziplistOfZeros } from '../support/rdb-build.js';

const fp = (bytes: Buffer) => rdbFingerprint(Readable.from([bytes]), bytes.length);
const id = (ms: number, seq: number) => {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(BigInt(ms), 0);
  b.writeBigUInt64BE(BigInt(seq), 8);
  return b;
};

/** A stream (type 15) of one node at id 1-0 whose master entry has field "a"; entries given as [msDiff, [f, v, f, v...]]. */
function stream(key: string, entries: Array<[number, string[]]>, lastMs: number): Buffer {
  const lp = [lpInt(entries.length), lpInt(0), lpInt(1), lpStr('a'), lpInt(0)];
  for (const [msDiff, fv] of entries) {
    lp.push(lpInt(0), lpInt(msDiff), lpInt(0), lpInt(fv.length / 2), ...fv.map((s) => lpStr(s)), lpInt(fv.length + 4));
  }
  return Buffer.concat([Buffer.from([15]), raw(key), len(1), raw(id(1, 0)), raw(listpackOf(lp)), len(entries.length), len(lastMs), len(0), len(0)]);
}

// Found by a hostile-input hunt: each of these made a small crafted RDB hold a core or the heap.
describe('a crafted RDB cannot exhaust the host', () => {
  it('a score past the 127 characters Redis reads is refused before any pattern runs over it', async () => {
    // The score pattern was quadratic: 40,000 digits and an "x" took 4.7 s, a million (an 11 KB
    // file, LZF) about an hour, the event loop held out of reach of Ctrl-C.
    const lp = listpackOf([lpStr('m'), lpStr(Buffer.from(`${'1'.repeat(40_000)}x`))]);
    const bytes = rdb(Buffer.from([17]), raw('z'), lzfStr(lp));
    await expect(fp(bytes)).rejects.toThrow(/a score written in 40001 characters/);
  });

  it.each([
    ['digits then a letter', `${'1'.repeat(120)}x`],
    ['two points', '1.2.3'],
    ['hexadecimal', '0x10'],
  ])('a score that is no decimal is refused: %s', async (_what, score) => {
    const bytes = rdb(Buffer.from([17]), raw('z'), raw(listpackOf([lpStr('m'), lpStr(score)])));
    await expect(fp(bytes)).rejects.toThrow(/a score/);
  });

  it('a quicklist (type 14) is refused once its nodes pass MAX_KEY_ITEMS, not after all are held', async () => {
    // 3 nodes x 100,000 items pass 250,000; the 4th node is broken. The limit is checked only after the
    // last node, so every node is held first (1000 such nodes, a 2.3 MB file, abort the process: heap OOM).
    const node = lzfStr(ziplistOfZeros(100_000));
    const bytes = rdb(Buffer.from([14]), raw('l'), len(4), node, node, node, raw('broken'));
    await expect(fp(bytes)).rejects.toThrow(/more than this reader holds/); // before: "a ziplist shorter than its header"
  });

  it('a stream is refused once the fields it holds pass the limit (only entries are counted)', async () => {
    // 15 nodes of one entry with 40,000 fields: 1.2 M Buffers held, accepted (entries are 15). 1000 nodes of 124,000 fields abort the process.
    const K = 40_000;
    const entries = [lpInt(1), lpInt(0), lpInt(1), lpStr('f'), lpInt(0), lpInt(0), lpInt(0), lpInt(0), lpStr(String(K))];
    for (let i = 0; i < K; i++) entries.push(lpInt(0), lpInt(0));
    entries.push(lpInt(0));
    const node = Buffer.concat([raw(Buffer.alloc(16)), lzfStr(listpackOf(entries))]);
    const bytes = rdb(Buffer.from([15]), raw('s'), len(15), ...Array(15).fill(node), len(15), len(1), len(0), len(0));
    await expect(fp(bytes)).rejects.toThrow(/more than this reader holds/);
  });

  it('decoded bytes of one key are bounded, not just its compressed bytes', async () => {
    // 2 items of 64 MiB - 1 each, 190 KB of file: 128 MiB held (+128 MiB for the digest's concat). 88 such items fit in 64 MiB of file: ~11 GB RSS.
    const item = lzfStr(Buffer.alloc(64 * 1024 * 1024 - 1, 'a'));
    const bytes = rdb(Buffer.from([1]), raw('l'), len(2), item, item);
    await expect(fp(bytes)).rejects.toThrow(/more than this reader holds/);
  });
});

describe('stream fingerprints (redis-v4)', () => {
  it('tell entries apart: one entry with fields named like ids is not three entries', async () => {
    const one = rdb(stream('s', [[0, ['a', 'b', '2-0', 'c', '3-0', '4-0', 'x', 'y']]], 5));
    const three = rdb(
      stream(
        's',
        [
          [0, ['a', 'b']],
          [1, ['c', '3-0']],
          [3, ['x', 'y']],
        ],
        5,
      ),
    );
    expect(await fp(one)).not.toEqual(await fp(three));
  });
});

/** A valid RDB of many encodings, for cut tests. */
function rich(seed: Buffer[]): Buffer {
  return rdb(...richParts(seed));
}
function richParts(seed: Buffer[]): Buffer[] {
  const [s1 = Buffer.from('v'), s2 = Buffer.from('w')] = seed;
  const big = Buffer.concat([Buffer.alloc(100, 'q'), s1]);
  const when = Buffer.alloc(8);
  when.writeBigInt64LE(BigInt(Date.now() + 10 * 86_400_000));
  const intset = Buffer.alloc(8 + 3 * 2);
  intset.writeUInt32LE(2, 0);
  intset.writeUInt32LE(3, 4);
  for (const [i, v] of [1, 5, -7].entries()) intset.writeInt16LE(v, 8 + 2 * i);
  const z2 = Buffer.alloc(8);
  z2.writeDoubleLE(0.1);
  return [
    Buffer.from([0xfa]),
    raw('redis-ver'),
    raw('7.2.0'),
    Buffer.from([0xfe, 0x00, 0xfb]),
    len(10),
    len(1),
    Buffer.from([0x00]),
    raw('k'),
    raw(s1),
    Buffer.from([0x00]),
    raw('n'),
    Buffer.from([0xc1, 0x39, 0x30]),
    Buffer.from([0xfc]),
    when,
    Buffer.from([0xf8]),
    len(5),
    Buffer.from([0x00]),
    raw('big'),
    lzfStr(big),
    Buffer.from([0x01]),
    raw('list'),
    len(3),
    raw(s1),
    raw(s2),
    lzfStr(big),
    Buffer.from([0x02]),
    raw('set'),
    len(2),
    raw(s1),
    raw(Buffer.concat([s2, Buffer.from('!')])),
    Buffer.from([0x05]),
    raw('zs'),
    len(1),
    raw(s1),
    z2,
    Buffer.from([0x04]),
    raw('h'),
    len(2),
    raw('f1'),
    raw(s1),
    raw('f2'),
    raw(s2),
    Buffer.from([0x0b]),
    raw('is'),
    raw(intset),
    Buffer.from([0x0a]),
    raw('zl'),
    lzfStr(ziplistOfZeros(50)),
    Buffer.from([0x10]),
    raw('hl'),
    raw(listpackOf([lpStr('f'), lpStr(s1), lpStr('g'), lpInt(7)])),
    Buffer.from([0x11]),
    raw('zl2'),
    raw(listpackOf([lpStr('m'), lpStr('1.5')])),
    Buffer.from([0x12]),
    raw('q2'),
    len(2),
    len(2),
    raw(listpackOf([lpStr(s1), lpInt(3)])),
    len(1),
    raw(s2),
    Buffer.from([0xf9, 7, 0x14]),
    raw('sl'),
    raw(listpackOf([lpStr(s1), lpStr('zz')])),
    Buffer.from([0xfe, 0x03]),
    stream(
      'st',
      [
        [0, ['a', 'b']],
        [1, ['c', 'd']],
      ],
      9,
    ),
  ];
}

describe('a varied RDB (many encodings) read in any chunks', () => {
  const arbSeed = fc.array(
    fc.uint8Array({ minLength: 1, maxLength: 40 }).map((a) => Buffer.from(a)),
    { minLength: 2, maxLength: 2 },
  );

  it('the rich RDB reads', async () => {
    const f = await fp(rich([]));
    expect(Object.keys(f.parts).length).toBeGreaterThan(10);
  });

  it('any cutting into chunks gives the same fingerprint', async () => {
    await fc.assert(
      fc.asyncProperty(arbSeed, fc.array(fc.nat(), { maxLength: 30 }), async (seed, cutsRaw) => {
        const bytes = rich(seed);
        const whole = await fp(bytes);
        const cuts = [...new Set(cutsRaw.map((c) => c % bytes.length))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let at = 0;
        for (const c of [...cuts, bytes.length]) {
          chunks.push(bytes.subarray(at, c)); // empty chunks too
          at = c;
        }
        expect(await rdbFingerprint(Readable.from(chunks), bytes.length)).toEqual(whole);
      }),
      { numRuns: 300 },
    );
  });

  it('every prefix is refused, with its own size or the whole size', async () => {
    const bytes = rich([]);
    for (let k = 0; k < bytes.length; k++) {
      const cut = bytes.subarray(0, k);
      await expect(rdbFingerprint(Readable.from([cut]), k), `cut at ${k}`).rejects.toThrow(/not well formed/);
      await expect(rdbFingerprint(Readable.from([cut]), bytes.length), `cut at ${k}`).rejects.toThrow(/not well formed/);
    }
  });
});
