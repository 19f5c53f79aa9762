import { posix } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { ReadEntry } from 'tar';
import { TarParser } from '../util/tar-parser.js';
import { type ContainerDetails, type DockerEngine, foreignText } from '../docker/engine.js';
import { helperOwnerLabels } from '../docker/helper-owner.js';
import { formatBytes } from '../util/format.js';
import { allZero, HoleFinder, MIN_HOLE, RegionBudget, type SparseMap, sparseEntryStart } from '../util/sparse.js';
import { encodeHeader } from '../util/tar-build.js';
import { normalEntryPath } from '../util/tar-safety.js';
import { mountOf } from './container-files.js';

/**
 * Restoring files with holes (sparse files) as sparse files. Docker's archive API writes every
 * zero byte of a hole (its extraction has no sparse writes), so a 20 GiB sparse disk image with
 * 1 GiB of data took 20 GiB and the time to write it. Such files are left out of the archive
 * put through the API and written by GNU tar in a helper container of the store's own image that
 * mounts its volumes (as the helper that empties them before a restore), from a tar that holds
 * them as sparse entries (GNU's PAX format 1.0: a map and the data only): GNU tar seeks over the
 * holes. The files are then read back through the archive API and compared with the backup like
 * every other file. Where that cannot be done (not on a volume or bind, no GNU tar in the image)
 * they are written whole, as before, and the output says so.
 */

/** Below this many bytes of holes in all, writing the zeros costs less than a helper container. */
export const SPARSE_WORTH = 8 * 1024 * 1024;

interface FileFacts {
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
}

/** The files of an archive that have holes, found while it is read (the restore's check reads it whole). */
export interface SparseFiles {
  files: Map<string, FileFacts & { map: SparseMap }>;
  /** Directories as archived, by normal path: the parents of these files get their metadata back after them. */
  dirs: Map<string, FileFacts>;
}

/**
 * Watches a tar's entries as they stream by (call `entry` from the reader's entry handler) and
 * finds the regular files with holes. A file named twice, or named by a hard link, is left as it
 * is: it must be written where the links and the last entry expect it, which only the archive
 * API's own extraction of the whole archive does.
 */
export class HoleScan {
  private readonly found = new Map<string, FileFacts & { map: SparseMap }>();
  private readonly dirs = new Map<string, FileFacts>();
  private readonly seen = new Set<string>();
  private readonly excluded = new Set<string>();
  private readonly budget = new RegionBudget();

  entry(e: ReadEntry): void {
    const path = normalEntryPath(e.path, e.type);
    if (path === undefined) return;
    if (this.seen.has(path)) this.excluded.add(path);
    this.seen.add(path);
    const facts = { mode: (e.mode ?? 0) & 0o7777, uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: e.mtime ?? new Date(0) };
    if (e.type === 'Link' && e.linkpath) this.excluded.add(e.linkpath);
    if (e.type === 'Directory') this.dirs.set(path, facts);
    // A name node-tar could not read as UTF-8 cannot be given to GNU tar as the same bytes.
    if ((e.type !== 'File' && e.type !== 'OldFile') || (e.size ?? 0) < MIN_HOLE || path.includes('\uFFFD')) return;
    const finder = new HoleFinder(e.size ?? 0, this.budget);
    e.on('data', (c: Buffer) => finder.update(c));
    e.on('end', () => {
      const map = finder.end();
      if (map) this.found.set(path, { ...facts, map });
    });
  }

  result(): SparseFiles {
    const files = new Map([...this.found].filter(([p]) => !this.excluded.has(p)));
    return { files, dirs: this.dirs };
  }
}

/** A helper that writes sparse files into a stopped container's volumes, and the files it will write. */
export interface SparseWriter {
  /** The archive paths (normal) left out of the archive put through the API. */
  readonly paths: ReadonlySet<string>;
  /** Writes them from the archive (read again from the start); rejects when GNU tar fails. */
  write(archive: Readable, signal: AbortSignal): Promise<void>;
  remove(): Promise<void>;
}

/**
 * A writer for the files of `sparse` that lie on a volume or bind mount of `container` (a
 * helper reaches nothing else), or undefined when there are not enough holes to be worth it, or
 * the image has no GNU tar (said through `log`). `tops` maps each archive top name to its path
 * in the container.
 */
export async function sparseWriter(
  engine: DockerEngine,
  container: ContainerDetails,
  sparse: SparseFiles,
  tops: ReadonlyMap<string, string>,
  log: (message: string) => void,
): Promise<SparseWriter | undefined> {
  const inContainer = (path: string) => {
    const top = tops.get(path.split('/')[0]!);
    return top === undefined ? undefined : posix.join(posix.dirname(top), path);
  };
  const all = [...sparse.files];
  const holes = (files: typeof all) => files.reduce((n, [, f]) => n + f.map.holeBytes, 0);
  if (holes(all) < SPARSE_WORTH) return undefined;
  const dense = (files: typeof all, why: string) => log(`${files.length} file(s) with ${formatBytes(holes(files))} of holes restored without them, every zero written: ${why}`);
  // Only volumes and binds: a helper's --volumes-from carries no tmpfs, and the container's own layer is its alone.
  const reachable = all.filter(([p]) => {
    const where = inContainer(p);
    const m = where === undefined ? undefined : mountOf(container, where);
    return m?.type === 'volume' || m?.type === 'bind';
  });
  if (reachable.length < all.length)
    dense(
      all.filter((f) => !reachable.includes(f)),
      'not on a volume or bind mount',
    );
  if (holes(reachable) < SPARSE_WORTH) return undefined;

  let id: string;
  try {
    id = await engine.runDetached({
      image: container.imageId,
      // It waits until removed; a run killed meanwhile leaves it, and the next run removes it
      // (helperOwnerLabels). Removed keeping volumes: they are the store's.
      entrypoint: ['sh'],
      cmd: ['-c', 'trap "exit 0" TERM; sleep 21600 & wait'],
      user: '0:0',
      volumesFrom: [container.id],
      noNetwork: true,
      noHealthcheck: true,
      labels: helperOwnerLabels(container.id),
    });
  } catch (err) {
    dense(reachable, `no helper container of its image (${err instanceof Error ? err.message : String(err)})`);
    return undefined;
  }
  const remove = () => engine.remove(id, { keepVolumes: true }).catch(() => undefined);
  const version = await engine.exec(id, ['tar', '--version']).catch(() => undefined);
  if (version?.exitCode !== 0 || !/^tar \(GNU tar\)/.test(version.stdout)) {
    await remove();
    dense(reachable, 'its image has no GNU tar, which writes holes');
    return undefined;
  }
  const files = new Map(reachable);
  return {
    paths: new Set(files.keys()),
    async write(archive, signal) {
      const tar = sparseTar(archive, { files, dirs: sparse.dirs }, (p) => inContainer(p)!.slice(1));
      // Owners and modes as archived (numeric: the image's names may map to other ids), into
      // the paths the archive API made; no file of the tar lies anywhere else.
      const r = await engine.exec(id, ['tar', '-x', '-f', '-', '-C', '/', '--numeric-owner', '--same-owner', '--same-permissions'], { stdin: tar, signal });
      if (r.exitCode !== 0)
        throw new Error(`GNU tar in a helper of ${container.name} failed writing the files with holes: ${foreignText(engine, r.stderr.trim().split('\n').pop() ?? `exit ${r.exitCode}`)}`);
    },
    remove,
  };
}

/**
 * A tar of the files of `sparse` read from `archive`, as sparse entries named `nameOf(path)`,
 * followed by their parent directories as archived (their metadata is set after the files were
 * created in them). The bytes of each hole are checked to be zeros on the way: the archive must
 * be the one whose holes were found, else the tar fails.
 */
export function sparseTar(archive: Readable, sparse: SparseFiles, nameOf: (path: string) => string): Readable {
  const { files, dirs } = sparse;
  const out = new PassThrough();
  const parser = new TarParser();
  const written = new Set<string>();
  const fail = (err: Error) => {
    out.destroy(err);
    archive.destroy();
  };
  parser.on('entry', (e: ReadEntry) => {
    const path = normalEntryPath(e.path, e.type);
    const file = path === undefined ? undefined : files.get(path);
    if (!file || e.type !== 'File' || (e.size ?? 0) !== file.map.size) return void e.resume();
    written.add(path!);
    const { head, dataBytes } = sparseEntryStart({ name: nameOf(path!), ...file }, file.map);
    out.write(head);
    const regions = file.map.regions;
    let pos = 0;
    let r = 0;
    let sent = 0;
    e.on('data', (chunk: Buffer) => {
      let at = 0;
      while (at < chunk.length) {
        const start = r < regions.length ? regions[r]! : file.map.size;
        const end = r < regions.length ? start + regions[r + 1]! : file.map.size;
        if (pos >= end && r < regions.length) {
          r += 2;
          continue;
        }
        const take = Math.min(chunk.length - at, (pos < start ? start : end) - pos);
        if (take <= 0) return fail(new Error(`${path} holds more bytes than its size`));
        if (pos < start) {
          if (!allZero(chunk, at, at + take)) return fail(new Error(`${path} changed since the restore's check read it: a hole holds data`));
        } else {
          sent += take;
          if (!out.write(chunk.subarray(at, at + take))) {
            e.pause();
            out.once('drain', () => e.resume());
          }
        }
        at += take;
        pos += take;
      }
    });
    e.on('end', () => {
      if (out.destroyed) return;
      if (sent !== dataBytes) return fail(new Error(`${path} gave ${sent} bytes of data, its map says ${dataBytes}`));
      const pad = (512 - ((head.length + sent) % 512)) % 512;
      if (pad) out.write(Buffer.alloc(pad));
    });
  });
  parser.on('end', () => {
    if (out.destroyed) return;
    const missing = [...files.keys()].find((p) => !written.has(p));
    if (missing) return fail(new Error(`${missing} is not in the archive any more`));
    const parents = [...new Set([...written].map((p) => posix.dirname(p)))].filter((d) => dirs.has(d)).sort((a, b) => b.length - a.length);
    for (const d of parents) out.write(encodeHeader({ path: `${nameOf(d)}/`, type: 'Directory', size: 0, ...dirs.get(d)! }));
    out.end(Buffer.alloc(1024));
  });
  parser.on('error', fail);
  archive.on('error', fail);
  archive.pipe(parser);
  return out;
}
