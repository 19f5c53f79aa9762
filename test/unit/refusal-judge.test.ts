import { pipeline } from 'node:stream/promises';
import { Readable, Transform } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RefusalJudge } from '../../src/util/refusal-judge.js';

/** Refuses a chunk holding "BAD", or an end without "END" (as a dump filter refuses a cut-off dump). */
const filter = () => {
  let seen = '';
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      seen = (seen + chunk.toString('latin1')).slice(-8);
      if (chunk.includes('BAD')) return cb(new Error('it holds BAD'));
      cb(null, chunk);
    },
    flush(cb) {
      cb(seen.endsWith('END') ? null : new Error('it was cut off'));
    },
  });
};

const judge = async (chunks: string[]) => {
  const j = new RefusalJudge(filter());
  await pipeline(Readable.from(chunks.map((c) => Buffer.from(c, 'latin1'))), j);
  return j.refused;
};

describe('RefusalJudge: the first refusal kept, the stream never failed', () => {
  it.each([
    ['accepted', ['abc', 'def', 'END'], undefined],
    ['refused in a chunk', ['abc', 'xBADx', 'more', 'END'], 'it holds BAD'],
    ['refused at the end', ['abc', 'def'], 'it was cut off'],
    ['the first of two refusals', ['BAD', 'x'], 'it holds BAD'],
    ['empty', [], 'it was cut off'],
  ] as const)('%s', async (_, chunks, refused) => {
    expect(await judge([...chunks])).toBe(refused);
  });

  it('any chunking: refused exactly when the filter refuses the whole', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom('a', 'B', 'BAD', 'END', 'x'), { maxLength: 30 }), async (chunks) => {
        const whole = chunks.join('');
        const expected = chunks.some((c) => c.includes('BAD')) ? 'it holds BAD' : whole.endsWith('END') ? undefined : 'it was cut off';
        expect(await judge(chunks)).toBe(expected);
      }),
    );
  });

  it('many megabytes pass with backpressure', async () => {
    const big = Array.from({ length: 64 }, () => 'x'.repeat(1 << 20));
    expect(await judge([...big, 'END'])).toBeUndefined();
  });
});
