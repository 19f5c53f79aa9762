import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MultisetDigest } from '../../src/drivers/fingerprint.js';
import { ExecDemuxer } from '../../src/util/exec-demux.js';
import { stripTarTrailer } from '../../src/util/tar-stream.js';
import { parallelGzip } from '../../src/util/parallel-gzip.js';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import { collect } from '../support/tar.js';
import { chunked } from '../support/chunks.js';

/** Docker's exec framing: stream type, three zero bytes, big-endian length, payload. */
function frame(kind: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header[0] = kind;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

const anyBytes = fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a));
const cuts = fc.array(fc.nat(), { maxLength: 20 });

/** Every byte-stream transform: any input, cut at any chunk boundaries, comes out byte-identical. */
describe('byte-stream transforms at any chunk boundary', () => {
  it('ExecDemuxer: frames of stdout and stderr split anywhere give back each stream exactly', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom(1, 2), anyBytes), { maxLength: 8 }), cuts, async (frames, at) => {
        const wire = Buffer.concat(frames.map(([kind, payload]) => frame(kind, payload)));
        const stdout = new PassThrough();
        const got = collect(stdout);
        const stderr: Buffer[] = [];
        await pipeline(Readable.from(chunked(wire, at)), new ExecDemuxer(stdout, (c) => stderr.push(c)));
        stdout.end();
        expect((await got).equals(Buffer.concat(frames.filter(([k]) => k === 1).map(([, p]) => p)))).toBe(true);
        expect(Buffer.concat(stderr).equals(Buffer.concat(frames.filter(([k]) => k === 2).map(([, p]) => p)))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('parallelGzip: any input at any chunking is one gzip file that gives it back (Node and GNU gunzip)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 20_000 }), cuts, fc.integer({ min: 1, max: 4096 }), fc.integer({ min: 1, max: 4 }), async (input, at, blockBytes, inFlight) => {
        const bytes = Buffer.from(input);
        const out = await collect(Readable.from(chunked(bytes, at)).pipe(parallelGzip({ blockBytes, inFlight })));
        expect(gunzipSync(out).equals(bytes)).toBe(true);
      }),
      { numRuns: 150 },
    );
    const text = Buffer.from('stackvault ✓ '.repeat(300_000));
    const out = await collect(Readable.from(chunked(text, [1, 70_000, 1_500_000])).pipe(parallelGzip()));
    const gnu = await execa('gunzip', ['-c'], { input: out, encoding: 'buffer' });
    expect(Buffer.from(gnu.stdout).equals(text)).toBe(true);
  });

  it('stripTarTrailer: drops exactly the final two zero blocks, keeps every other byte', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 8 }), cuts, async (blocks, at) => {
        const body = Buffer.from(Array.from({ length: blocks * 512 }, (_, i) => (i * 31) % 251)); // zeros inside data must survive
        const archive = Buffer.concat([body, Buffer.alloc(1024)]);
        const out = await collect(Readable.from(chunked(archive, at)).pipe(stripTarTrailer()));
        expect(out.equals(body)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('stripTarTrailer: an archive cut off before its end marker is an error, not a shorter archive', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1023 }), cuts, async (missing, at) => {
        const archive = Buffer.concat([Buffer.alloc(512, 0x41), Buffer.alloc(1024)]).subarray(0, 1536 - missing);
        const sink = new Writable({ write: (_c, _e, cb) => cb() });
        await expect(pipeline(Readable.from(chunked(archive, at)), stripTarTrailer(), sink)).rejects.toThrow(/end-of-archive/);
      }),
      { numRuns: 100 },
    );
  });

  it('MultisetDigest: the same items in any order give the same digest; one item more or less does not', () => {
    fc.assert(
      fc.property(fc.array(anyBytes, { maxLength: 30 }), fc.nat(), (items, seed) => {
        const digest = (list: Buffer[]) => {
          const d = new MultisetDigest();
          for (const i of list) d.item().update(i).end();
          return d.toString();
        };
        const shuffled = [...items].sort((a, b) => ((a.length * 31 + seed) % 7) - ((b.length * 31 + seed) % 7));
        expect(digest(shuffled)).toBe(digest(items));
        expect(digest([...items, Buffer.from('x')])).not.toBe(digest(items));
        if (items.length) expect(digest([...items, items[0]!])).not.toBe(digest(items)); // duplicates count
      }),
    );
  });
});
