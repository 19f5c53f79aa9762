import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { Header } from 'tar';
import type { Manifest } from '../../src/core/manifest.js';

/**
 * Rewrites one artifact's content and updates the manifest so checksums still match: a
 * backup that passes the checksum check but is bad inside (to prove the other checks).
 */
export async function rewriteArtifact(backupPath: string, service: string, edit: (text: string) => string): Promise<void> {
  const entry = (await readManifest(backupPath)).services.find((s) => s.name === service)!;
  const text = edit((await rawArtifact(backupPath, entry.artifact!)).toString('utf8'));
  await replaceArtifact(backupPath, service, Buffer.from(text));
}

/** An artifact's raw (decompressed) bytes; its codec is told by its name, as stackvault names it. */
export async function rawArtifact(backupPath: string, artifact: string): Promise<Buffer> {
  const data = await readFile(join(backupPath, artifact));
  if (artifact.endsWith('.gz')) return gunzipSync(data);
  if (artifact.endsWith('.zst')) return zstdDecompressSync(data);
  return data;
}

/** Replaces an artifact's raw content (compressed with the artifact's own codec) and fixes its manifest entry. */
export async function replaceArtifact(backupPath: string, service: string, raw: Buffer): Promise<void> {
  const manifest = await readManifest(backupPath);
  const entry = manifest.services.find((s) => s.name === service)!;
  const data = entry.artifact!.endsWith('.gz') ? gzipSync(raw) : entry.artifact!.endsWith('.zst') ? zstdCompressSync(raw) : raw;
  await writeFile(join(backupPath, entry.artifact!), data);
  entry.bytes = data.length;
  entry.rawBytes = raw.length;
  entry.sha256 = createHash('sha256').update(data).digest('hex');
  await writeFile(join(backupPath, 'manifest.json'), JSON.stringify(manifest, null, 2));
}

const readManifest = async (backupPath: string) => JSON.parse(await readFile(join(backupPath, 'manifest.json'), 'utf8')) as Manifest;

/** A tar with hand-written headers, for archives no honest tool would write. */
export function handMadeTar(entries: Array<{ path: string; type?: string; linkpath?: string; data?: string | Buffer }>): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '');
    const h = new Header({
      path: e.path,
      type: (e.type ?? 'File') as 'File',
      linkpath: e.linkpath,
      size: e.type && e.type !== 'File' ? 0 : data.length,
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime: new Date(0),
    });
    h.encode();
    blocks.push(h.block!);
    if (data.length && (!e.type || e.type === 'File')) blocks.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** Flips one byte in the middle of a file. */
export async function flipByte(file: string): Promise<void> {
  const data = await readFile(file);
  const i = Math.floor(data.length / 2);
  data[i] = data[i]! ^ 0xff;
  await writeFile(file, data);
}
