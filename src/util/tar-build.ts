import { PassThrough, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Header, Pax, type ReadEntry } from 'tar';
import { TarParser } from './tar-parser.js';
import { writeChunk } from './tar-stream.js';
import { forwardTo } from './backpressure.js';
import { CONTENT_TYPES } from './tar-safety.js';

export interface BuildEntry {
  path: string;
  size: number;
  uid: number;
  gid: number;
  mode: number;
  /** File content; omitted for directories and empty files. */
  open?: () => Promise<Readable>;
  type?: 'File' | 'Directory';
}

/**
 * Writes a tar with exactly the owners, modes and names given, streaming each file's content.
 * Used to put restored files into a container with the archive API.
 */
export async function writeTar(entries: BuildEntry[], out: Writable): Promise<void> {
  for (const e of entries) {
    const header = new Header({ path: e.path, size: e.type === 'Directory' ? 0 : e.size, uid: e.uid, gid: e.gid, mode: e.mode, mtime: new Date(), type: e.type ?? 'File' });
    header.encode();
    if (header.needPax) throw new Error(`path too long for the archive: ${e.path}`);
    await writeChunk(out, header.block!);
    if (e.type === 'Directory' || e.size === 0) continue;
    let written = 0;
    const source = await e.open!();
    await pipeline(
      source,
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          written += chunk.length;
          yield chunk;
        }
      },
      forwardTo(out),
    );
    if (written !== e.size) throw new Error(`${e.path}: expected ${e.size} bytes, got ${written}`);
    const pad = (512 - (e.size % 512)) % 512;
    if (pad) await writeChunk(out, Buffer.alloc(pad));
  }
  await writeChunk(out, Buffer.alloc(1024));
}

export interface FoundEntry {
  size: number;
  uid: number;
  gid: number;
  mode: number;
  stream: Readable;
  /** Stops reading the archive (when only the header was needed). */
  close(): void;
}

/**
 * Streams one named entry out of a tar stream; rejects if the archive has no such file. The
 * entry's stream ERRORS (it never hangs, and never ends short) when the source fails, the
 * archive is cut off inside the entry, or `signal` aborts; the source is destroyed then, and
 * also once the entry has been read (the rest of the archive is not needed).
 */
export function findTarEntry(source: Readable, name: string, signal?: AbortSignal): Promise<FoundEntry> {
  return new Promise((resolve, reject) => {
    let out: PassThrough | undefined;
    let complete = false;
    const parser = new TarParser();
    const fail = (err: Error) => {
      signal?.removeEventListener('abort', onAbort);
      if (!out) reject(err);
      else if (!complete) out.destroy(err);
      source.destroy();
    };
    const onAbort = () => fail(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'));
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    parser.on('entry', (e: ReadEntry) => {
      if (out || e.type !== 'File' || e.path.replace(/^\.\//, '') !== name) return void e.resume();
      const stream = (out = new PassThrough());
      // The failure may come before the caller attached to the stream; it keeps it as the
      // stream's `errored` state, which pipeline() and async iteration report when they attach.
      stream.on('error', () => undefined);
      // By hand rather than pipe(): the entry must not end normally when the archive broke.
      e.on('data', (chunk: Buffer) => {
        if (!stream.write(chunk)) e.pause();
      });
      stream.on('drain', () => e.resume());
      e.on('end', () => {
        if (stream.destroyed) return; // the parser reported a cut-off archive first
        complete = true;
        signal?.removeEventListener('abort', onAbort);
        stream.end();
        source.destroy();
      });
      stream.on('close', () => {
        if (!complete) source.destroy();
      }); // the reader gave up
      resolve({
        size: e.size ?? 0,
        uid: e.uid ?? 0,
        gid: e.gid ?? 0,
        mode: (e.mode ?? 0o644) & 0o7777,
        stream,
        close: () => {
          source.destroy();
          stream.destroy();
        },
      });
    });
    // strict: a truncated or damaged archive is an error, reported before the entry would end short
    parser.on('error', (err: Error) => fail(err));
    parser.on('end', () => {
      if (!out) fail(new Error(`the archive has no ${name}`));
    });
    source.on('data', (chunk: Buffer) => {
      if (!parser.write(chunk)) {
        source.pause();
        parser.once('drain', () => source.resume());
      }
    });
    let sourceEnded = false;
    source.on('end', () => {
      sourceEnded = true;
      parser.end();
    });
    source.on('error', fail);
    source.on('close', () => {
      if (!sourceEnded && !complete) fail(new Error('the archive stream closed before its end'));
    });
  });
}

/**
 * A tar of the entries `decide` keeps, each written with exactly the header it came with: mode
 * (node-tar's own packer adds execute bits to readable directories), owners and their names,
 * link target and times; long names through a PAX header. `decide` may also keep an entry under
 * another name (`{ path }`), or stop the whole archive with an error, which the returned
 * stream then reports. Each kept entry is exactly one entry for any reader: content only on
 * the types whose content follows the header for Go's archive/tar (Docker) as for node-tar (a
 * symlink with a size is an error), and exactly the bytes its header says (else an error).
 */
export function filterTar(source: Readable, decide: (entry: ReadEntry) => 'keep' | 'skip' | Error | { path: string }): Readable {
  const out = new PassThrough();
  const parser = new TarParser();
  const fail = (err: Error) => {
    out.destroy(err);
    source.destroy();
  };
  parser.on('entry', (e: ReadEntry) => {
    const verdict = decide(e);
    if (verdict === 'skip' || verdict instanceof Error) {
      e.resume();
      if (verdict instanceof Error) fail(verdict);
      return;
    }
    const size = e.size ?? 0;
    if (!CONTENT_TYPES.has(e.type) && size !== 0) {
      e.resume();
      return fail(new Error(`the archive entry '${e.path}' is a ${e.type} with ${size} bytes of content, which Docker would read as further entries`));
    }
    out.write(exactHeader(e, verdict === 'keep' ? e.path : verdict.path, size));
    let streamed = 0;
    e.on('end', () => {
      if (out.destroyed) return;
      if (streamed !== size) return fail(new Error(`the archive entry '${e.path}' gave ${streamed} bytes, its header says ${size}`));
      const pad = (512 - (size % 512)) % 512;
      if (pad) out.write(Buffer.alloc(pad));
    });
    // By hand rather than pipe(): every byte passed on is counted.
    e.on('data', (chunk: Buffer) => {
      streamed += chunk.length;
      if (!out.destroyed && !out.write(chunk)) {
        e.pause();
        out.once('drain', () => e.resume());
      }
    });
  });
  parser.on('end', () => {
    if (!out.destroyed) out.end(Buffer.alloc(1024));
  });
  parser.on('error', fail);
  source.on('error', fail);
  source.pipe(parser);
  return out;
}

function exactHeader(e: ReadEntry, path: string, size: number): Buffer {
  const fields = {
    path,
    linkpath: e.linkpath ?? '',
    type: e.type,
    mode: (e.mode ?? 0) & 0o7777,
    uid: e.uid,
    gid: e.gid,
    uname: e.uname,
    gname: e.gname,
    size,
    mtime: e.mtime,
  };
  return encodeHeader(fields);
}

/** A tar header block for these fields, after a PAX header when ustar cannot hold them. */
export function encodeHeader(fields: ConstructorParameters<typeof Header>[0] & { path: string }): Buffer {
  const header = new Header(fields);
  const needPax = header.encode();
  return needPax ? Buffer.concat([new Pax(fields).encode(), header.block!]) : header.block!;
}
