import { describe, expect, it } from 'vitest';
import { chromaDriver } from '../../src/drivers/chroma.js';
import { CHROMA_FINGERPRINT_METHOD, recordDigest } from '../../src/drivers/chroma-fingerprint.js';

const digest = (embedding: unknown, document: unknown = 'doc', metadata: unknown = { a: 1, b: 'x' }) => recordDigest('id-1', embedding, document, metadata, null).toString('hex');

describe('Chroma record digest', () => {
  it.each([
    ['a float32 printed shortest or in full', [0.1, -2.5], [0.10000000149011612, -2.5]],
    ['metadata keys in any order', [1], [1], { b: 'x', a: 1 }],
  ])('the same record whatever the form: %s', (_what, a, b, metadata = { a: 1, b: 'x' }) => {
    expect(digest(a)).toBe(digest(b, 'doc', metadata));
  });

  it.each([
    ['another value', [0.1, 0.2], [0.1, 0.3]],
    ['another length', [0.1, 0.2], [0.1, 0.2, 0]],
    ['no embedding against an empty one', null, []],
    ['an embedding that is not numbers', ['0.1'], [0.1]],
  ])('a different record: %s', (_what, a, b) => {
    expect(digest(a)).not.toBe(digest(b));
  });

  it('an id, document or metadata that differs differs', () => {
    expect(recordDigest('id-2', [1], 'doc', null, null)).not.toEqual(recordDigest('id-1', [1], 'doc', null, null));
    expect(digest([1], 'other')).not.toBe(digest([1]));
    expect(digest([1], 'doc', { a: 2, b: 'x' })).not.toBe(digest([1]));
  });

  it('a fingerprint of the older method (embeddings as JSON text) is not compared, but computed again', () => {
    expect(chromaDriver.fingerprintAt!({ method: 'chroma-api-v1', parts: {} }, new Date())).toBeUndefined();
    const current = { method: CHROMA_FINGERPRINT_METHOD, parts: { x: 'y' } };
    expect(chromaDriver.fingerprintAt!(current, new Date())).toBe(current);
  });
});
