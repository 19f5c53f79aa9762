import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Header, Parser, type ReadEntry } from 'tar';
import { writeChunk } from './tar-stream.js';
import { forwardTo } from './backpressure.js';

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
    await pipeline(source, async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) {
        written += chunk.length;
        yield chunk;
      }
    }, forwardTo(out));
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

/** Streams one named entry out of a tar stream; rejects if the archive has no such file. */
export function findTarEntry(source: Readable, name: string): Promise<FoundEntry> {
  return new Promise((resolve, reject) => {
    let found = false;
    const parser = new Parser({ strict: true });
    parser.on('entry', (e: ReadEntry) => {
      if (!found && e.type === 'File' && e.path.replace(/^\.\//, '') === name) {
        found = true;
        resolve({ size: e.size ?? 0, uid: e.uid ?? 0, gid: e.gid ?? 0, mode: (e.mode ?? 0o644) & 0o7777, stream: Readable.from(e), close: () => source.destroy() });
      } else e.resume();
    });
    parser.on('error', (err: Error) => (found ? undefined : reject(err)));
    parser.on('end', () => { if (!found) reject(new Error(`the archive has no ${name}`)); });
    source.on('error', (err) => (found ? parser.abort(err) : reject(err)));
    source.pipe(parser);
  });
}
