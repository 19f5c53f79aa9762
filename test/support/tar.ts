import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import * as tar from 'tar';

/** A real tar (node-tar) of files with the given contents. */
export async function tarOf(files: Record<string, Buffer>): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'svu-'));
  for (const [name, data] of Object.entries(files)) await writeFile(join(dir, name), data);
  const chunks: Buffer[] = [];
  for await (const c of tar.create({ cwd: dir, portable: true }, Object.keys(files))) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Everything a stream gives, as one Buffer. */
export const collect = async (s: Readable) => {
  const out: Buffer[] = [];
  for await (const c of s) out.push(c as Buffer);
  return Buffer.concat(out);
};
