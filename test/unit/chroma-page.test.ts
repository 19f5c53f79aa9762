import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { recordDigest, recordFields } from '../../src/drivers/chroma-fingerprint.js';
import { ChromaPageReader } from '../../src/drivers/chroma-page.js';
import { chunked } from '../support/chunks.js';

/** The page read item by item from these chunks. */
function read(chunks: Buffer[]) {
  const reader = new ChromaPageReader();
  for (const c of chunks) reader.push(c);
  return reader.end();
}

/** The digests of a page's records, as chromaFingerprint takes them. */
function digests(arrays: Map<string, unknown[]>): string[] {
  const field = (name: string, i: number) => arrays.get(name)?.[i] ?? null;
  return (arrays.get('ids') ?? []).map((id, i) => recordDigest(id as string, arrays.get('embeddings')?.[i], field('documents', i), field('metadatas', i), field('uris', i)).toString('hex'));
}

/** The same digests from the page parsed whole (the reading this replaces). */
function digestsParsedWhole(page: Record<string, unknown>): string[] {
  const arrays = new Map(Object.entries(page).filter((e): e is [string, unknown[]] => Array.isArray(e[1])));
  return digests(arrays);
}

// Text with what a scanner can trip over: quotes, backslashes, brackets, commas, colons, any Unicode.
const nasty = fc.oneof(fc.string({ unit: fc.constantFrom('"', '\\', '[', ']', '{', '}', ',', ':', ' ', '\n', 'a', 'é', '☕', '🎉', '\u0000') }), fc.string({ unit: 'binary' }));
const json: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    nasty,
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(nasty, tie('value'), { maxKeys: 3 }),
  ),
})).value;
const page = fc.integer({ min: 0, max: 6 }).chain((n) =>
  fc.record({
    ids: fc.array(nasty, { minLength: n, maxLength: n }),
    embeddings: fc.oneof(fc.constant(null), fc.array(fc.oneof(fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { maxLength: 8 }), json), { minLength: n, maxLength: n })),
    documents: fc.oneof(fc.constant(null), fc.array(fc.oneof(fc.constant(null), nasty), { minLength: n, maxLength: n })),
    metadatas: fc.oneof(fc.constant(null), fc.array(json, { minLength: n, maxLength: n })),
    uris: fc.constant(null),
    include: fc.constant(['embeddings', 'documents', 'metadatas', 'uris']),
    extra: json,
  }),
);

describe('Chroma get pages read item by item', () => {
  it('give the records JSON.parse gives, whatever the content, spacing and chunk boundaries', () => {
    fc.assert(
      fc.property(page, fc.boolean(), fc.array(fc.nat(), { maxLength: 12 }), (p, spaced, cuts) => {
        const bytes = Buffer.from(JSON.stringify(p, null, spaced ? 2 : undefined), 'utf8');
        const { arrays, values } = read(chunked(bytes, cuts));
        const whole = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
        expect(digests(arrays)).toEqual(digestsParsedWhole(whole));
        expect(arrays.has('extra') ? arrays.get('extra') : values.get('extra')).toEqual(whole.extra);
        if (p.embeddings === null) expect(values.get('embeddings')).toBeNull();
      }),
      { numRuns: 400 },
    );
  });

  it('keeps an embedding of numbers as float32, hashed exactly as the numbers were', () => {
    const text = '[0.1, -0.0, 1e-45, 3.4028235677973366e38, 1e300, -2.5, 0.10000000149011612]';
    const numbers = JSON.parse(text) as number[];
    const { arrays } = read([Buffer.from(`{"ids": ["a"], "embeddings": [${text}]}`)]);
    const kept = arrays.get('embeddings')![0];
    expect(kept).toBeInstanceOf(Float32Array);
    expect(recordDigest('a', kept, null, null, null)).toEqual(recordDigest('a', numbers, null, null, null));
  });

  it.each([
    ['not an object', '[1]'],
    ['cut off', '{"ids": ["a", "b"'],
    ['cut off in a string', '{"ids": ["a'],
    ['an empty item', '{"ids": ["a",, "b"]}'],
    ['a trailing comma', '{"ids": ["a",]}'],
    ['no colon', '{"ids" ["a"]}'],
    ['bytes after the end', '{"ids": []} x'],
    ['an item that is not JSON', '{"ids": [nope]}'],
    ['unbalanced', '{"ids": [[1]]]}'],
    // JSON.parse keeps a repeated key's last value; read item by item, the first array stayed.
    ['a key twice, array then null', '{"ids": ["a"], "embeddings": [[0.5]], "embeddings": null}'],
    ['a key twice, then not an array', '{"ids": ["a"], "ids": null}'],
  ])('refuses what is not well-formed: %s', (_what, text) => {
    expect(() => read([Buffer.from(text)])).toThrow(/not well-formed|JSON/);
  });

  it('refuses one item past 256 MiB instead of holding it until the request times out (a hostile server)', () => {
    const reader = new ChromaPageReader();
    reader.push(Buffer.from('{"ids": ["'));
    const mib = Buffer.alloc(1 << 20, 'x');
    let pushed = 0;
    expect(() => {
      for (; pushed < 300; pushed++) reader.push(mib);
    }).toThrow(/more than 256 MiB/);
    expect(pushed).toBe(255); // the id's opening quote and 256 MiB of it: one byte past the limit
  });

  it('refuses more items than the page asked for', () => {
    const reader = new ChromaPageReader(2);
    expect(() => reader.push(Buffer.from('{"ids": ["a", "b", "c"]}'))).toThrow(/more than 2 items in "ids"/);
    const fits = new ChromaPageReader(2);
    fits.push(Buffer.from('{"ids": ["a", "b"]}'));
    expect(fits.end().arrays.get('ids')).toEqual(['a', 'b']);
  });

  it('quotes a huge key in its error shortened', () => {
    const key = 'k'.repeat(10_000);
    expect(() => read([Buffer.from(`{"ids": [], "${key}": [1,, 2]}`)])).toThrow(/an empty item in "k{100}…"$/);
  });
});

describe("a page's records are complete", () => {
  const page = (arrays: Record<string, unknown[]>, values: Record<string, unknown> = {}) => ({ arrays: new Map(Object.entries(arrays)), values: new Map(Object.entries(values)) });
  it.each([
    ['every field as long as the ids', page({ ids: ['a', 'b'], embeddings: [[1], [2]], documents: ['x', null], metadatas: [null, {}], uris: [null, null] })],
    ['fields null or absent', page({ ids: ['a'] }, { embeddings: null, uris: null })],
    ['no records', page({ ids: [], documents: [] })],
  ])('accepted: %s', (_what, p) => {
    expect(recordFields(p, 'c')).toBe(p.arrays.get('ids'));
  });
  it.each([
    ['no ids', page({ documents: ['x'] }), /no list of ids/],
    ['a document past the ids (it would not be hashed)', page({ ids: ['a'], documents: ['x', 'y'] }), /2 documents for 1 ids/],
    ['fewer embeddings than ids', page({ ids: ['a', 'b'], embeddings: [[1]] }), /1 embeddings for 2 ids/],
    ['documents that are not a list (they would be hashed as null)', page({ ids: ['a'] }, { documents: 'abc' }), /documents that are not a list/],
  ])('refused: %s', (_what, p, message) => {
    expect(() => recordFields(p, 'c')).toThrow(message);
  });
});
