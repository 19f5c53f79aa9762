import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { gatheredInto, teeTo } from '../../src/util/backpressure.js';

const CHUNK = 64 << 10;

/** `count` chunks of distinct bytes, produced as fast as they are read. */
function source(count: number): Readable {
  let i = 0;
  return new Readable({
    read() {
      if (i === count) return this.push(null);
      const chunk = Buffer.alloc(CHUNK, i % 251);
      chunk.writeUInt32BE(i++, 0);
      this.push(chunk);
    },
  });
}

/** A Writable that hashes what it gets; `delay` makes it slow (a hash on another thread, a parser). */
function hashing(delay: (i: number) => number, failAt = Number.POSITIVE_INFINITY) {
  const hash = createHash('sha256');
  let bytes = 0;
  let writes = 0;
  let mostQueued = 0;
  const w = new Writable({
    highWaterMark: CHUNK,
    write(chunk: Buffer, _enc, cb) {
      mostQueued = Math.max(mostQueued, w.writableLength);
      const i = writes++;
      if (i === failAt) return cb(new Error('the tap broke'));
      hash.update(chunk);
      bytes += chunk.length;
      const ms = delay(i);
      if (ms > 0) setTimeout(cb, ms);
      else cb();
    },
  });
  return { w, digest: () => hash.digest('hex'), bytes: () => bytes, mostQueued: () => mostQueued };
}

describe('teeTo: a tap that reads along', () => {
  it('a slow tap holds the source back: what waits in memory stays bounded, and both sides get every byte', async () => {
    const count = 400; // 25 MB
    const expected = createHash('sha256');
    for await (const c of source(count)) expected.update(c as Buffer);
    const tap = hashing((i) => (i % 8 === 0 ? 1 : 0));
    const out = hashing(() => 0);
    const tee = teeTo(out.w, tap.w);
    await pipeline(source(count), tee);
    const want = expected.digest('hex');
    expect(tap.digest()).toBe(want);
    expect(out.digest()).toBe(want);
    // Unbounded, the tap would queue nearly the whole 25 MB.
    expect(tap.mostQueued()).toBeLessThanOrEqual(4 * CHUNK);
  });

  it('a tap that fails stops the stream with its own error, before the source is read to the end', async () => {
    const tap = hashing(() => 0, 10);
    const out = hashing(() => 0);
    const tee = teeTo(out.w, tap.w);
    await expect(pipeline(source(1000), tee)).rejects.toThrow('the tap broke');
    expect(out.bytes()).toBeLessThan(100 * CHUNK);
  });

  it('an output that is destroyed fails the stream, and takes the tap down with it', async () => {
    const tap = hashing(() => 0);
    const out = hashing((i) => (i === 5 ? 50 : 0));
    const tee = teeTo(out.w, tap.w);
    setTimeout(() => out.w.destroy(), 20);
    await expect(pipeline(source(1000), tee)).rejects.toThrow();
    expect(tap.bytes()).toBeLessThan(1000 * CHUNK);
    // Neither ended nor destroyed, a tap would leave whoever waits for its result waiting forever.
    expect(tap.w.destroyed).toBe(true);
  });

  it('a tap that has finished is left alone when the tee is destroyed afterwards', async () => {
    const tap = hashing(() => 0);
    const out = hashing(() => 0);
    const tee = teeTo(out.w, tap.w);
    await pipeline(source(3), tee);
    tee.destroy(new Error('later'));
    expect(tap.w.errored).toBeNull();
  });
});

describe('gatheredInto: small chunks handed on in pieces', () => {
  it('gives a tar of many small entries to its output in 64 KiB pieces, every byte in order, without ending the output', async () => {
    const sizes: number[] = [];
    const got: Buffer[] = [];
    const out = new Writable({
      highWaterMark: CHUNK,
      write(chunk: Buffer, _enc, cb) {
        sizes.push(chunk.length);
        got.push(chunk);
        setImmediate(cb); // a compressor answers later, from its thread pool
      },
    });
    const gathered = gatheredInto(out);
    // 20,000 entries as a pre-copy writes them: a 512-byte header, a few bytes, the padding.
    const sent: Buffer[] = [];
    for (let i = 0; i < 20_000; i++) sent.push(Buffer.alloc(512, i % 251), Buffer.from(`${i}\n`), Buffer.alloc(512 - `${i}\n`.length));
    await pipeline(Readable.from(sent), gathered);
    expect(out.writableEnded).toBe(false);
    expect(Buffer.concat(got).equals(Buffer.concat(sent))).toBe(true);
    // Before, each of the 60,000 chunks reached the output alone.
    expect(sizes.length).toBeLessThanOrEqual(Math.ceil((20_000 * 1024) / CHUNK));
    expect(sizes.slice(0, -1).every((n) => n >= CHUNK)).toBe(true);
  });

  it('an output destroyed while a piece waits for room fails the writer, and leaves no unhandled error (Ctrl-C while a pre-copy is emitted crashed the run)', async () => {
    const out = new Writable({ highWaterMark: 1, write: () => undefined }); // never has room again
    out.on('error', () => undefined);
    const gathered = gatheredInto(out, 4);
    const written = new Promise<Error | null | undefined>((resolve) => gathered.write(Buffer.alloc(8), (err) => resolve(err)));
    out.destroy(new Error('interrupted'));
    expect((await written)?.message).toBe('the output stream was closed');
    await new Promise((r) => setImmediate(r)); // the 'error' event comes after the callback
  });
});
