import { PassThrough, Readable } from 'node:stream';
import { collect, tarOf } from '../support/tar.js';
import { describe, expect, it } from 'vitest';
import { concatTars, stripTarTrailer, TarChecker } from '../../src/util/tar-stream.js';
import * as tar from 'tar';

describe('tar streams', () => {
  it('concatenates archives into one that lists every entry, keeping zero-filled data', async () => {
    const a = await tarOf({ 'a.bin': Buffer.alloc(2048) }); // data that is all zeros must survive
    const b = await tarOf({ 'b.txt': Buffer.from('hello') });
    // Like Go's writer (Docker), node-tar ends an archive with exactly two zero blocks.
    expect(a.length).toBe(512 + 2048 + 1024);
    const out = new PassThrough();
    const done = collect(out);
    await concatTars([async () => Readable.from([a]), async () => Readable.from([b])], out);
    out.end();
    const merged = await done;
    const names: Array<[string, number]> = [];
    await new Promise<void>((resolve, reject) => {
      const p = new tar.Parser({
        strict: true,
        onReadEntry: (e) => {
          names.push([e.path, e.size ?? 0]);
          e.resume();
        },
      });
      p.on('end', resolve);
      p.on('error', reject);
      p.end(merged);
    });
    expect(names).toEqual([
      ['a.bin', 2048],
      ['b.txt', 5],
    ]);
  });

  it('refuses an archive from Docker that lacks its end marker (cut off)', async () => {
    const a = await tarOf({ 'a.txt': Buffer.from('x'.repeat(3000)) });
    const cut = a.subarray(0, 1536);
    await expect(collect(Readable.from([cut]).pipe(stripTarTrailer()))).rejects.toThrow(/truncated/);
  });

  it('TarChecker rejects a truncated archive and accepts a whole one', async () => {
    const whole = await tarOf({ 'a.txt': Buffer.from('x'.repeat(3000)) });
    const ok = new TarChecker();
    await new Promise<void>((resolve, reject) => {
      ok.on('finish', resolve);
      ok.on('error', reject);
      ok.end(whole);
    });
    expect(ok.files).toBe(1);
    const bad = new TarChecker();
    await expect(
      new Promise<void>((resolve, reject) => {
        bad.on('finish', resolve);
        bad.on('error', reject);
        bad.end(whole.subarray(0, 1000));
      }),
    ).rejects.toThrow(/invalid tar/);
  });
});
