import { createReadStream, createWriteStream } from 'node:fs';
import { join, posix } from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ContainerDetails, DockerEngine } from '../docker/engine.js';
import { forwardTo, teeTo, finished } from '../util/backpressure.js';
import { encodeHeader, filterTar } from '../util/tar-build.js';
import { stripTarTrailer, TarChecker, writeChunk } from '../util/tar-stream.js';
import { mountOf } from './container-files.js';

/**
 * Pre-copy: a store's files are copied while it runs; then it is stopped (or paused) only
 * long enough to list its files and copy those that changed, and the artifact is assembled
 * after it runs again. The result equals a copy taken while it was stopped.
 *
 * "Unchanged" is decided by the file's ctime, which the kernel sets on every change of
 * content, size, name, links or owner and which no tool can set back (unlike mtime): a
 * regular file whose ctime lies before the pre-copy began (less a margin for clock
 * granularity) and whose size matches the pre-copied entry has the bytes that were copied.
 * Everything else (new and changed files, links, directories) is taken while the store is
 * down; directories come from the listing, so their owners and modes are the final ones.
 *
 * The listing runs in a helper container of the store's own image that mounts its volumes
 * read-only (a stopped or paused container cannot exec). When that is not possible (paths not
 * on a volume, no GNU find, hard links, devices, too many changes), the caller copies the
 * usual way, everything while stopped.
 */
export interface PreCopy {
  /** Run while the store is stopped: list its files and copy what changed; returns how many. */
  catchUp(): Promise<number>;
  /** Run after it runs again: the whole archive, as one stopped copy would have given it. */
  emit(out: Writable): Promise<void>;
  dispose(): Promise<void>;
}

/** A file of the listing: find's type letter, size, ctime (s), links, mode, owner, mtime, path. */
interface Listed {
  type: string;
  size: number;
  ctime: number;
  links: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
}

/** More changed files than this, and one more full copy while stopped is quicker than fetching each. */
const MAX_FETCHES = 500;
/** Seconds before the pre-copy's start below which a file's ctime proves it unchanged since. */
const CTIME_MARGIN_S = 2;
const FIELDS = '%y\\t%s\\t%C@\\t%n\\t%m\\t%U\\t%G\\t%T@\\t%p\\0';

/** Why a pre-copy is not possible; `quiet` when the user was already told (a path not on a volume). */
export class NoPreCopy extends Error {
  constructor(
    message: string,
    readonly quiet = false,
  ) {
    super(message);
  }
}

export async function startPreCopy(engine: DockerEngine, container: ContainerDetails, paths: string[], scratchDir: string): Promise<PreCopy> {
  const unmounted = paths.filter((p) => !mountOf(container, p));
  if (unmounted.length) throw new NoPreCopy(`${unmounted.join(', ')} is not on a volume`, true);
  const helper = await engine
    .runDetached({
      image: container.imageId,
      entrypoint: ['sleep'],
      cmd: ['3600'], // a leftover (stackvault killed) ends itself, and is removed (autoRemove)
      user: '0:0',
      volumesFrom: [`${container.id}:ro`],
      noNetwork: true,
      autoRemove: true,
      labels: { 'stackvault.helper': 'true' },
    })
    .catch((err: unknown) => {
      throw new NoPreCopy(`no helper container of its image (${err instanceof Error ? err.message : String(err)})`);
    });
  const dispose = () => engine.remove(helper).catch(() => undefined);
  try {
    const clock = await engine.exec(helper, ['date', '+%s.%N']);
    const startedAt = Number(clock.stdout.trim());
    if (clock.exitCode !== 0 || !Number.isFinite(startedAt)) throw new NoPreCopy('the helper cannot tell the time');
    // Staged raw, per path: Docker's archive of it while the store runs, and its entries' sizes.
    const staged: Array<{ path: string; file: string; sizes: Map<string, { type: string; size: number }> }> = [];
    for (const [i, p] of paths.entries()) {
      const file = join(scratchDir, `pre-copy-${i}.tar`);
      const sizes = new Map<string, { type: string; size: number }>();
      const index = new TarChecker((e) => sizes.set(e.path.replace(/\/$/, ''), { type: e.type, size: e.size ?? 0 }));
      const sink = createWriteStream(file, { flags: 'wx', mode: 0o600 });
      const tee = teeTo(sink, index);
      await pipeline(await engine.getArchive(container.id, p), stripTarTrailer(), forwardTo(tee));
      await finished(tee);
      await finished(sink);
      staged.push({ path: p, file, sizes });
    }
    let listing: Map<string, Listed> | undefined;
    const changedFile = join(scratchDir, 'pre-copy-changed.tar');
    const kept = new Set<string>();

    return {
      async catchUp() {
        listing = await list(engine, helper, paths);
        const fetches: string[] = [];
        for (const [path, f] of listing) {
          if ('pbc'.includes(f.type)) throw new NoPreCopy(`${path} is a device or FIFO`);
          if (f.type === 'f' && f.links > 1) throw new NoPreCopy(`${path} has hard links`);
          if (f.type === 'd' || f.type === 's') continue; // directories from the listing; sockets are not archived
          const name = entryName(paths, path);
          const before = staged.find((s) => s.path === rootOf(paths, path))?.sizes.get(name);
          if (f.type === 'f' && before?.type === 'File' && before.size === f.size && f.ctime < startedAt - CTIME_MARGIN_S) kept.add(name);
          else fetches.push(path);
        }
        if (fetches.length > MAX_FETCHES) throw new NoPreCopy(`${fetches.length} files changed`);
        const out = createWriteStream(changedFile, { flags: 'wx', mode: 0o600 });
        for (const path of fetches) {
          // Docker names the entry by its base name: it is renamed to its place in the archive.
          const name = entryName(paths, path);
          const one = filterTar(await engine.getArchive(container.id, path), () => ({ path: name }));
          await pipeline(one, stripTarTrailer(), forwardTo(out));
        }
        await finished(out);
        return fetches.length;
      },

      async emit(out: Writable) {
        if (!listing) throw new Error('the pre-copy was not caught up');
        const done = listing;
        for (const s of staged) {
          for (const [path, f] of [...done].filter(([p, f]) => f.type === 'd' && rootOf(paths, p) === s.path).sort(([a], [b]) => (a < b ? -1 : 1))) {
            await writeChunk(out, encodeHeader({ path: `${entryName(paths, path)}/`, type: 'Directory', mode: f.mode, uid: f.uid, gid: f.gid, size: 0, mtime: new Date(f.mtime * 1000) }));
          }
          const unchanged = filterTar(createReadStream(s.file), (e) => (e.type === 'File' && kept.has(e.path.replace(/\/$/, '')) ? 'keep' : 'skip'));
          await pipeline(unchanged, stripTarTrailer(), forwardTo(out));
        }
        await pipeline(createReadStream(changedFile), forwardTo(out));
        await writeChunk(out, Buffer.alloc(1024));
      },

      dispose,
    };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/** The listing of every path, by find in the helper: path -> facts. */
async function list(engine: DockerEngine, helper: string, paths: string[]): Promise<Map<string, Listed>> {
  const r = await engine.exec(helper, ['find', ...paths, '-printf', FIELDS]);
  if (r.exitCode !== 0) throw new NoPreCopy(`find in the helper failed: ${r.stderr.trim().split('\n').pop() ?? ''}`);
  const out = new Map<string, Listed>();
  for (const record of r.stdout.split('\0')) {
    if (!record) continue;
    const f = record.split('\t');
    if (f.length < 9) throw new NoPreCopy("the helper's find does not support -printf");
    const path = f.slice(8).join('\t');
    // A name that is not UTF-8 cannot be asked for by name through the archive API.
    if (path.includes('\uFFFD')) throw new NoPreCopy('a file name is not UTF-8');
    out.set(path, { type: f[0]!, size: Number(f[1]), ctime: Number(f[2]), links: Number(f[3]), mode: Number.parseInt(f[4]!, 8), uid: Number(f[5]), gid: Number(f[6]), mtime: Number(f[7]) });
  }
  if (paths.some((p) => out.get(p)?.type !== 'd')) throw new NoPreCopy('a path is not a directory');
  return out;
}

/** The archived path a container path lies under. */
const rootOf = (paths: string[], path: string) => paths.filter((p) => path === p || path.startsWith(`${p}/`)).sort((a, b) => b.length - a.length)[0]!;

/** A container path's name in the archive, as Docker names it: from the archived path's base name. */
function entryName(paths: string[], path: string): string {
  const root = rootOf(paths, path);
  return posix.join(posix.basename(root), posix.relative(root, path));
}
