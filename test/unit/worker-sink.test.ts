import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { workerSink } from '../../src/util/worker-sink.js';

const sinks = new URL('../support/sinks.mjs', import.meta.url);

describe('workerSink', () => {
  it('the worker sees every byte in order, at any chunking (more than the in-flight bound)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 300_000 }), { maxLength: 40 }), fc.integer(), async (sizes, seed) => {
        const chunks = sizes.map((n, i) => Buffer.alloc(n, (seed + i) & 0xff));
        const sink = workerSink<{ sha256: string; bytes: number }>(sinks, 'hashSink');
        await pipeline(Readable.from(chunks), sink.writable);
        const expected = createHash('sha256');
        for (const c of chunks) expected.update(c);
        expect(await sink.result).toEqual({ sha256: expected.digest('hex'), bytes: sizes.reduce((a, b) => a + b, 0) });
      }),
      { numRuns: 15 },
    );
  });

  it('200 MB, with the worker collecting its heap on the way (every 16 MB), arrive whole and in order', async () => {
    const chunk = Buffer.alloc(64 << 10);
    const expected = createHash('sha256');
    const chunks = (function* () {
      for (let i = 0; i < 3200; i++) {
        chunk.fill(i & 0xff);
        expected.update(chunk);
        yield Buffer.from(chunk);
      }
    })();
    const sink = workerSink<{ sha256: string; bytes: number }>(sinks, 'hashSink');
    await pipeline(Readable.from(chunks), sink.writable);
    expect(await sink.result).toEqual({ sha256: expected.digest('hex'), bytes: 3200 * (64 << 10) });
  });

  it('an error in the worker fails the stream with its message', async () => {
    const sink = workerSink(sinks, 'failingSink');
    await expect(pipeline(Readable.from([Buffer.alloc(10), Buffer.from([0xff])]), sink.writable)).rejects.toThrow('a byte 0xff');
    await expect(sink.result).rejects.toThrow('a byte 0xff');
  });

  it('an unknown module fails the stream, it does not hang', async () => {
    const sink = workerSink(new URL('../support/no-such-sink.mjs', import.meta.url), 'hashSink');
    await expect(pipeline(Readable.from([Buffer.alloc(10)]), sink.writable)).rejects.toThrow(/could not start/);
  });
});
