import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Manifest } from '../../src/core/manifest.js';

/**
 * Rewrites one artifact's content and updates the manifest so checksums still match: a
 * backup that passes verify but fails during restore (to prove rollback).
 */
export async function rewriteArtifact(backupPath: string, service: string, edit: (text: string) => string): Promise<void> {
  const manifestPath = join(backupPath, 'manifest.json');
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
  const entry = manifest.services.find((s) => s.name === service)!;
  const file = join(backupPath, entry.artifact!);
  const text = edit(gunzipSync(await readFile(file)).toString('utf8'));
  const data = gzipSync(Buffer.from(text));
  await writeFile(file, data);
  entry.bytes = data.length;
  entry.rawBytes = Buffer.byteLength(text);
  entry.sha256 = createHash('sha256').update(data).digest('hex');
  await writeFile(manifestPath, JSON.stringify(manifest, null, 2));
}

/** Flips one byte in the middle of a file. */
export async function flipByte(file: string): Promise<void> {
  const data = await readFile(file);
  const i = Math.floor(data.length / 2);
  data[i] = data[i]! ^ 0xff;
  await writeFile(file, data);
}
