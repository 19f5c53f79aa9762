import { posix } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadEntry } from 'tar';
import { isNotFound, type ContainerDetails, type DockerEngine } from '../docker/engine.js';
import { booleanLabel } from '../docker/labels.js';
import { finished, teeTo } from '../util/backpressure.js';
import { concatTars } from '../util/tar-stream.js';
import { filterTar, findTarEntry } from '../util/tar-build.js';
import { NoPreCopy, type PreCopy, startPreCopy } from './pre-copy.js';
import { mountOf, type PathKind, pathKindOf, putFiles, removeFromVolumes } from './container-files.js';
import { CONTENT_TYPES, normalEntryPath, unsafeEntry } from '../util/tar-safety.js';
import { ContentMismatchError, type Fingerprint, firstDifference } from './fingerprint.js';
import { fingerprintTar, TarFingerprinter } from './tar-fingerprint.js';
import type { BackupContext, BackupOutcome, BackupPlan, RestoreCheckContext, RestoreContext, Snapshot } from './types.js';
import type { ServiceEntry } from '../core/manifest.js';
import { array, boolean, count, type Infer, object, optional, vetted } from '../util/schema.js';
import { recorded } from './details.js';
import { HoleScan, type SparseFiles, sparseWriter } from './sparse-restore.js';
import { backupThrough } from './snapshot.js';

/** What an archive of data paths records: the paths (a restore writes only under them), and how it was copied. */
export const VOLUME_SHAPE = {
  // Checked here too, not only before a restore writes: drills and deep verify mount them.
  paths: array(vetted('a data path', (p) => unsafeRecordedPath(p))),
  stopped: optional(boolean),
  preCopy: optional(object({ copiedWhileDown: count })),
};
export const VOLUME_DETAILS = object(VOLUME_SHAPE);
export type VolumeDetails = Infer<typeof VOLUME_DETAILS>;

/** Label naming the paths to archive, overriding what a driver would pick. */
export const PATHS_LABEL = 'stackvault.paths';
/** Label that lets a normally stopped store be copied while it runs. */
export const STOP_LABEL = 'stackvault.stop';

/** Never a data path, whatever is mounted there: the whole file system and the kernel's. */
const NEVER_DIRS = ['/', '/dev', '/proc', '/sys'];
/**
 * The image's programs and configuration. A path under one is data only where a volume or bind
 * is mounted at or above it (Paperless-ngx keeps its documents in volumes at
 * /usr/src/paperless/*, Elasticsearch at /usr/share/elasticsearch/data): writing there writes
 * into that mount, never into the image. Off every mount, a crafted manifest must not turn a
 * restore into a way to replace a container's programs or configuration.
 */
const SYSTEM_DIRS = ['/bin', '/boot', '/etc', '/lib', '/lib32', '/lib64', '/libx32', '/root', '/run', '/sbin', '/usr', '/var/lib/dpkg', '/var/lib/apt'];
const under = (path: string, dirs: readonly string[]) => dirs.find((d) => path === d || (d !== '/' && path.startsWith(`${d}/`)));

/**
 * Why a path may not be recorded as a data path in any container, or undefined: what a
 * manifest may hold and an archive's check can tell without a container. Pure.
 */
export function unsafeRecordedPath(path: string): string | undefined {
  if (typeof path !== 'string' || !path.startsWith('/')) return 'not an absolute path';
  const hit = under(path, NEVER_DIRS);
  if (hit) return `inside the system directory ${hit}`;
  if (path.split('/').includes('..') || posix.normalize(path) !== path || path.endsWith('/')) return 'not a normalised path';
  return undefined;
}

/**
 * Why a path may not be backed up from or restored into this container now, or undefined.
 * Without a container (a throwaway's volumes, which nothing has mounted yet), a path in a
 * system directory is refused whatever it is.
 */
export function unsafeDataPath(path: string, container?: ContainerDetails): string | undefined {
  const why = unsafeRecordedPath(path);
  if (why) return why;
  const hit = under(path, SYSTEM_DIRS);
  if (hit && !container) return `inside the system directory ${hit}`;
  if (hit && container && !mountOf(container, path)) return `inside the system directory ${hit} and on no volume or bind mount`;
  return undefined;
}

/**
 * What a throwaway of the app's image runs: its shell, tools and libraries, and their settings.
 * A throwaway mounts a fresh volume at every recorded path and restores the archive into it, so a
 * path at, above or under one of these would let a backup's files replace what the throwaway
 * runs (and what stackvault reads back from it). Paths beside them (Paperless-ngx's
 * /usr/src/paperless, Elasticsearch's /usr/share/elasticsearch/data, /root/.ollama) are not.
 */
const PROGRAM_DIRS = [
  '/bin',
  '/sbin',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/etc',
  '/usr/bin',
  '/usr/sbin',
  '/usr/lib',
  '/usr/lib32',
  '/usr/lib64',
  '/usr/libx32',
  '/usr/libexec',
  '/usr/local/bin',
  '/usr/local/sbin',
  '/usr/local/lib',
];

/** Why a recorded path may not be a volume of a throwaway container (drills), or undefined. Pure. */
export function unsafeThrowawayPath(path: string): string | undefined {
  const why = unsafeRecordedPath(path);
  if (why) return why;
  // At or under one (as `under`), or above one (a volume over /usr hides /usr/bin).
  const hit = under(path, PROGRAM_DIRS) ?? PROGRAM_DIRS.find((d) => d.startsWith(`${path}/`));
  return hit ? `over ${hit}, where the programs a throwaway container runs are` : undefined;
}

/** The paths to archive: the `stackvault.paths` label, else the ones the driver found. `/` stays `/` (and is refused by checkLabelledPaths). */
export function labelledPaths(container: ContainerDetails): string[] | undefined {
  const label = container.labels[PATHS_LABEL];
  return label
    ? label
        .split(',')
        .map((p) => p.trim().replace(/(.)\/+$/, '$1'))
        .filter(Boolean)
    : undefined;
}

/**
 * The `stackvault.paths` label's values, checked before the container is stopped or paused:
 * each one absolute, normal and outside the system directories, no pattern (nothing expands
 * globs), none named twice, and each one there in the container. Returns what each path is.
 * Every refusal is one sentence naming the label.
 */
export async function checkLabelledPaths(engine: DockerEngine, container: ContainerDetails, paths: readonly string[]): Promise<Map<string, PathKind>> {
  const fix = `check the ${PATHS_LABEL} label of ${container.name}`;
  if (paths.length === 0) throw new Error(`${PATHS_LABEL} names no path (${fix})`);
  const seen = new Set<string>();
  for (const p of paths) {
    if (/[*?[\]{}]/.test(p)) throw new Error(`${PATHS_LABEL} names ${p}, a pattern: globs are not expanded, name each path (${fix})`);
    if (p === '/') throw new Error(`${PATHS_LABEL} names /, the container's whole filesystem: name its data paths (${fix})`);
    const why = unsafeDataPath(p, container);
    if (why) throw new Error(`${PATHS_LABEL} names ${p}, which is ${why} (${fix})`);
    if (seen.has(p)) throw new Error(`${PATHS_LABEL} names ${p} twice (${fix})`);
    seen.add(p);
  }
  const kinds = new Map<string, PathKind>();
  for (const p of paths) {
    const kind = await pathKindOf(engine, container.id, p);
    if (kind === 'missing') throw new Error(`${PATHS_LABEL} names ${p}, which does not exist in ${container.name} (${fix})`);
    kinds.set(p, kind);
  }
  return kinds;
}

/** Each path's top-level name in the archive (Docker names entries by the path's last component). */
function topNames(paths: string[]): Map<string, string> {
  const tops = new Map<string, string>();
  for (const p of paths) {
    const top = posix.basename(p);
    const clash = tops.get(top);
    if (clash) throw new Error(`${clash} and ${p} end in the same name '${top}', so one archive cannot keep them apart; label the container ${PATHS_LABEL}=… with one of them`);
    tops.set(top, p);
  }
  return tops;
}

/**
 * Stops the container (unless labelled stackvault.stop=false), streams a tar of the paths
 * through the archive API (ownership and modes are in the tar headers), and starts it again
 * whatever happens. The files' fingerprint is computed on the way.
 */
export async function archiveDataPaths(ctx: BackupContext, paths: string[], options: ArchiveOptions = {}): Promise<BackupOutcome<VolumeDetails>> {
  return backupThrough(await archiveSnapshot(ctx, paths, options), ctx.output);
}

export interface ArchiveOptions {
  /** Told to the user after the copy (data outside volumes). */
  warnings?: string[];
  /** Paths that may be gone by the time they are copied (a -wal checkpointed away). */
  mayVanish?: string[];
  /** How the store is held while its files are copied, for the output (`copied while paused`). */
  down?: 'stopped' | 'paused';
  /** The `stackvault.paths` label was checked by the caller (checkLabelledPaths): not asked again. */
  labelChecked?: boolean;
  /**
   * Whether `ctx.withStopped` may be a hold that ends when `fix` returns: an app container held
   * paused by a consistent backup's window, which unpauses it as soon as every store has fixed
   * its point. Its files are then copied before `fix` returns. A store stopped by its own
   * `withStopped` is fixed at its stop, and the copy runs on after the window.
   */
  holdEndsWithFix?: boolean;
}

/**
 * archiveDataPaths in the three steps of a consistent backup's Snapshot. Before the window:
 * the pre-copy, while the store runs. In it (`fix`): the store is stopped (or paused), which
 * fixes its point: nothing writes to it until it runs again. The listing and the copy of what
 * changed (or, when a pre-copy is not possible, the whole copy) then run on while the other
 * stores' writers run again, and the store starts once they are done; `backup` waits for them
 * and assembles the archive from the staged copy. Copied while running (stackvault.stop=false),
 * the copy itself is the point and runs inside the window.
 */
export async function archiveSnapshot(ctx: BackupContext, paths: string[], options: ArchiveOptions = {}): Promise<Snapshot<VolumeDetails>> {
  const { engine, container, output } = ctx;
  const { warnings = [], mayVanish = [], holdEndsWithFix = false, down: downWord = 'stopped' } = options;
  // A wrong label is told before the store is stopped or paused, naming the label.
  const labelled = labelledPaths(container);
  if (labelled && !options.labelChecked) await checkLabelledPaths(engine, container, labelled);
  for (const p of paths) {
    const why = unsafeDataPath(p, container);
    if (why) throw new Error(`cannot archive ${p}: ${why}`);
  }
  // The entries a restore would refuse (EntryGuard's rules, as for any archive) are found as the
  // copy streams by: such a backup, and a restore point of such data, can never be put back, so
  // the entry says so (restoreRefuses: ⚠️, and the backup is partial) instead of a silent ✅.
  const guard = new EntryGuard(topNames(paths));
  let refused: string | undefined;
  const hot = booleanLabel(container, STOP_LABEL) === false;
  const fingerprinter = new TarFingerprinter((e) => {
    refused ??= guard.why(e);
  });
  const tee = teeTo(output, fingerprinter.checker);
  const gone = new Set<string>();
  const copy = async () => {
    await concatTars(
      paths.map(
        (p) => () =>
          engine.getArchive(container.id, p).catch((err: unknown) => {
            if (!mayVanish.includes(p) || !isNotFound(err)) throw err;
            gone.add(p); // gone meanwhile (a -wal checkpointed away): not recorded, so a restore does not look for it
            return Readable.from([Buffer.alloc(1024)]);
          }),
      ),
      tee,
    );
    await finished(tee);
  };
  // The store is down only while it is listed and its changed files are copied (pre-copy.ts);
  // when a pre-copy is not possible, the whole copy runs while it is down, as before.
  let pre: PreCopy | undefined;
  if (!hot && mayVanish.length === 0) {
    try {
      pre = await startPreCopy(ctx.engine, ctx.container, paths, ctx.scratchDir, ctx.signal);
    } catch (err) {
      if (!(err instanceof NoPreCopy)) throw err;
      if (!err.quiet) ctx.log(`copied while ${downWord} (no pre-copy: ${err.message})`);
    }
  }
  /** While it is down: the catch-up of the pre-copy (how many files it copied), else the whole copy. */
  const whileDown = async (): Promise<number | undefined> => {
    if (pre) {
      // Within the same stop: when the catch-up finds it cannot work, the whole copy runs then.
      try {
        return await pre.catchUp();
      } catch (err) {
        if (!(err instanceof NoPreCopy)) throw err;
        ctx.log(`copied while ${downWord} (no pre-copy: ${err.message})`);
      }
    }
    await copy();
    return undefined;
  };
  let fixed = false;
  let down: Promise<number | undefined> | undefined;
  return {
    async fix() {
      if (hot) await copy();
      else if (holdEndsWithFix) down = Promise.resolve(await ctx.withStopped(whileDown));
      else {
        let isDown!: () => void;
        const stopped = new Promise<void>((resolve) => {
          isDown = resolve;
        });
        down = ctx.withStopped(() => {
          isDown();
          return whileDown();
        });
        down.catch(() => undefined); // awaited by backup, or by release when backup never runs
        await Promise.race([stopped, down]);
      }
      fixed = true;
    },
    async backup() {
      if (!fixed) throw new Error('the copy was not taken');
      const changed = await down;
      if (pre && changed !== undefined) {
        await pre.emit(tee);
        await finished(tee);
      }
      // In the entry only, not logged too: the output shows an entry's warnings under its line.
      warnings.push(...outsideVolumes(container, paths));
      return {
        hot,
        ...(refused !== undefined ? { restoreRefuses: refused } : {}),
        details: { paths: paths.filter((p) => !gone.has(p)), stopped: !hot, ...(changed !== undefined ? { preCopy: { copiedWhileDown: changed } } : {}) },
        fingerprint: fingerprinter.result(),
        ...(warnings.length ? { warnings } : {}),
      };
    },
    release: async () => {
      // The store runs again (and its copy has ended) before its staged files go.
      await down?.catch(() => undefined);
      await pre?.dispose();
    },
  };
}

/** Empties a file of a stopped container's own layer, keeping its owner and mode; nothing when it is not a file there. */
async function emptyInPlace(ctx: Pick<RestoreContext, 'engine' | 'container'>, path: string): Promise<void> {
  const archive = await ctx.engine.getArchive(ctx.container.id, path).catch((err: unknown) => {
    if (isNotFound(err)) return undefined;
    throw err;
  });
  if (!archive) return;
  const entry = await findTarEntry(archive, posix.basename(path)).catch(() => undefined);
  if (!entry) return;
  entry.close();
  await putFiles(ctx.engine, ctx.container.id, posix.dirname(path), [{ path: posix.basename(path), size: 0, uid: entry.uid, gid: entry.gid, mode: entry.mode }]);
}

/** The warning for each path whose data is not on a volume or bind mount. */
export function outsideVolumes(container: ContainerDetails, paths: string[]): string[] {
  return paths.filter((p) => !mountOf(container, p)).map((p) => `${p} is not on a volume: its data is lost when the container is recreated (mount a volume there)`);
}

/** The size of paths as `du` inside the container sees it; undefined when it cannot tell. */
export async function duBytes(engine: DockerEngine, container: ContainerDetails, paths: string[]): Promise<number | undefined> {
  if (!container.running || paths.length === 0) return undefined;
  const r = await engine.exec(container.id, ['du', '-sb', '--', ...paths]).catch(() => undefined);
  if (r?.exitCode !== 0) return undefined;
  return r.stdout.split('\n').reduce((n, l) => n + (Number(l.split('\t')[0]) || 0), 0);
}

/** A plan for a store archived as files: stopped (or `stackvault.stop=false`: online), its paths and their size. */
export async function planDataPaths(engine: DockerEngine, container: ContainerDetails, paths: string[], interrupts: 'stopped' | 'paused', warnings: string[] = []): Promise<BackupPlan> {
  const labelled = labelledPaths(container);
  if (labelled) await checkLabelledPaths(engine, container, labelled);
  const hot = booleanLabel(container, STOP_LABEL) === false;
  const bytes = await duBytes(engine, container, paths);
  return {
    method: 'archive of its files through the archive API',
    interrupts: hot ? 'online' : interrupts,
    paths,
    ...(bytes !== undefined ? { estimatedBytes: bytes } : {}),
    warnings: [...warnings, ...outsideVolumes(container, paths)],
  };
}

/**
 * Puts the archived paths back exactly: every recorded path is checked first (absolute, not a
 * system directory, a data path of this container now), and every archive entry must lie
 * under one of them, or nothing is written. Then, with the container stopped: each path is
 * emptied, each path's entries are extracted into it, and the files are read back and
 * compared with the archive before the container starts. Returns what was read back.
 *
 * Emptying: a path on a volume or bind is emptied by a helper container that mounts the
 * container's volumes. A path that is not on a mount lives in the container's own layer, which
 * no helper can reach and a stopped container cannot exec in; it is emptied through the archive
 * API itself: an empty file of the path's name is put in its place (Docker removes whatever
 * stood there, directory and all, before it writes an entry of another type), and the archive's
 * own entry for the path then replaces that file with the directory as archived. So the path
 * ends with exactly the archive's content, also when a refused restore is put back (before,
 * files a failed restore added stayed, and its rollback failed its own read-back). A path not
 * on a mount but with a mount inside it is refused in checkRestorable: emptying it that way
 * would delete into that mount.
 */
export async function restoreDataPaths(ctx: RestoreContext, currentPaths: readonly string[], alsoRemove: string[] = []): Promise<Fingerprint> {
  const { paths, tops, archived, files, sparse } = await checkRestorable(ctx, currentPaths);
  return ctx.withStopped(async () => {
    const mounted = paths.filter((p) => mountOf(ctx.container, p));
    if (mounted.length) await removeFromVolumes(ctx.engine, ctx.container, mounted, 'contents');
    // Only beside a path the archive holds as one file (a database), whatever a manifest lists.
    const companions = alsoRemove.filter((p) => !unsafeDataPath(p, ctx.container) && [...files].some((q) => `${q}-wal` === p || `${q}-shm` === p || `${q}-journal` === p));
    const onMounts = companions.filter((p) => mountOf(ctx.container, p));
    if (onMounts.length) await removeFromVolumes(ctx.engine, ctx.container, onMounts, 'files');
    // Off every mount no helper reaches them and the archive API cannot delete: one that is there
    // is emptied in place, with its owner and mode (SQLite reads an empty -wal, -shm or -journal as none).
    for (const p of companions.filter((q) => !mountOf(ctx.container, q))) await emptyInPlace(ctx, p);
    for (const p of paths.filter((q) => !mountOf(ctx.container, q))) {
      await putFiles(ctx.engine, ctx.container.id, posix.dirname(p), [{ path: posix.basename(p), size: 0, uid: 0, gid: 0, mode: 0o600 }]);
    }
    // Files with holes go in through a helper that keeps the holes (sparse-restore.ts), the rest through the archive API.
    const writer = await sparseWriter(ctx.engine, ctx.container, sparse, tops, ctx.log);
    try {
      const put = async (want: (path: string, type: string) => boolean) => {
        for (const [top, p] of tops) await ctx.engine.putArchive(ctx.container.id, posix.dirname(p), selectEntries(ctx.open(), top, new EntryGuard(tops), want));
      };
      await put((path) => !writer?.paths.has(path));
      if (writer) {
        await writer.write(ctx.open(), ctx.signal).catch(async (err: unknown) => {
          if (ctx.signal.aborted) throw err;
          // Written whole instead, as before: the same files, taking the room of their holes.
          ctx.log(`${writer.paths.size} file(s) with holes restored without them, every zero written: ${err instanceof Error ? err.message : String(err)}`);
          // Their directories again too: Docker sets a directory's archived times after the
          // entries in it, and creating these files just gave their parents the time of now.
          const parents = new Set([...writer.paths].map((p) => posix.dirname(p)));
          await put((path, type) => writer.paths.has(path) || (type === 'Directory' && parents.has(path)));
        });
      }
    } finally {
      await writer?.remove();
    }
    const restored = await readBack(ctx, paths);
    const difference = firstDifference(archived, restored);
    if (difference) throw new ContentMismatchError(difference);
    return restored;
  });
}

/**
 * Everything that must hold before a byte is written: recorded paths are safe and belong to
 * this container, and every archive entry lies under one of them. Returns the archive's files.
 */
export function checkRestorable(ctx: RestoreCheckContext, currentPaths: readonly string[]): Promise<Restorable> {
  // The check before anything changes and the restore itself ask the same question of the same
  // artifact (its SHA-256 was checked first): it is read once. The bytes extracted later are
  // checked again entry by entry (selectEntries) and compared by content afterwards.
  const key = [ctx.container.id, ctx.entry.name, ctx.entry.sha256 ?? '', JSON.stringify(recorded(VOLUME_DETAILS, ctx.entry).paths), ...currentPaths].join('\0');
  let answer = checked.get(key);
  if (!answer) {
    answer = readRestorable(ctx, currentPaths);
    checked.set(key, answer);
    answer.catch(() => checked.delete(key));
  }
  return answer;
}

interface Restorable {
  paths: string[];
  tops: Map<string, string>;
  archived: Fingerprint;
  /** The recorded paths the archive holds as one regular file (a database may have companions; a directory has none). */
  files: Set<string>;
  /** The archive's files with holes. */
  sparse: SparseFiles;
}
const checked = new Map<string, Promise<Restorable>>();

async function readRestorable(ctx: RestoreCheckContext, currentPaths: readonly string[]): Promise<Restorable> {
  const { paths } = recorded(VOLUME_DETAILS, ctx.entry);
  if (paths.length === 0) throw new Error('the backup does not say which paths it archived');
  for (const p of paths) {
    const why = unsafeDataPath(p, ctx.container);
    if (why) throw new Error(`the backup records the path ${String(p)}, which is ${why}; refusing to restore`);
    // Only what this container holds as data now: not any path on a mount (a source tree, a
    // configuration bind), whatever a manifest says.
    if (!currentPaths.includes(p)) {
      throw new Error(`the backup records the path ${p}, which is not one of the data paths of ${ctx.container.name} (${currentPaths.join(', ') || 'none'}); refusing to restore`);
    }
    // restoreDataPaths empties a path off every mount by replacing it whole: never with a mount inside.
    const inside = mountOf(ctx.container, p) ? undefined : ctx.container.mounts.find((m) => m.destination.startsWith(`${p}/`));
    if (inside) throw new Error(`${p} is not on a volume but has ${inside.destination} mounted inside it, so a restore cannot empty it exactly; refusing to restore (mount a volume at ${p})`);
  }
  const tops = topNames(paths);
  const guard = new EntryGuard(tops);
  let refused: string | undefined;
  const files = new Set<string>();
  const holes = new HoleScan();
  const expected = new TarFingerprinter((e) => {
    refused ??= guard.why(e);
    const top = tops.get(e.path);
    if (top !== undefined && e.type === 'File') files.add(top);
    holes.entry(e);
  });
  await pipeline(ctx.open(), expected.checker);
  if (refused !== undefined) throw new Error(`${refused}; refusing to restore`);
  return { paths, tops, archived: expected.result(), files, sparse: holes.result() };
}

/**
 * The restore's own rule for a backup's archive (EntryGuard over the recorded paths), for
 * `verify` and the artifact check: an archive the restore would refuse is never vouched for.
 * A record whose paths cannot be kept apart or are unsafe refuses every entry.
 */
export function recordedEntryRule(entry: ServiceEntry): (e: Pick<ReadEntry, 'path' | 'type' | 'linkpath' | 'mode' | 'size'>) => string | undefined {
  const { paths } = recorded(VOLUME_DETAILS, entry);
  let guard: EntryGuard | string;
  try {
    const unsafe = paths.map((p) => [p, unsafeRecordedPath(p)] as const).find(([, why]) => why);
    guard = unsafe ? `the backup records the path ${unsafe[0]}, which is ${unsafe[1]}` : new EntryGuard(topNames(paths));
  } catch (err) {
    guard = (err as Error).message;
  }
  return (e) => (typeof guard === 'string' ? guard : guard.why(e));
}

/**
 * Where archive entries may go, decided entry by entry as the archive streams (the same rules
 * for the check before anything changes and for the bytes actually extracted): under a
 * recorded path, by a normal path (`data/./b` and `data//b` are `data/b` on disk); never
 * through a symlink an earlier entry made (a chain of links could otherwise lead anywhere in
 * the container); symlinks only to places inside their own recorded path, and never with `..`;
 * hard links only to a file the archive made before them, not named through a symlink; no
 * content on entries that have none for Docker; no setuid or setgid bits; no devices or FIFOs.
 */
export class EntryGuard {
  /** The symlinks the archive made, by their normal path. */
  private readonly links = new Set<string>();
  /** The paths whose last entry made a regular file (or a hard link to one): what a hard link may name. */
  private readonly files = new Set<string>();

  constructor(private readonly tops: Map<string, string>) {}

  /** Why this entry must not be extracted, or undefined. */
  why(e: Pick<ReadEntry, 'path' | 'type' | 'linkpath' | 'mode' | 'size'>): string | undefined {
    const path = normalEntryPath(e.path, e.type);
    const top = (path ?? e.path).split('/')[0]!;
    const root = this.tops.get(top);
    if (root === undefined) return `the archive holds '${e.path}', which is not under any recorded path (${[...this.tops.values()].join(', ')})`;
    const unsafe = (why: string | undefined) => `the archive entry '${e.path}' is unsafe: ${why ?? 'not a normal path'}`;
    if (path === undefined) return unsafe(unsafeEntry({ path: e.path, type: e.type }));
    if (e.type === 'SymbolicLink' && path === top) return `the archive makes ${root} itself a symlink`;
    const behind = this.linkOver(path, false);
    if (behind) return `the archive entry '${e.path}' lies behind the symlink '${behind}', which could lead outside ${root}`;
    // An absolute link target means a place in the container: it must lie in the entry's own
    // recorded path, and is then judged as the archive's own path it amounts to (`/top/...`).
    let linkpath = e.linkpath;
    if (e.type === 'SymbolicLink' && linkpath?.startsWith('/') && !linkpath.split('/').includes('..')) {
      const target = posix.normalize(linkpath);
      if (target !== root && !target.startsWith(`${root}/`)) return `the symlink '${e.path}' points to ${linkpath}, outside ${root}`;
      linkpath = `/${top}${target.slice(root.length)}`;
    }
    const why = unsafeEntry({ path: e.path, type: e.type, linkpath, size: e.size ?? 0 });
    if (why) return unsafe(why);
    if (e.type === 'Link') {
      // Docker links to this path as it is on disk then: through no symlink, and a file the archive made.
      const through = this.linkOver(linkpath!, true);
      if (through) return `the hard link '${e.path}' names ${linkpath} through the symlink '${through}', which could lead outside ${root}`;
      if (!this.files.has(linkpath!)) return `the hard link '${e.path}' names ${linkpath}, which is not a file the archive made before it`;
    }
    if (((e.mode ?? 0) & 0o6000) !== 0) return `the archive entry '${e.path}' has a setuid or setgid bit`;
    if (e.type === 'SymbolicLink') this.links.add(path);
    if (CONTENT_TYPES.has(e.type) || e.type === 'Link') this.files.add(path);
    else this.files.delete(path);
    return undefined;
  }

  /** The first symlink the archive made among `path`'s parents (and `path` itself when `self`). */
  private linkOver(path: string, self: boolean): string | undefined {
    const parts = path.split('/');
    for (let i = 1; i < parts.length + (self ? 1 : 0); i++) {
      const parent = parts.slice(0, i).join('/');
      if (this.links.has(parent)) return parent;
    }
    return undefined;
  }
}

/** The files of `paths` as they are in the container now (running or stopped). */
export async function readBack(ctx: Pick<RestoreContext, 'engine' | 'container'>, paths: string[]): Promise<Fingerprint> {
  const all = new PassThrough();
  const done = fingerprintTar(all);
  await concatTars(
    paths.map((p) => () => ctx.engine.getArchive(ctx.container.id, p)),
    all,
  );
  all.end();
  return done;
}

const topOf = (path: string) => path.split('/')[0]!;

/** A tar of only the entries under `top` that `want` (by normal path), with their headers (owners, modes, links) as they were. */
function selectEntries(source: Readable, top: string, guard: EntryGuard, want: (path: string, type: string) => boolean = () => true): Readable {
  return filterTar(source, (e) => {
    // The bytes sent to Docker are checked again: the file may have changed since the check.
    const why = guard.why(e);
    if (why) return new Error(`${why}; the restore stopped`);
    return topOf(e.path) === top && want(normalEntryPath(e.path, e.type) ?? e.path, e.type) ? 'keep' : 'skip';
  });
}
