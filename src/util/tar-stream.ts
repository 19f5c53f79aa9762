import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { forwardTo } from './backpressure.js';
import type { ReadEntry } from 'tar';
import { TarParser } from './tar-parser.js';

/**
 * A Writable that parses a tar stream strictly and fails on a truncated or malformed archive,
 * so a cut-off copy is never presented as a backup. Collects entry facts on the way.
 */
export class TarChecker extends Writable {
  entries = 0;
  files = 0;
  bytes = 0;
  private failure: Error | undefined;
  private readonly parser: TarParser;
  private readonly parsed: Promise<void>;

  constructor(private readonly onEntry?: (entry: ReadEntry) => void) {
    super();
    this.parser = new TarParser();
    this.parser.on('entry', (entry: ReadEntry) => {
      this.entries++;
      // node-tar may give an entry another size than the bytes it reads as its content (a
      // global PAX size next to a per-file one): a tool that believed the size would read
      // other entries than these.
      let held = 0;
      entry.on('data', (c: Buffer) => {
        held += c.length;
      });
      entry.on('end', () => {
        if (held !== (entry.size ?? 0)) this.failure ??= new Error(`the entry '${entry.path}' holds ${held} bytes, its header says ${entry.size ?? 0}`);
      });
      if (entry.type === 'File' || entry.type === 'OldFile') {
        this.files++;
        this.bytes += entry.size ?? 0;
      }
      this.onEntry?.(entry);
      entry.resume();
    });
    this.parser.on('error', (err: Error) => {
      this.failure ??= err;
    });
    this.parser.on('warn', (_code: string, message: string | Error) => {
      this.failure ??= message instanceof Error ? message : new Error(String(message));
    });
    this.parsed = new Promise((resolve) => this.parser.on('end', () => resolve()));
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.failure) return cb(this.failure);
    const ok = this.parser.write(chunk);
    if (ok) cb();
    else this.parser.once('drain', () => cb());
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.parser.end();
    this.parsed.then(() => {
      cb(this.failure ? new Error(`invalid tar archive: ${this.failure.message}`) : null);
    }, cb);
  }
}

/**
 * Docker's archive API returns one tar per path. To put several paths in one artifact we copy
 * each tar's blocks and drop its end-of-archive marker (two zero blocks), then end once.
 */
export function stripTarTrailer(): Transform {
  const KEEP = 1024;
  // The last KEEP bytes seen, held back until more arrive; everything before them goes on
  // as it came (no copies of the data itself).
  let held = Buffer.alloc(0);
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (chunk.length >= KEEP) {
        if (held.length) this.push(held);
        if (chunk.length > KEEP) this.push(chunk.subarray(0, chunk.length - KEEP));
        held = Buffer.from(chunk.subarray(chunk.length - KEEP));
        return cb();
      }
      const all = Buffer.concat([held, chunk]);
      if (all.length > KEEP) this.push(all.subarray(0, all.length - KEEP));
      held = all.length > KEEP ? Buffer.from(all.subarray(all.length - KEEP)) : all;
      cb();
    },
    flush(cb) {
      // Docker (Go's archive/tar) ends every archive with exactly two zero blocks. Without them
      // the archive was cut off, and the bytes held back are data that must not be dropped.
      if (held.length < KEEP || !held.every((b) => b === 0)) {
        return cb(new Error('the archive from Docker ended without its end-of-archive marker (truncated)'));
      }
      cb();
    },
  });
}

/** Pipes several tar streams into `out` as one archive, ending with a single marker. */
export async function concatTars(sources: Array<() => Promise<Readable>>, out: Writable): Promise<void> {
  for (const open of sources) {
    // If `out` fails or is destroyed (disk full, Ctrl-C) the download is destroyed and this
    // rejects, instead of waiting forever for room in a stream nobody reads.
    await pipeline(await open(), stripTarTrailer(), forwardTo(out));
  }
  await writeChunk(out, Buffer.alloc(1024));
}

export function writeChunk(out: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    out.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}
