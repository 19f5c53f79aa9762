import { createHash } from 'node:crypto';
import { PassThrough, Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { parallelGzip } from '../util/parallel-gzip.js';
import { ageEncrypt } from '../util/age.js';
import { fsyncPath } from '../util/fsync.js';
import { sparseFileWriter } from '../util/sparse.js';

const ZSTD_LEVEL = 1;
/**
 * gzip -1, not gzip's default -6, for the same reason as zstd's level 1: on a 64 MB slice of the
 * benchmark's dump 0.98 s of CPU instead of 2.27 s, for 38.2 % of the bytes instead of 36.0 %;
 * the whole 1 GB stack: `create --compress gzip` 27.9-33.6 s instead of 34.5-39.9 s, 390 MB
 * instead of 372. Whoever picks gzip picks it for the tools that read it, not for its size:
 * zstd is smaller still.
 */
const GZIP_LEVEL = 1;
/**
 * An 8 KiB window instead of deflate's 32 KiB, for the same reason: on 64 MB of the dump 0.71-0.73 s
 * of CPU instead of 0.80-0.87 s for 43.0 % of the bytes instead of 42.7 % (the SQLite tar: 0.44
 * against 0.55 s, 38.8 against 37.4 %). Every inflater reads it: the window only bounds how far
 * back a match may point.
 */
const GZIP_WINDOW_BITS = 13;

/**
 * Node's zlib hands its output on in 16 KiB chunks by default, and every chunk costs a callback,
 * a hash update and a write: on the benchmark's 390 MB dump, decompressing took 1.05-1.22 s of
 * CPU in 16 KiB chunks and 0.87-0.91 s in 64 KiB ones. Every stage after it gets the bigger chunks too.
 */
const ZLIB_CHUNK_BYTES = 64 << 10;

export { type Compression, COMPRESSION_EXTENSION, DEFAULT_COMPRESSION } from './compression.js';
import type { Compression } from './compression.js';

/**
 * gzip uses every core: blocks compressed side by side (several members, as pigz writes).
 * zstd runs on one thread per artifact: Node 24's zstd with worker threads
 * (ZSTD_c_nbWorkers) fails on real dumps with "stream.push() after EOF", and Node's zstd
 * decoder reads only the first of several frames, so zstd cannot be cut into blocks either.
 */
export function compressor(kind: Compression): Transform {
  switch (kind) {
    case 'gzip':
      return parallelGzip({ level: GZIP_LEVEL, windowBits: GZIP_WINDOW_BITS });
    case 'zstd':
      // Level 1, not zstd's default 3: on a 390 MB dump 2.0 s of CPU instead of 3.4 s for 8 %
      // more bytes (161 vs 148 MB; gzip -6 gives 172 MB), and CPU is what a small server lacks.
      return zlib.createZstdCompress({ chunkSize: ZLIB_CHUNK_BYTES, params: { [zlib.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL } });
    case 'none':
      return new PassThrough();
  }
}

export function decompressor(kind: Compression): Transform {
  switch (kind) {
    case 'gzip':
      return zlib.createGunzip({ chunkSize: ZLIB_CHUNK_BYTES });
    case 'zstd':
      return zlib.createZstdDecompress({ chunkSize: ZLIB_CHUNK_BYTES });
    case 'none':
      return new PassThrough();
  }
}

/**
 * Counts bytes flowing through, and reports them (throttled by the caller) as progress. With
 * `gate`, each chunk first waits for what it returns (backpressure holds the producer meanwhile).
 */
export class ByteCounter extends Transform {
  bytes = 0;
  constructor(
    private readonly onBytes?: (total: number) => void,
    private readonly gate?: () => Promise<void> | undefined,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null, d?: Buffer) => void): void {
    const pass = () => {
      this.bytes += chunk.length;
      this.onBytes?.(this.bytes);
      cb(null, chunk);
    };
    const waiting = this.gate?.();
    if (waiting) waiting.then(pass, cb);
    else pass();
  }
}

/** Hashes what flows through with SHA-256 and counts it, in one pass. */
export class Sha256Tap extends Transform {
  private readonly hash = createHash('sha256');
  digest = '';
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null, d?: Buffer) => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
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
  options: { onRawBytes?: (total: number) => void; inspectRaw?: Writable; signal?: AbortSignal; encryptTo?: string[]; gate?: () => Promise<void> | undefined } = {},
): Promise<WrittenArtifact> {
  const raw = new PassThrough({ highWaterMark: 1 << 20 });
  const counter = new ByteCounter(options.onRawBytes, options.gate);
  const hasher = new Sha256Tap();
  // pipeline, not pipe(): a failure on either side reaches the other (a bad tar stops the write).
  const inspected = options.inspectRaw ? pipeline(counter, options.inspectRaw) : Promise.resolve();
  // Encryption comes after compression (ciphertext does not compress); the hash covers the
  // bytes on disk, so a checksum check needs no key.
  const encrypt = options.encryptTo?.length ? [ageEncrypt(options.encryptTo)] : [];
  // Written sparse (a new file, 0600): uncompressed (`--compress none`), the zeros of a sparse file's holes take no room.
  const written = pipeline([raw, counter, compressor(compression), ...encrypt, hasher, sparseFileWriter(file)], { signal: options.signal });
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
  return { rawBytes: counter.bytes, bytes: hasher.bytes, sha256: hasher.digest };
}

/** SHA-256 and size of what a stream holds (a file on disk, opened by the caller). */
export async function hashStream(source: Readable): Promise<{ sha256: string; bytes: number }> {
  const hasher = new Sha256Tap();
  await pipeline(source, hasher, new PassThrough().resume());
  return { sha256: hasher.digest, bytes: hasher.bytes };
}
