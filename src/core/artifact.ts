import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { PassThrough, Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { ageEncrypt } from '../util/age.js';
import { fsyncPath } from '../util/fsync.js';

export type Compression = 'gzip' | 'zstd' | 'none';

export const COMPRESSION_EXTENSION: Record<Compression, string> = { gzip: '.gz', zstd: '.zst', none: '' };

export function compressor(kind: Compression): Transform {
  switch (kind) {
    case 'gzip':
      return zlib.createGzip({ level: 6 });
    case 'zstd':
      return zlib.createZstdCompress({ params: { [zlib.constants.ZSTD_c_compressionLevel]: 3 } });
    case 'none':
      return new PassThrough();
  }
}

export function decompressor(kind: Compression): Transform {
  switch (kind) {
    case 'gzip':
      return zlib.createGunzip();
    case 'zstd':
      return zlib.createZstdDecompress();
    case 'none':
      return new PassThrough();
  }
}

/** Counts bytes flowing through, and reports them (throttled by the caller) as progress. */
export class ByteCounter extends Transform {
  bytes = 0;
  constructor(private readonly onBytes?: (total: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null, d?: Buffer) => void): void {
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    cb(null, chunk);
  }
}

/** Hashes what flows through with SHA-256. */
export class Sha256Tap extends Transform {
  private readonly hash = createHash('sha256');
  digest = '';
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null, d?: Buffer) => void): void {
    this.hash.update(chunk);
    cb(null, chunk);
  }
  override _flush(cb: (e?: Error | null) => void): void {
    this.digest = this.hash.digest('hex');
    cb();
  }
}

export interface WrittenArtifact {
  rawBytes: number;
  bytes: number;
  sha256: string;
}

/**
 * The one write path for artifacts: raw bytes -> count -> compress -> hash -> file (0600),
 * fsynced before it counts as written. `produce` writes into the stream it is given and
 * resolves when it has written everything; it must not end the stream itself.
 * `inspectRaw` sees the raw bytes too (e.g. to check a tar is complete) without a second read.
 */
export async function writeArtifact(
  file: string,
  compression: Compression,
  produce: (raw: Writable) => Promise<void>,
  options: { onRawBytes?: (total: number) => void; inspectRaw?: Writable; signal?: AbortSignal; encryptTo?: string[] } = {},
): Promise<WrittenArtifact> {
  const raw = new PassThrough({ highWaterMark: 1 << 20 });
  const counter = new ByteCounter(options.onRawBytes);
  const hasher = new Sha256Tap();
  const diskCounter = new ByteCounter();
  // pipeline, not pipe(): a failure on either side reaches the other (a bad tar stops the write).
  const inspected = options.inspectRaw ? pipeline(counter, options.inspectRaw) : Promise.resolve();
  // Encryption comes after compression (ciphertext does not compress); the hash covers the
  // bytes on disk, so a checksum check needs no key.
  const encrypt = options.encryptTo?.length ? [ageEncrypt(options.encryptTo)] : [];
  const written = pipeline([raw, counter, compressor(compression), ...encrypt, hasher, diskCounter, createWriteStream(file, { mode: 0o600, flags: 'wx' })], { signal: options.signal });
  // Both are awaited below. Note a write failure as it happens (disk full while `produce` is
  // still running); handling it here also keeps it from ending the process as unhandled.
  let writeFailure: unknown;
  written.catch((err: unknown) => {
    writeFailure = err;
  });
  inspected.catch(() => undefined);
  try {
    await produce(raw);
    raw.end();
    await Promise.all([written, inspected]);
  } catch (err) {
    // When the write side failed first, that is the cause; the producer only saw its output
    // close. (Destroying `raw` below fails the pipeline too, so decide before that.)
    const cause = writeFailure ?? err;
    raw.destroy();
    await written.catch(() => undefined);
    throw cause;
  }
  await fsyncPath(file);
  return { rawBytes: counter.bytes, bytes: diskCounter.bytes, sha256: hasher.digest };
}

/** SHA-256 and size of a file on disk, streaming. */
export async function hashFile(file: string, source: (file: string) => Readable): Promise<{ sha256: string; bytes: number }> {
  const hasher = new Sha256Tap();
  const counter = new ByteCounter();
  await pipeline(source(file), hasher, counter, new PassThrough().resume());
  return { sha256: hasher.digest, bytes: counter.bytes };
}
