import { randomBytes } from 'node:crypto';
import { collect, tarOf } from '../support/tar.js';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { findTarEntry } from '../../src/util/tar-build.js';

/** Fails the test instead of hanging it when a stream neither ends nor errors. */
const within = <T>(p: Promise<T>, ms = 3000) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still pending after ${ms} ms (hung)`)), ms))]);

/** A source that sends `bytes` in small chunks, then fails (or, without `error`, just ends). */
function sourceOf(bytes: Buffer, error?: Error): Readable {
  let at = 0;
  return new Readable({
    read() {
      if (at < bytes.length) {
        this.push(bytes.subarray(at, at + 4096));
        at += 4096;
      } else if (error) this.destroy(error);
      else this.push(null);
    },
  });
}

describe('findTarEntry', () => {
  const big = randomBytes(200_000);

  it('streams the named entry, complete', async () => {
    const archive = await tarOf({ 'other.txt': Buffer.from('x'), 'db.sqlite': big });
    const entry = await findTarEntry(sourceOf(archive), 'db.sqlite');
    expect(entry.size).toBe(big.length);
    expect((await within(collect(entry.stream))).equals(big)).toBe(true);
  });

  it('a source that errors mid-entry makes the entry stream error (it does not hang)', async () => {
    const archive = await tarOf({ 'db.sqlite': big });
    const source = sourceOf(archive.subarray(0, 80_000), new Error('the disk went away'));
    const entry = await findTarEntry(source, 'db.sqlite');
    await expect(within(collect(entry.stream))).rejects.toThrow('the disk went away');
    expect(source.destroyed).toBe(true);
  });

  it('a source that ends mid-entry (cut off) makes the entry stream error instead of ending short', async () => {
    const archive = await tarOf({ 'db.sqlite': big });
    const entry = await findTarEntry(sourceOf(archive.subarray(0, 80_000)), 'db.sqlite');
    await expect(within(collect(entry.stream))).rejects.toThrow(/truncated/i);
  });

  it('an abort mid-entry errors the entry stream and destroys the source', async () => {
    const archive = await tarOf({ 'db.sqlite': big });
    const controller = new AbortController();
    let sent = 0;
    const source = new Readable({
      read() {
        if (sent < 40_000) {
          this.push(archive.subarray(sent, sent + 4096));
          sent += 4096;
        }
        // then nothing more arrives: a stalled download
      },
    });
    const entry = await findTarEntry(source, 'db.sqlite', controller.signal);
    const reading = collect(entry.stream);
    setTimeout(() => controller.abort(new Error('interrupted by SIGINT')), 50);
    await expect(within(reading)).rejects.toThrow('interrupted by SIGINT');
    expect(source.destroyed).toBe(true);
  });

  it('rejects when the archive has no such file, or the source fails before it', async () => {
    const archive = await tarOf({ 'a.txt': Buffer.from('a') });
    await expect(within(findTarEntry(sourceOf(archive), 'b.txt'))).rejects.toThrow('the archive has no b.txt');
    await expect(within(findTarEntry(sourceOf(archive.subarray(0, 100), new Error('gone')), 'a.txt'))).rejects.toThrow('gone');
  });
});
