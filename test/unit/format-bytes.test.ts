import { describe, expect, it } from 'vitest';
import { formatBytes } from '../../src/util/format.js';

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KB'],
    [10 * 1024 * 1024, '10 MB'],
    [1.5 * 1024 ** 4, '1.5 TB'],
    // The largest sizes a manifest may hold (safe integers), summed over forty services.
    [Number.MAX_SAFE_INTEGER, '8.0 PB'],
    [40 * Number.MAX_SAFE_INTEGER, '320 PB'],
  ])('%d bytes: %s', (bytes, text) => expect(formatBytes(bytes)).toBe(text));
});
