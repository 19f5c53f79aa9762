import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import type { Parser, ReadEntry } from 'tar';
import { describe, expect, it } from 'vitest';
import { TarParser, paxRecords } from '../../src/util/tar-parser.js';
import { chunked } from '../support/chunks.js';

/** node-tar as it is: its CommonJS build, a module of its own that tar-parser.ts does not change. */
const nodeTarAlone = () => new (createRequire(import.meta.url)('tar') as typeof import('tar')).Parser({ strict: true });

/**
 * Tars written here by hand, as POSIX describes them (not by node-tar's own encoder): a ustar
 * header and, for long or non-ASCII names, a PAX header whose records are counted in bytes.
 */
function ustarHeader(fields: { name: string; type: string; size: number; linkname?: string }): Buffer {
  const block = Buffer.alloc(512);
  block.write(fields.name.slice(0, 100), 0, 100, 'latin1');
  block.write('0000644\0', 100, 'latin1');
  block.write('0000000\0', 108, 'latin1');
  block.write('0000000\0', 116, 'latin1');
  block.write(`${fields.size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  block.write('00000000000\0', 136, 'latin1');
  block.write(fields.type, 156, 'latin1');
  block.write((fields.linkname ?? '').slice(0, 100), 157, 100, 'latin1');
  block.write('ustar\x0000', 257, 'latin1');
  block.fill(0x20, 148, 156);
  const sum = block.reduce((s, b) => s + b, 0);
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}

function paxRecord(key: string, value: string): Buffer {
  const body = Buffer.from(` ${key}=${value}\n`);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

const padded = (b: Buffer) => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);

interface Item {
  path: string;
  link?: string;
  content: Buffer;
}

function tarOf(items: Item[]): Buffer {
  const parts: Buffer[] = [];
  for (const item of items) {
    const type = item.link === undefined ? '0' : '2';
    const size = item.link === undefined ? item.content.length : 0;
    const pax = Buffer.concat([paxRecord('path', item.path), ...(item.link === undefined ? [] : [paxRecord('linkpath', item.link)])]);
    parts.push(ustarHeader({ name: 'PaxHeaders/x', type: 'x', size: pax.length }), padded(pax));
    parts.push(ustarHeader({ name: 'truncated', type, size, linkname: item.link === undefined ? '' : 'truncated' }));
    if (size) parts.push(padded(item.content));
  }
  return Buffer.concat([...parts, Buffer.alloc(1024)]);
}

/** What a parser reads: each entry's path, link and a digest of its content, then its warnings and error. */
async function read(parser: Parser, chunks: Buffer[]): Promise<string[]> {
  const got: string[] = [];
  parser.on('entry', (e: ReadEntry) => {
    const hash = createHash('sha256');
    e.on('data', (c: Buffer) => hash.update(c));
    e.on('end', () => got.push(`${JSON.stringify(e.path)} ${JSON.stringify(e.linkpath ?? '')} ${hash.digest('hex').slice(0, 12)}`));
  });
  parser.on('warn', (code: string) => got.push(`warn ${code}`));
  const done = new Promise<void>((resolve) => {
    parser.on('end', () => resolve());
    parser.on('error', (err: Error) => {
      got.push(`error ${err.message}`);
      resolve();
    });
  });
  for (const c of chunks) parser.write(c);
  parser.end();
  await done;
  return got;
}

const expected = (items: Item[]) => items.map((i) => `${JSON.stringify(i.path)} ${JSON.stringify(i.link ?? '')} ${createHash('sha256').update(i.content).digest('hex').slice(0, 12)}`);

/** Names of any characters, long ones included, with newlines, '=' and multi-byte characters likely. */
const name = fc
  .array(fc.oneof(fc.constantFrom('\n', '=', 'ж', '語', '😀', 'é', ' ', '/'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 4 })), { minLength: 1, maxLength: 400 })
  .map((parts) => `d/${parts.join('').replaceAll('\0', '')}.f`); // not ending in '/': node-tar takes that for a directory

describe('TarParser: long names read exactly', () => {
  it('gives every name, link and content as written, wherever the stream is cut', async () => {
    const item = fc.record({ path: name, link: fc.option(name, { nil: undefined }), content: fc.uint8Array({ maxLength: 1500 }).map((a) => Buffer.from(a)) });
    await fc.assert(
      fc.asyncProperty(fc.array(item, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 40 }), async (items, cuts) => {
        const all = items.map((i) => (i.link === undefined ? i : { ...i, content: Buffer.alloc(0) }));
        expect(await read(new TarParser(), chunked(tarOf(all), cuts))).toEqual(expected(all));
      }),
      { numRuns: 300 },
    );
  });

  it('node-tar alone loses a name with a newline, and a multi-byte name cut between chunks (what this class is for)', async () => {
    const newline = { path: `d/${'x'.repeat(120)}\nlast`, content: Buffer.from('a') };
    const cyrillic = { path: `d/x${'ж'.repeat(400)}`, content: Buffer.from('b') };
    const bytes = tarOf([newline, cyrillic]);
    const cuts = [...Array(bytes.length).keys()].filter((i) => i % 7 === 0);
    expect(await read(nodeTarAlone(), chunked(bytes, cuts))).not.toEqual(expected([newline, cyrillic]));
    expect(await read(new TarParser(), chunked(bytes, cuts))).toEqual(expected([newline, cyrillic]));
  });

  // In one piece, node-tar's reading is untouched (but for PAX values with a newline, which a damaged byte may make).
  it('reads any other bytes (damaged, cut off, or not a tar) wherever they are cut as in one piece', async () => {
    const plain = tarOf([{ path: 'd/a', content: Buffer.from('abc') }]);
    const damaged = fc.tuple(fc.nat(plain.length - 1), fc.integer({ min: 1, max: 255 })).map(([at, x]) => {
      const b = Buffer.from(plain);
      b[at]! ^= x;
      return b;
    });
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a)),
      damaged,
      fc.nat(plain.length).map((n) => plain.subarray(0, n)),
    );
    await fc.assert(
      fc.asyncProperty(input, fc.array(fc.nat(), { maxLength: 20 }), async (bytes, cuts) => {
        expect(await read(new TarParser(), chunked(bytes, cuts))).toEqual(await read(new TarParser(), [bytes]));
      }),
      { numRuns: 300 },
    );
  });
});

describe('TarParser: follows the archive exactly as node-tar does', () => {
  const cyrillic = { path: `d/x${'ж'.repeat(400)}`, content: Buffer.from('b') };
  const everySeventh = (bytes: Buffer) => [...Array(bytes.length).keys()].filter((i) => i % 7 === 0);

  it('a long name after a file whose size only its PAX record gives (as Go writes files of 8 GiB and more)', async () => {
    // Go's archive/tar (Docker) writes 0 in the header's size field when the size does not fit, the size in a PAX record.
    const content = Buffer.from('not a tar header, just the content of a big file '.repeat(40));
    const pax = paxRecord('size', String(content.length));
    const big = Buffer.concat([ustarHeader({ name: 'PaxHeaders/big', type: 'x', size: pax.length }), padded(pax), ustarHeader({ name: 'big', type: '0', size: 0 }), padded(content)]);
    const bytes = Buffer.concat([big, tarOf([cyrillic])]);
    const want = [`"big" "" ${createHash('sha256').update(content).digest('hex').slice(0, 12)}`, ...expected([cyrillic])];
    expect(await read(new TarParser(), chunked(bytes, everySeventh(bytes)))).toEqual(want);
  });

  it('a long name after a directory whose header gives it a size (node-tar reads no content for a directory)', async () => {
    const dir = ustarHeader({ name: 'd/', type: '5', size: 4096 });
    const odd = { path: `d/${'ж'.repeat(400)}`, content: Buffer.from('c') };
    const bytes = Buffer.concat([dir, tarOf([cyrillic, odd])]);
    expect(await read(new TarParser(), chunked(bytes, everySeventh(bytes)))).toEqual([`"d/" "" ${createHash('sha256').digest('hex').slice(0, 12)}`, ...expected([cyrillic, odd])]);
  });

  it.each([
    ['X', 'old PAX header'],
    ['N', 'old GNU long name'],
  ])("a long name in an '%s' entry (%s), which node-tar reads as meta text too", async (type) => {
    const text = type === 'X' ? paxRecord('path', cyrillic.path) : Buffer.from(cyrillic.path);
    const bytes = Buffer.concat([
      ustarHeader({ name: 'meta', type, size: text.length }),
      padded(text),
      ustarHeader({ name: 'truncated', type: '0', size: 1 }),
      padded(cyrillic.content),
      Buffer.alloc(1024),
    ]);
    expect(await read(new TarParser(), chunked(bytes, everySeventh(bytes)))).toEqual(expected([cyrillic]));
  });

  it('any mix of those entries reads the same wherever the stream is cut as in one piece', async () => {
    // Long multi-byte names: the stream's cuts fall inside their characters.
    const long = name.map((n) => `d/${'ж'.repeat(300)}${n}`);
    const pieceOf = fc.oneof(
      long.map((n) => tarOf([{ path: n, content: Buffer.from('x') }]).subarray(0, -1024)),
      fc.tuple(long, fc.integer({ min: 0, max: 2000 })).map(([n, size]) => {
        const pax = Buffer.concat([paxRecord('path', n), paxRecord('size', String(size))]);
        return Buffer.concat([ustarHeader({ name: 'PaxHeaders/s', type: 'x', size: pax.length }), padded(pax), ustarHeader({ name: 's', type: '0', size: 0 }), padded(Buffer.alloc(size, 0x41))]);
      }),
      fc.integer({ min: 0, max: 3000 }).map((size) => ustarHeader({ name: 'dir/', type: '5', size })),
      fc.tuple(long, fc.constantFrom('X', 'N', 'L', 'g')).map(([n, type]) => {
        const text = type === 'X' || type === 'g' ? paxRecord(type === 'g' ? 'comment' : 'path', n) : Buffer.from(n);
        return Buffer.concat([ustarHeader({ name: 'meta', type, size: text.length }), padded(text), ustarHeader({ name: 'after', type: '0', size: 1 }), padded(Buffer.from('y'))]);
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(pieceOf, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 40 }), async (pieces, cuts) => {
        const bytes = Buffer.concat([...pieces, Buffer.alloc(1024)]);
        expect(await read(new TarParser(), chunked(bytes, cuts))).toEqual(await read(new TarParser(), [bytes]));
      }),
      { numRuns: 300 },
    );
  });

  it('a PAX header over 1 MiB is skipped, as node-tar alone skips it', async () => {
    const pax = Buffer.concat([paxRecord('comment', 'c'.repeat(1024 * 1024)), paxRecord('path', cyrillic.path)]);
    const bytes = Buffer.concat([ustarHeader({ name: 'PaxHeaders/big', type: 'x', size: pax.length }), padded(pax), tarOf([cyrillic])]);
    const got = await read(new TarParser(), chunked(bytes, everySeventh(bytes)));
    expect(got).toEqual(await read(nodeTarAlone(), [bytes]));
    expect(got).toEqual(expected([cyrillic]));
  });

  it('a PAX type record with a newline is ignored, as node-tar ignores every type record', async () => {
    const pax = Buffer.concat([paxRecord('type', '5\n'), paxRecord('path', 'd/a')]);
    const bytes = Buffer.concat([
      ustarHeader({ name: 'PaxHeaders/a', type: 'x', size: pax.length }),
      padded(pax),
      ustarHeader({ name: 'a', type: '0', size: 1 }),
      padded(Buffer.from('b')),
      Buffer.alloc(1024),
    ]);
    expect(await read(new TarParser(), [bytes])).toEqual(expected([{ path: 'd/a', content: Buffer.from('b') }]));
  });
});

describe('PAX records', () => {
  it.each([
    ['one record', '12 path=abc\n', [['path', 'abc']]],
    ['a value with newlines and =', '16 path=a\nb=c\nd\n', [['path', 'a\nb=c\nd']]],
    ['multi-byte, counted in bytes', '13 path=жж\n', [['path', 'жж']]],
    [
      'two records',
      '12 path=abc\n16 linkpath=xyz\n',
      [
        ['path', 'abc'],
        ['linkpath', 'xyz'],
      ],
    ],
  ])('%s', (_, text, records) => {
    expect(paxRecords(text)?.map((r) => [r.key, r.value])).toEqual(records);
  });

  it.each([
    ['a length too long', '13 path=abc\n'],
    ['a length too short', '11 path=abc\n'],
    ['no length', 'path=abc\n'],
    ['a leading zero', '012 path=abc\n'],
    ['no key', '8 =abc\n'],
    ['trailing bytes', '12 path=abc\nx'],
    ['a replaced byte (not UTF-8)', '12 path=a\uFFFD\n'],
  ])('%s: not read (node-tar reads it its own way)', (_, text) => {
    expect(paxRecords(text)).toBeUndefined();
  });
});
