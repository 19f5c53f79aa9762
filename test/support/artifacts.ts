import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

/** An artifact's raw content as text, decompressed by the command-line tool a user would use. */
export async function decompressToString(file: string): Promise<string> {
  const tool = file.endsWith('.zst') ? ['zstd', '-dc', file] : file.endsWith('.gz') ? ['gunzip', '-c', file] : ['cat', file];
  const r = await execa(tool[0]!, tool.slice(1), { encoding: 'buffer', maxBuffer: 1 << 30 });
  return Buffer.from(r.stdout).toString('utf8');
}

export const readJson = async <T>(file: string): Promise<T> => JSON.parse(await readFile(file, 'utf8')) as T;

/** What a backup directory holds besides stackvault's own bookkeeping (operations.log, state). */
export async function backupDirEntries(dir: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  return (await readdir(dir)).filter((n) => n !== 'operations.log' && !n.startsWith('.stackvault')).sort();
}
