import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';

/** The same listing as `snapshotFiles` in a container, computed on the host. */
export async function snapshotHostFiles(root: string): Promise<string> {
  const files: string[] = [];
  const dirs: string[] = [];
  const walk = async (dir: string) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        dirs.push(p);
        await walk(p);
      } else if (e.isFile()) files.push(p);
    }
  };
  await walk(root);
  const rel = (p: string) => `./${relative(root, p)}`;
  const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(rel(a)), Buffer.from(rel(b)));
  files.sort(byteOrder);
  dirs.sort(byteOrder);
  const statLines: string[] = [];
  const hashLines: string[] = [];
  for (const f of files) {
    const s = await stat(f);
    statLines.push(`${rel(f)} ${s.uid}:${s.gid} ${(s.mode & 0o7777).toString(8)}`);
    hashLines.push(
      `${createHash('sha256')
        .update(await readFile(f))
        .digest('hex')}  ${rel(f)}`,
    );
  }
  const dirLines: string[] = [];
  for (const d of dirs) {
    const s = await stat(d);
    dirLines.push(`dir ${rel(d)} ${s.uid}:${s.gid} ${(s.mode & 0o7777).toString(8)}`);
  }
  return [...statLines, ...hashLines, ...dirLines].join('\n');
}
