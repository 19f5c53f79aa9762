import { createReadStream } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { execa } from 'execa';

export const tempDir = (prefix: string) => mkdtemp(join(tmpdir(), `svt-${prefix}-`));

/**
 * Extracts an artifact with GNU tar, as a user restoring by hand would (and not with the
 * node-tar code stackvault uses, which also makes directories owner-listable): owners and
 * modes exactly as archived.
 */
export async function extractArtifact(file: string): Promise<string> {
  const dir = await tempDir('extract');
  const codec = file.endsWith('.zst') ? ['--zstd'] : file.endsWith('.gz') ? ['--gzip'] : [];
  await execa('tar', ['-x', ...codec, '--same-owner', '--same-permissions', '-f', file, '-C', dir]);
  return dir;
}

export async function gunzipToString(file: string): Promise<string> {
  const chunks: Buffer[] = [];
  await pipeline(createReadStream(file), createGunzip(), async (source: AsyncIterable<Buffer>) => {
    for await (const c of source) chunks.push(c);
  });
  return Buffer.concat(chunks).toString('utf8');
}

export const readJson = async <T>(file: string): Promise<T> => JSON.parse(await readFile(file, 'utf8')) as T;

/** What a backup directory holds besides stackvault's own bookkeeping (operations.log, state). */
export async function backupDirEntries(dir: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  return (await readdir(dir)).filter((n) => n !== 'operations.log' && !n.startsWith('.stackvault')).sort();
}
