import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { PassThrough, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type ContainerDetails, type DockerEngine, foreignText } from '../docker/engine.js';
import { helperOwnerLabels } from '../docker/helper-owner.js';
import { finished, forwardTo, gatheredInto } from '../util/backpressure.js';
import { sparseFileWriter } from '../util/sparse.js';
import { encodeHeader, filterTar } from '../util/tar-build.js';
import { stripTarTrailer, TarChecker, writeChunk } from '../util/tar-stream.js';
import { answerMarker, openSession } from '../docker/command-session.js';
import { type CopiedFile, copyFileOut, mountOf } from './container-files.js';

/**
 * Pre-copy: a store's files are copied while it runs; then it is stopped (or paused) only
 * long enough to list its files and copy those that changed, and the artifact is assembled
 * after it runs again. The result equals a copy taken while it was stopped.
 *
 * "Unchanged" is decided by ctime, which the kernel sets on every change of content, size,
 * name, links or owner and which no tool can set back (unlike mtime): a regular file keeps
 * its pre-copied bytes only if its size matches and its ctime, and that of every directory
 * above it (a renamed directory changes only its own), lie before the pre-copy began, less a
 * margin for clock granularity. Writes through a shared writable memory mapping do not set
 * ctime each time (only the first write to a page that was written back does), so files the
 * store has mapped that way are copied again while it is down.
 * Everything else is taken while the store is down; directories and symbolic links come
 * from the listing, so their owners, modes and targets are the final ones.
 *
 * The listing runs in a helper container of the store's own image that mounts its volumes
 * read-only (a stopped or paused container cannot exec). When a pre-copy cannot be exact or
 * cheap (paths not on a volume or inside each other, no GNU find or sh, hard links, devices,
 * names that are not UTF-8, many changed files, encrypted artifacts, a failure while
 * staging), the caller copies the usual way, everything while stopped.
 *
 * This file pre-copies whole directories; the helper, the listing, the mappings and the rule
 * for "unchanged" below are shared with SQLite's pre-copy of database files (sqlite-pre-copy.ts).
 */
export interface PreCopy {
  /** Run while the store is stopped: list its files and copy what changed; returns how many. */
  catchUp(): Promise<number>;
  /** Run after it runs again: the whole archive, as one stopped copy would have given it. */
  emit(out: Writable): Promise<void>;
  dispose(): Promise<void>;
}

/** A file of the listing: find's type letter, size, ctime (s), links, mode, owner, mtime, path. */
export interface Listed {
  type: string;
  size: number;
  ctime: number;
  links: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  /** A symbolic link's target. */
  link: string;
}

/** More changed files than this (each fetch costs ~0.1 s of downtime), and a full copy while stopped is quicker. */
const MAX_FETCHES = 64;
/**
 * More files than this, and the store is copied the usual way, everything while stopped: a
 * pre-copy holds each file's listing and staged size in memory (about 0.6 KB a file at its
 * peak), where the usual copy streams. 406 MB of RSS at 200,000 files before the listing was
 * read from its bytes; a volume of millions would exhaust a small host while its store is down.
 */
export const PRE_COPY_FILES_MAX = 250_000;
/** Seconds before the pre-copy's start below which a file's ctime proves it unchanged since. */
const CTIME_MARGIN_S = 2;
const FIELDS = '%y\\0%s\\0%C@\\0%n\\0%m\\0%U\\0%G\\0%T@\\0%l\\0%p\\0';

/** Why a pre-copy is not possible; `quiet` when the user was already told (a path not on a volume). */
export class NoPreCopy extends Error {
  constructor(
    message: string,
    readonly quiet = false,
  ) {
    super(message);
  }
}

export async function startPreCopy(engine: DockerEngine, container: ContainerDetails, paths: string[], scratchDir: string | undefined, signal: AbortSignal): Promise<PreCopy> {
  if (!scratchDir) throw new NoPreCopy('artifacts are encrypted, so no raw copy is staged on disk', true);
  const unmounted = paths.filter((p) => !mountOf(container, p));
  if (unmounted.length) throw new NoPreCopy(`${unmounted.join(', ')} is not on a volume`, true);
  if (paths.some((a) => paths.some((b) => b.startsWith(`${a}/`)))) throw new NoPreCopy('one archived path lies inside another');
  const helper = await startHelper(engine, container);
  const files: string[] = [];
  const dispose = async () => {
    await helper.remove();
    await Promise.all(files.map((f) => rm(f, { force: true })));
  };
  try {
    // What rules a pre-copy out (too many files, hard links, devices, names, no GNU find) shows
    // before any copy. Counted only now: a second walk while the store is down would add to its downtime.
    const count = await helper.count(paths, PRE_COPY_FILES_MAX);
    if (count > PRE_COPY_FILES_MAX) throw new NoPreCopy(`it holds more than ${PRE_COPY_FILES_MAX.toLocaleString('en-US')} files, more than a pre-copy lists in memory`);
    unsupported(await listTrees(helper, paths));
    // Read before the first byte is staged (see sharedWritableMappings).
    const mapped = await sharedWritableMappings(engine, container);
    // Staged raw, per path: Docker's archive of it while the store runs, and its entries' sizes.
    const staged: Array<{ path: string; file: string; sizes: Map<string, number> }> = [];
    for (const [i, p] of paths.entries()) {
      const file = join(scratchDir, `pre-copy-${i}.tar`);
      files.push(file);
      const sizes = new Map<string, number>(); // regular files only: the rest comes from the listing
      const index = new TarChecker((e) => {
        if (e.type === 'File') sizes.set(e.path, e.size ?? 0);
      });
      index.on('error', () => undefined); // reported by `finished` below
      const tap = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          index.write(chunk);
          cb(null, chunk);
        },
      });
      // Written sparse: a hole of a store's file (Docker's archive holds its zeros) takes no room here.
      await pipeline(await engine.getArchive(container.id, p, { signal }), stripTarTrailer(), tap, sparseFileWriter(file)).catch((err: unknown) => {
        throw stagingFailure(err, signal);
      });
      await finished(index).catch((err: unknown) => {
        throw stagingFailure(err, signal);
      });
      staged.push({ path: p, file, sizes });
    }
    const changedFile = join(scratchDir, 'pre-copy-changed.tar');
    files.push(changedFile);
    let listing: Map<string, Listed> | undefined;
    /** A staged size marked so: the file's pre-copied bytes are still its bytes (the sizes map is then the set of those). */
    const KEPT = -1;

    return {
      async catchUp() {
        // A helper that is gone (removed by hand, or its time up on a very long run) means a whole copy while down, not a failure.
        const now = await listTrees(helper, paths).catch((err: unknown) => {
          throw stagingFailure(err, signal);
        });
        unsupported(now);
        const fetches: string[] = [];
        for (const [path, f] of now) {
          if (f.type !== 'f') continue; // directories and links come from the listing; sockets are not archived
          const name = entryName(paths, path);
          const root = rootOf(paths, path);
          const sizes = staged.find((s) => s.path === root)?.sizes;
          if (keepsPreCopiedBytes(now, path, root, sizes?.get(name), mapped, helper.startedAt)) sizes!.set(name, KEPT);
          else fetches.push(path);
        }
        if (fetches.length > MAX_FETCHES) throw new NoPreCopy(`${fetches.length} files changed`);
        for (const s of staged) for (const [name, size] of s.sizes) if (size !== KEPT) s.sizes.delete(name);
        const out = sparseFileWriter(changedFile);
        const sent = new PassThrough();
        const writing = pipeline(sent, out);
        writing.catch(() => undefined);
        try {
          for (const path of fetches) {
            // Docker names the entry by its base name: it is renamed to its place in the archive.
            const name = entryName(paths, path);
            const one = filterTar(await engine.getArchive(container.id, path, { signal }), () => ({ path: name }));
            await pipeline(one, stripTarTrailer(), forwardTo(sent));
          }
          sent.end();
          await writing;
        } catch (err) {
          sent.destroy();
          throw stagingFailure(err, signal);
        }
        // Only directories and links are written from the listing: files come from the copies.
        listing = new Map([...now].filter(([, f]) => f.type === 'd' || f.type === 'l'));
        return fetches.length;
      },

      async emit(into: Writable) {
        if (!listing) throw new Error('the pre-copy was not caught up');
        // Entries come a header and a few bytes at a time: handed on in pieces of 64 KiB.
        const out = gatheredInto(into);
        const done = [...listing].sort(([a], [b]) => (a < b ? -1 : 1));
        for (const s of staged) {
          for (const [path, f] of done.filter(([p, f]) => f.type === 'd' && rootOf(paths, p) === s.path)) {
            await writeChunk(out, encodeHeader({ path: `${entryName(paths, path)}/`, type: 'Directory', mode: f.mode, uid: f.uid, gid: f.gid, size: 0, mtime: new Date(f.mtime * 1000) }));
          }
          const unchanged = filterTar(createReadStream(s.file), (e) => (e.type === 'File' && s.sizes.has(e.path) ? 'keep' : 'skip'));
          await pipeline(unchanged, stripTarTrailer(), forwardTo(out));
        }
        await pipeline(createReadStream(changedFile), forwardTo(out));
        // Links last: no file of the archive lies behind one (the restore refuses that).
        for (const [path, f] of done.filter(([, f]) => f.type === 'l')) {
          await writeChunk(out, encodeHeader({ path: entryName(paths, path), type: 'SymbolicLink', linkpath: f.link, mode: 0o777, uid: f.uid, gid: f.gid, size: 0, mtime: new Date(f.mtime * 1000) }));
        }
        await writeChunk(out, Buffer.alloc(1024));
        await finished(out);
      },

      dispose,
    };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/** Throws when the listing holds what a pre-copy of whole directories cannot copy exactly. */
function unsupported(listing: Map<string, Listed>): void {
  for (const [path, f] of listing) {
    if ('pbc'.includes(f.type)) throw new NoPreCopy(`${path} is a device or FIFO`);
    if (f.type === 'f' && f.links > 1) throw new NoPreCopy(`${path} has hard links`);
  }
}

/** Every file under the archived paths, which must be directories. */
async function listTrees(helper: PreCopyHelper, paths: string[]): Promise<Map<string, Listed>> {
  const listing = await helper.list(paths);
  if (paths.some((p) => listing.get(p)?.type !== 'd')) throw new NoPreCopy('a path is not a directory');
  return listing;
}

/*
 * The pieces every pre-copy shares (this one of directories, and SQLite's of database files):
 * the helper and its clock, the listing, the memory mappings, and the rule that decides which
 * pre-copied bytes are still a file's bytes.
 */

/** A read-only helper container of a store's image, for listing its files while it is stopped or paused. */
export interface PreCopyHelper {
  /** The helper's clock when the pre-copy began (seconds since the epoch): ctimes are judged against it. */
  readonly startedAt: number;
  /**
   * `find -printf` of the start points (with `recurse`, of everything under them), path ->
   * facts. A start point that does not exist is left out: files vanish while a store runs.
   */
  list(paths: string[], options?: { recurse?: boolean }): Promise<Map<string, Listed>>;
  /** How many files lie under the start points, counted up to `max` + 1 (no listing is held). */
  count(paths: string[], max: number): Promise<number>;
  /**
   * Copies files, as they are now, into the helper's own filesystem (with their owner, mode and
   * times), to be fetched with `fetchStaged` once the store runs again: a local copy takes
   * milliseconds where a fetch through the archive API takes 0.1 s or more. Returns where each
   * went, or why it could not (nothing is then staged).
   */
  stage(paths: string[]): Promise<{ staged: string[] } | { failed: string }>;
  /** One staged file out of the helper into `target` (see copyFileOut). */
  fetchStaged(staged: string, target: string, signal: AbortSignal): Promise<CopiedFile>;
  /** Removes the helper; safe to call more than once. */
  remove(): Promise<void>;
}

/** Where a helper stages files, in its own writable layer (never on the store's volumes, which it mounts read-only). */
const STAGE_DIR = '/.stackvault-stage';

/**
 * Starts the helper: the store's image, its volumes mounted read-only (a stopped or paused
 * container cannot exec), no network, and reads its clock. It runs one shell for the whole
 * pre-copy, so a listing while the store is down is one round trip on that shell, not a
 * `docker exec` (0.1-0.6 s on a busy machine). Throws NoPreCopy when it cannot.
 */
export async function startHelper(engine: DockerEngine, container: ContainerDetails): Promise<PreCopyHelper> {
  const id = await engine
    .runDetached({
      image: container.imageId,
      // It waits (at most 6 hours) until the shell it is driven through ends: that shell kills
      // it when its input closes, so a helper ends with its run, a SIGKILLed one too (Docker
      // closes an exec's input when the client's connection drops). PID 1 ignores signals it
      // has no handler for, hence the trap. The next backup create removes what is left. Never
      // auto-removed, and removed keeping volumes: it mounts the store's volumes, and Docker
      // would delete an anonymous one whose store was removed meanwhile.
      entrypoint: ['sh'],
      cmd: ['-c', 'trap "exit 0" TERM; sleep 21600 & wait'],
      user: '0:0',
      volumesFrom: [`${container.id}:ro`],
      noNetwork: true,
      noHealthcheck: true,
      labels: helperOwnerLabels(container.id),
    })
    .catch((err: unknown) => {
      throw new NoPreCopy(`no helper container of its image (${err instanceof Error ? err.message : String(err)})`);
    });
  const shell = helperShell(engine, id);
  let removed: Promise<void> | undefined;
  // The container goes first: its shell may be in the middle of a request.
  const remove = () =>
    (removed ??= engine
      .remove(id, { keepVolumes: true })
      .then(shell.close, shell.close)
      .catch(() => undefined));
  try {
    // The staging directory is made now: no more processes than needed while the store is down.
    const clock = await shell.run(`mkdir -p ${STAGE_DIR} 2>/dev/null; date +%s.%N`).catch((err: unknown) => {
      throw new NoPreCopy(`no shell in the helper (${err instanceof Error ? err.message : String(err)})`);
    });
    const startedAt = Number(clock.out.toString('utf8').trim());
    if (clock.status !== 0 || !Number.isFinite(startedAt)) throw new NoPreCopy(`the helper cannot tell the time${clock.shown ? ` (${clock.shown})` : ''}`);
    let stagedCount = 0;
    return {
      startedAt,
      list: (paths, options) => listFiles(shell, paths, options?.recurse ?? true),
      async count(paths, max) {
        const r = await shell.run(`find ${paths.map(shellQuote).join(' ')} -printf . 2>/dev/null | head -c ${max + 1} | wc -c`);
        const n = Number(r.out.toString('latin1').trim());
        if (!Number.isSafeInteger(n)) throw new NoPreCopy(`the helper cannot count its files${r.shown ? ` (${r.shown})` : ''}`);
        return n;
      },
      async stage(paths) {
        const staged = paths.map(() => `${STAGE_DIR}/${stagedCount++}`);
        const copies = paths.map((p, i) => `cp -p -- ${shellQuote(p)} ${staged[i]}`);
        const r = await shell.run(['set -e', ...copies].join('\n'));
        return r.status === 0 ? { staged } : { failed: r.shown || `exit ${r.status}` };
      },
      async fetchStaged(staged, target, signal) {
        const copied = await copyFileOut(engine, id, staged, target, { signal });
        if (!copied) throw new Error(`the helper lost its staged copy ${staged}`);
        return copied;
      },
      remove,
    };
  } catch (err) {
    await remove();
    throw err;
  }
}

/** A shell kept running in a helper: each request's stdout comes back as bytes, with its exit status and stderr. */
interface HelperShell {
  /** `error`: the script's stderr, for decisions; `shown`: the same with the store's secrets hidden, for messages. */
  run(script: string): Promise<{ out: Buffer; status: number; error: string; shown: string }>;
  close(): Promise<void>;
}

function helperShell(engine: DockerEngine, helperId: string): HelperShell {
  const session = openSession(engine, helperId, ['sh', '-c', 'sh; kill -TERM 1'], { label: "the pre-copy helper's shell" });
  let queue: Promise<unknown> = Promise.resolve();
  const run = async (script: string) => {
    const marker = answerMarker();
    // The script's stdout goes out as it is (fd 3), its stderr is kept in a variable and
    // follows the marker with the exit status; a subshell, so `set -e` or `exit` end only it.
    session.send(`{ e=$( ( ${script}\n) 2>&1 >&3 3>&- ); r=$?; } 3>&1; printf '%s %s\\n%s%s\\n' ${marker} "$r" "$e" ${marker}\n`);
    const out = await session.readUntil(`${marker} `);
    const status = Number((await session.readUntil('\n')).toString('utf8'));
    const error = (await session.readUntil(`${marker}\n`)).toString('utf8').trim();
    // The script's stderr came on stdout (past the engine's redaction): `shown` is it as a message may quote it.
    return { out, status, error, shown: foreignText(engine, error, [script]) };
  };
  return {
    run: (script) => {
      const answer = queue.then(() => run(script));
      queue = answer.catch(() => undefined);
      return answer;
    },
    close: async () => {
      await session.close();
    },
  };
}

/** One argument for sh, whatever it holds (no NUL can be in a path). */
const shellQuote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/**
 * Whether a file's pre-copied bytes (`copiedSize` of them, undefined when none were staged)
 * are still its bytes, by the listing taken while the store is down. Only a regular file with
 * one link, the same size, not mapped shared and writable, whose ctime and that of every
 * directory between it and `top` (the archived path, or the mount point: neither can be
 * renamed) lie before the pre-copy began, less a margin for clock granularity: renaming a
 * directory changes only its own ctime.
 */
export function keepsPreCopiedBytes(listing: Map<string, Listed>, path: string, top: string, copiedSize: number | undefined, mapped: Set<string>, startedAt: number): boolean {
  const f = listing.get(path);
  if (f?.type !== 'f' || f.links !== 1 || copiedSize !== f.size || mapped.has(path)) return false;
  const before = startedAt - CTIME_MARGIN_S;
  for (let p = path; p !== top; p = posix.dirname(p)) {
    const above = listing.get(p);
    // A symbolic link on the way (not a directory) may lead elsewhere in the app than in the helper.
    if (!above || above.ctime >= before || p === '/' || (p !== path && above.type !== 'd')) return false;
  }
  return true;
}

/** A failure while staging or catching up: the copy falls back to one while the store is down, unless interrupted. */
export function stagingFailure(err: unknown, signal: AbortSignal): Error {
  if (signal.aborted || err instanceof NoPreCopy) return err as Error;
  return new NoPreCopy(`staging failed: ${err instanceof Error ? err.message : String(err)}`);
}

/**
 * Files mapped shared and writable by the store's processes (from /proc/PID/maps). Each
 * process is read as its own user: without CAP_SYS_PTRACE, root in a container cannot read
 * another user's maps. A process whose maps cannot be read rules the pre-copy out.
 *
 * Read after the helper's clock and before the first byte is staged: a mapping seen here has
 * its file copied again while the store is down; one made later sets the file's ctime with its
 * first write (a new mapping's first write faults, and the fault updates ctime), and one that
 * ended before the staging wrote nothing the staging could miss.
 */
export async function sharedWritableMappings(engine: DockerEngine, container: ContainerDetails): Promise<Set<string>> {
  const uidsOut = await engine.exec(container.id, ['sh', '-c', 'for s in /proc/[0-9]*/status; do while read -r k a b rest; do [ "$k" = Uid: ] && echo "$b"; done < "$s"; done 2>/dev/null; true']);
  if (uidsOut.exitCode !== 0) throw new NoPreCopy("the store's memory mappings cannot be read (no sh)");
  const uids = [...new Set(uidsOut.stdout.split('\n').filter((u) => /^\d+$/.test(u)))];
  const mapped = new Set<string>();
  for (const uid of uids) {
    // A process being set up by `docker exec` (a healthcheck's, or one of ours) is not
    // dumpable for a moment (runc's init), so its maps cannot be read: asked again for up to
    // 2 s. One that stays unreadable rules the pre-copy out.
    const script =
      'for d in /proc/[0-9]*; do u=; while read -r k a b rest; do [ "$k" = Uid: ] && u=$b; done < "$d/status" 2>/dev/null; [ "$u" = "$1" ] || continue; n=0; until cat "$d/maps" 2>/dev/null; do [ -e "$d" ] || break; n=$((n+1)); if [ $n -gt 20 ]; then echo "UNREADABLE $d $(cat "$d/comm" 2>/dev/null)"; break; fi; sleep 0.1; done; done; true';
    const r = await engine.exec(container.id, ['sh', '-c', script, 'sh', uid], { user: uid });
    const unreadable = /^UNREADABLE \/proc\/(\d+) (.*)$/m.exec(r.stdout);
    if (r.exitCode !== 0 || unreadable) {
      const which = unreadable ? `, pid ${unreadable[1]} ${foreignText(engine, unreadable[2]!)}` : '';
      throw new NoPreCopy(`the memory mappings of the store's processes (uid ${uid}${which}) cannot be read`);
    }
    for (const line of r.stdout.split('\n')) {
      const m = /^\S+\s+(\S+)\s+\S+\s+\S+\s+\S+\s+(\/.*)$/.exec(line);
      if (m && m[1]!.includes('w') && m[1]!.includes('s')) mapped.add(m[2]!);
    }
  }
  return mapped;
}

/** find in the helper: path -> facts (see PreCopyHelper.list). */
async function listFiles(shell: HelperShell, paths: string[], recurse: boolean): Promise<Map<string, Listed>> {
  const r = await shell.run(`find ${paths.map(shellQuote).join(' ')}${recurse ? '' : ' -maxdepth 0'} -printf '${FIELDS}'`);
  // While the store runs, files vanish between find reading a directory and the file itself;
  // a start point that does not exist (a database's -journal) is reported the same way.
  const vanished = r.status === 1 && r.error.split('\n').every((l) => l.endsWith('No such file or directory'));
  if (r.status !== 0 && !vanished) throw new NoPreCopy(`find in the helper failed: ${r.shown.split('\n').pop() ?? ''}`);
  const out = new Map<string, Listed>();
  // Ten fields per file, each ended by a NUL (no name or link target can hold one), read from
  // the bytes: one string of the whole listing split into ten per file took 400 MB at 200,000.
  const bytes = r.out;
  const fields: string[] = [];
  for (let at = 0; at < bytes.length; ) {
    for (fields.length = 0; fields.length < 10; ) {
      const end = bytes.indexOf(0, at);
      if (end < 0) throw new NoPreCopy("the helper's find does not support -printf");
      // Numbers and type letters are ASCII; a name or link target is UTF-8.
      fields.push(bytes.toString(fields.length >= 8 ? 'utf8' : 'latin1', at, end));
      at = end + 1;
    }
    const [type, size, ctime, links, mode, uid, gid, mtime, link, path] = fields as [string, string, string, string, string, string, string, string, string, string];
    // A name that is not UTF-8 cannot be asked for by name through the archive API.
    if (path.includes('\uFFFD') || link.includes('\uFFFD')) throw new NoPreCopy('a file name is not UTF-8');
    out.set(path, {
      type,
      size: Number(size),
      ctime: Number(ctime),
      links: Number(links),
      mode: Number.parseInt(mode, 8),
      uid: Number(uid),
      gid: Number(gid),
      mtime: Number(mtime),
      link,
    });
  }
  return out;
}

/** The archived path a container path lies under. */
const rootOf = (paths: string[], path: string) => paths.filter((p) => path === p || path.startsWith(`${p}/`)).sort((a, b) => b.length - a.length)[0]!;

/** A container path's name in the archive, as Docker names it: from the archived path's base name. */
function entryName(paths: string[], path: string): string {
  const root = rootOf(paths, path);
  return posix.join(posix.basename(root), posix.relative(root, path));
}
