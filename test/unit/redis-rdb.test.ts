import fc from 'fast-check';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { formatScore, REDIS_FINGERPRINT_METHOD } from '../../src/drivers/redis-fingerprint.js';
import { listpack, lzfDecompress, RdbNotReadHere, rdbFingerprint } from '../../src/drivers/redis-rdb.js';

describe('formatScore: C printf %.17g, as the Lua writes scores', () => {
  // Right-hand sides from Python's '%.17g' (correctly rounded, half to even, like glibc).
  it.each([
    [0.1, '0.10000000000000001'],
    [Number('12345678901234.5625'), '12345678901234.562'], // an exact tie: half to even (JavaScript rounds it up)
    [Number('1234567890123.45625'), '1234567890123.4563'],
    [Number('-12345678901234.5675'), '-12345678901234.568'],
    [0.5, '0.5'],
    [1e17, '1e+17'],
    [1e16, '10000000000000000'],
    [123456789012345680, '1.2345678901234568e+17'],
    [1e-4, '0.0001'],
    [1e-5, '1.0000000000000001e-05'],
    [5e-324, '4.9406564584124654e-324'],
    [1.7976931348623157e308, '1.7976931348623157e+308'],
    [2 ** 53 + 2, '9007199254740994'],
    [-0, '-0'],
    [3, '3'],
    [1.5e-7, '1.4999999999999999e-07'],
    [1e20, '1e+20'],
    [Number.POSITIVE_INFINITY, 'inf'],
    [Number.NEGATIVE_INFINITY, '-inf'],
  ])('%s → %s', (x, text) => {
    expect(formatScore(x)).toBe(text);
  });

  it('reads back as the same double, for any double', () => {
    fc.assert(fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => Object.is(Number(formatScore(x)), x)));
  });
});

const lp = (...entries: Buffer[]) => {
  const body = Buffer.concat([...entries, Buffer.from([0xff])]);
  const head = Buffer.alloc(6);
  head.writeUInt32LE(6 + body.length, 0);
  head.writeUInt16LE(entries.length, 4);
  return Buffer.concat([head, body]);
};

describe('listpack entries', () => {
  it.each([
    ['7-bit unsigned', Buffer.from([0x05, 0x01]), '5'],
    ['13-bit negative', Buffer.from([0xdf, 0xff, 0x02]), '-1'],
    ['6-bit string', Buffer.from([0x82, 0x61, 0x00, 0x03]), 'a\0'],
    ['int16', Buffer.from([0xf1, 0x00, 0x80, 0x03]), '-32768'],
    ['int24', Buffer.from([0xf2, 0xff, 0xff, 0x7f, 0x04]), '8388607'],
    ['int64', Buffer.from([0xf4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x09]), '9223372036854775807'],
  ])('%s', (_name, entry, text) => {
    expect(listpack(lp(entry)).map((b) => b.toString('latin1'))).toEqual([text]);
  });

  it('refuses an entry that runs past the listpack, and a listpack whose length is not its size', () => {
    expect(() => listpack(lp(Buffer.from([0x8f, 0x61])))).toThrow(/runs past its end/);
    const bad = lp(Buffer.from([0x05, 0x01]));
    bad.writeUInt32LE(1000, 0);
    expect(() => listpack(bad)).toThrow(/length is not its size/);
  });
});

describe('LZF', () => {
  it('a literal run and a back reference that overlaps its output', () => {
    // "abc" then copy 6 bytes from 3 back: "abcabcabc"
    expect(lzfDecompress(Buffer.from([0x02, 0x61, 0x62, 0x63, 0x80, 0x02]), 9).toString()).toBe('abcabcabc');
  });
  it('refuses references before the start and output of another length', () => {
    expect(() => lzfDecompress(Buffer.from([0x00, 0x61, 0x20, 0x05]), 4)).toThrow(/outside its output/);
    expect(() => lzfDecompress(Buffer.from([0x02, 0x61, 0x62, 0x63]), 4)).toThrow(/3 bytes where 4/);
    expect(() => lzfDecompress(Buffer.from([0x00, 0x61]), 2 ** 40)).toThrow(/said to give/);
  });
});

/** An RDB of version 11 with the given body (opcodes and keys), its end marker and a CRC's 8 bytes. */
const rdb = (...body: Buffer[]) => Buffer.concat([Buffer.from('REDIS0011'), ...body, Buffer.from([0xff]), Buffer.alloc(8)]);
const str = (s: string) => Buffer.concat([Buffer.from([s.length]), Buffer.from(s)]);
const chunked = (bytes: Buffer, size: number) => Readable.from(Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size)));

describe('rdbFingerprint on made-up and hostile bytes', () => {
  const twoKeys = rdb(Buffer.from([0xfe, 0x00]), Buffer.from([0x00]), str('k'), str('v'), Buffer.from([0x00]), str('n'), Buffer.from([0xc0, 0x7b]));

  it('gives the same fingerprint whatever the chunk sizes', async () => {
    const whole = await rdbFingerprint(Readable.from([twoKeys]), twoKeys.length);
    expect(Object.keys(whole.parts)).toEqual(['db0 key k', 'db0 key n']);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: twoKeys.length }), async (size) => {
        expect(await rdbFingerprint(chunked(twoKeys, size), twoKeys.length)).toEqual(whole);
      }),
    );
  });

  it('refuses a cut-off file, bytes after the end, a length past the end, and a file that is not an RDB', async () => {
    await expect(rdbFingerprint(Readable.from([twoKeys.subarray(0, 20)]), 20)).rejects.toThrow(/past the file's end|before its end marker/);
    const longer = Buffer.concat([twoKeys, Buffer.from('x')]);
    await expect(rdbFingerprint(Readable.from([longer]), longer.length)).rejects.toThrow(/9 bytes follow its end marker where 8/);
    const huge = rdb(Buffer.from([0x00]), str('k'), Buffer.from([0x80, 0x7f, 0xff, 0xff, 0xff]));
    await expect(rdbFingerprint(Readable.from([huge]), huge.length)).rejects.toThrow(/past the file's end/);
    await expect(rdbFingerprint(Readable.from([Buffer.from('PK\x03\x04 not an rdb')]), 17)).rejects.toThrow(/does not start with REDIS/);
  });

  it('leaves what it cannot read to a server: module types, a zipmap', async () => {
    for (const type of [6, 7, 9]) {
      const bytes = rdb(Buffer.from([type]), str('s'), Buffer.alloc(10));
      await expect(rdbFingerprint(Readable.from([bytes]), bytes.length)).rejects.toBeInstanceOf(RdbNotReadHere);
    }
  });

  it('never hangs or throws anything but an error on random bytes after a valid header', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), async (tail) => {
        const bytes = Buffer.concat([Buffer.from('REDIS0011'), tail]);
        await rdbFingerprint(Readable.from([bytes]), bytes.length).then(
          (fp) => expect(fp.method).toBe(REDIS_FINGERPRINT_METHOD),
          (err: unknown) => expect(err).toBeInstanceOf(Error),
        );
      }),
    );
  });
});

describe('rdbFingerprint: limits and what Redis reads otherwise', () => {
  it('a 16383-byte listpack entry (a 3-byte back-length ending in 0xff) does not end the listpack', () => {
    const big = Buffer.concat([Buffer.from([0xf0]), Buffer.from([0xfa, 0x3f, 0, 0]), Buffer.alloc(16378, 'x'), Buffer.from([0x7f, 0x7f, 0xff])]);
    const second = Buffer.from([0x86, ...Buffer.from('second'), 0x07]);
    expect(listpack(lp(big, second)).map((b) => b.length)).toEqual([16378, 6]);
  });

  it('a key of a million items is left to a server, not held', async () => {
    const bytes = rdb(Buffer.from([0x01]), str('l'), Buffer.from([0x80, 0x00, 0x0f, 0x42, 0x40]), Buffer.alloc(1_000_000));
    await expect(rdbFingerprint(Readable.from([bytes]), bytes.length)).rejects.toThrow(/1000000 items, more than this reader holds/);
  });

  it('an expiry of -1 is none; a score in hex is refused; a newer RDB version is left to a server', async () => {
    const minusOne = Buffer.alloc(8, 0xff);
    const noExpiry = rdb(Buffer.from([0xfc]), minusOne, Buffer.from([0x00]), str('k'), str('v'));
    expect(Object.keys((await rdbFingerprint(Readable.from([noExpiry]), noExpiry.length)).parts)).toEqual(['db0 key k']);
    const hexScore = rdb(Buffer.from([0x03]), str('z'), Buffer.from([0x01]), str('m'), Buffer.from([4]), Buffer.from('0x10'));
    await expect(rdbFingerprint(Readable.from([hexScore]), hexScore.length)).rejects.toThrow(/a score "0x10"/);
    const newer = Buffer.from('REDIS0013\xff', 'latin1');
    await expect(rdbFingerprint(Readable.from([newer]), newer.length)).rejects.toBeInstanceOf(RdbNotReadHere);
  });
});
