import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TailKeeper } from '../../src/util/tail-keeper.js';
import { chunked } from '../support/chunks.js';

/** Feeds the chunks through a keeper; whether the marker was seen, and the kept text. */
async function keep(chunks: Buffer[], marker?: Buffer) {
  const keeper = new TailKeeper(marker);
  let seen = false;
  void keeper.seen.then(() => {
    seen = true;
  });
  await pipeline(Readable.from(chunks), keeper);
  await new Promise((r) => setImmediate(r));
  return { seen, text: keeper.text() };
}

describe('TailKeeper', () => {
  it('keeps the last 256 bytes and sees a marker wherever the chunks are cut', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), fc.boolean(), fc.nat(), fc.array(fc.nat(), { maxLength: 20 }), async (data, withMarker, at, cuts) => {
        const marker = Buffer.from('\n-- Current Database: ');
        const bytes = Buffer.from(data);
        const whole = withMarker ? Buffer.concat([bytes.subarray(0, at % (bytes.length + 1)), marker, bytes.subarray(at % (bytes.length + 1))]) : bytes;
        const { seen, text } = await keep(chunked(whole, cuts), marker);
        expect(seen).toBe(whole.includes(marker));
        expect(text).toBe(whole.subarray(-256).toString('latin1'));
      }),
      { numRuns: 300 },
    );
  });

  it('without a marker never says it saw one', async () => {
    expect((await keep([Buffer.from('abc')])).seen).toBe(false);
  });
});
