import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import { isNotFound, type ContainerDetails, type DockerEngine } from '../docker/engine.js';
import { ExitCode, StackvaultError, usageError } from '../errors.js';
import { forwardTo } from '../util/backpressure.js';
import type * as SqliteHost from './sqlite-host.js';
import { type Fingerprint, firstDifference, methodVersions } from './fingerprint.js';
import { inChild } from '../util/child-call.js';
import { interruptSignal } from '../util/interrupt.js';
import { findTarEntry, type BuildEntry } from '../util/tar-build.js';
import { copyFileOut, mountOf, parseOwner, pathKindOf, putFiles, removeFromVolumes, type SqliteHeaderFacts, sqliteHeaderOf } from './container-files.js';
import type { BackupContext, Driver, Snapshot, ThrowawaySpec } from './types.js';
import { outsideVolumes, unsafeDataPath } from './volume-archive.js';
import { recorded } from './details.js';
import { backupThrough } from './snapshot.js';
import { array, count, type Infer, isTrue, matching, object, optional, record, type Schema, string } from '../util/schema.js';
import { NoPreCopy } from './pre-copy.js';
import { DATABASE_FILES, rawFile, type SqlitePreCopy, startSqlitePreCopy } from './sqlite-pre-copy.js';

const FILE_RECORD = object({
  path: string,
  /** Name of the consistent copy inside the artifact tar (`sqlite/<entry>`); also a file name on the host while it is checked. */
  entry: matching(/^[0-9]+-[A-Za-z0-9._-]+$/, 'a name stackvault writes (index-name, no slash)'),
  owner: optional(string),
  mode: optional(matching(/^[0-7]{1,6}$/, 'an octal mode')),
  tables: record(count),
});
export type SqliteFileRecord = Infer<typeof FILE_RECORD>;

/** A database a restore point found not created yet: nothing of it is in the artifact. */
const ABSENT_RECORD = object({ path: string, absent: isTrue });
type AbsentRecord = Infer<typeof ABSENT_RECORD>;
type AnyRecord = SqliteFileRecord | AbsentRecord;

/**
 * A database as recorded: its copy, or (restore points only) absent. An absent record has no
 * `entry` on purpose: a stackvault from before absent records refuses the whole backup with
 * exit 5 ("details.files[0].entry is not ..."), instead of putting back the other files and
 * leaving this one as the restore made it.
 */
const ANY_RECORD: Schema<AnyRecord> = {
  expected: `${FILE_RECORD.expected}, or a record of path, absent`,
  parse: (value, path) => (typeof value === 'object' && value !== null && 'absent' in value ? ABSENT_RECORD.parse(value, path) : FILE_RECORD.parse(value, path)),
};
const isAbsent = (f: AnyRecord): f is AbsentRecord => (f as Partial<AbsentRecord>).absent === true;
const copiesOf = (files: readonly AnyRecord[]) => files.filter((f): f is SqliteFileRecord => !isAbsent(f));

/**
 * Each database's copy in the artifact, where it was, and its tables' row counts at the backup
 * (or, in a restore point, that it did not exist yet); with a pre-copy, how many files were
 * copied while the app was paused (absent in older backups).
 */
const DETAILS = object({ method: optional(string), files: array(ANY_RECORD), preCopy: optional(object({ copiedWhilePaused: count })) });
type Details = Infer<typeof DETAILS>;

/** The `file` part of the fingerprint of a database that does not exist (a hex SHA-256 never reads so). */
const ABSENT = 'absent';
/** A database's files: what a restore writes at a path, and all that putting an absent one back removes. */
const WRITTEN_FILES = ['', '-wal', '-shm', '-journal'] as const;

/** Names an app container's SQLite files; the label claims the container for this driver. */
export const SQLITE_PATHS_LABEL = 'stackvault.sqlite.paths';

export function sqlitePaths(labels: Record<string, string>): string[] {
  const paths = (labels[SQLITE_PATHS_LABEL] ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const bad = paths.find((p) => !p.startsWith('/'));
  if (bad) throw usageError(`${SQLITE_PATHS_LABEL} must list absolute paths; '${bad}' is not.`);
  // Named as the app names its files: '..', '.' or '//' would name them differently for a helper that lists them.
  const odd = paths.find((p) => posix.normalize(p) !== p || p.endsWith('/'));
  if (odd) throw usageError(`${SQLITE_PATHS_LABEL} must list plain paths (no '..', '.', '//' or trailing '/'); '${odd}' is not.`);
  return paths;
}

const entryName = (index: number, path: string) => `${index}-${basename(path).replace(/[^A-Za-z0-9._-]/g, '_')}`;

/**
 * How each method hashes a row; older ones are still computed to check backups whose manifest
 * holds one. sqlite-v3 reads ordinary tables only; v1 and v2 read virtual tables too (see
 * sqlite-host.ts), so a database with a virtual table has other digests under v3.
 */
const METHODS = methodVersions({ 'sqlite-v1': 'sha256', 'sqlite-v2': 'murmur3-128', 'sqlite-v3': 'murmur3-128' });
export const SQLITE_FINGERPRINT_METHOD = METHODS.current;
const { methodFor } = METHODS;
/** Whether a method's digests read virtual tables (those before sqlite-v3 did). */
const readsVirtualTables = (method: string) => method === 'sqlite-v1' || method === 'sqlite-v2';

type HostFunction = { [K in keyof typeof SqliteHost]: (typeof SqliteHost)[K] extends (file: string, ...rest: never[]) => unknown ? K : never }[keyof typeof SqliteHost];

/** At least this long for any call on a database, whatever its size. */
const MIN_DEADLINE_MS = 60_000;
/** Plus this long per MB of the files read (a 240 MB database is checked and digested in a few seconds). */
const DEADLINE_MS_PER_MB = 500;
/**
 * The calls that compact a copy with VACUUM INTO, whose time grows with the square of the
 * schema's entries (SQLite reads the new file's schema again after each table it creates
 * there): 10,000 empty tables took 5.5 s here, 50,000 over the 165 s their 209 MB gave, so
 * such a database could never be backed up. They get, on top, this long per entry squared
 * (ten times what was measured: 55 s more for 10,000 entries, 23 minutes for 50,000).
 */
const COMPACTING: ReadonlySet<HostFunction> = new Set(['checkSqliteCopy', 'checkAndDigest']);
const DEADLINE_MS_PER_ENTRY_SQUARED = 5.5e-4;

/** The child's own JS heap stays small: it streams rows and keeps digests. */
export const SQLITE_CHILD_ARGV = ['--max-old-space-size=128', '--max-semi-space-size=2'];

/** How long a call on a database of `bytes` may take; `schemaEntries` when it compacts the copy. */
export const sqliteDeadlineMs = (bytes: number, schemaEntries?: number) =>
  MIN_DEADLINE_MS + Math.ceil((bytes / 1e6) * DEADLINE_MS_PER_MB) + Math.floor((schemaEntries ?? 0) ** 2 * DEADLINE_MS_PER_ENTRY_SQUARED);

/**
 * Runs one function of sqlite-host.ts on `file` (a database stackvault did not write: a copy of
 * a live app's file, or a backup's, either of which may be hostile) in a child process. Not on
 * the main thread: node:sqlite is synchronous and reading a large database takes seconds, which
 * would stall every other service's stream. Not on a worker thread either: a query that never
 * ends (a hostile schema) cannot stop a thread, but a process is killed at the deadline, when
 * `signal` aborts (Ctrl-C, SIGTERM) and when stackvault exits. Errors name the database.
 */
async function onHost<K extends HostFunction>(
  fn: K,
  { path: originalPath, signal }: { path: string; signal: AbortSignal },
  ...args: Parameters<(typeof SqliteHost)[K]>
): Promise<ReturnType<(typeof SqliteHost)[K]>> {
  // Every host function takes the database's file first: its size (with its -wal and -journal) sets the deadline.
  const file = args[0];
  let bytes = 0;
  for (const suffix of DATABASE_FILES) bytes += (await stat(file + suffix).catch(() => undefined))?.size ?? 0;
  // A compacting call's schema is counted first, under the deadline of the file's size: reading it is linear.
  const timeoutMs = sqliteDeadlineMs(bytes, COMPACTING.has(fn) ? await onHost('schemaEntries', { path: originalPath, signal }, file) : undefined);
  try {
    return await inChild(new URL('./sqlite-host.js', import.meta.url), fn, args, {
      timeoutMs,
      timeoutMessage: `reading ${originalPath} took longer than ${Math.round(timeoutMs / 1000)} s and was stopped (a schema whose reading never ends?)`,
      execArgv: SQLITE_CHILD_ARGV,
      signal,
    });
  } catch (err) {
    if (signal.aborted) throw err;
    const message = (err as Error).message;
    throw new Error(message.includes(originalPath) ? message : `the copy of ${originalPath}: ${message}`);
  }
}

/**
 * SQLite files inside app containers, named by the label stackvault.sqlite.paths. Never a
 * plain copy of a live database, and nothing is ever written into the app's container:
 * each path is first checked to be an existing SQLite file (read through the archive API),
 * then each database and its -wal/-journal are copied out as one set while the container is
 * paused (cgroup freezer): pre-copied while it runs, so that the pause covers only the files
 * changed since (sqlite-pre-copy.ts). The copy is recovered, compacted (VACUUM INTO) and
 * checked on the host with node:sqlite. A frozen db+wal pair is what a crash leaves, which
 * SQLite is built to recover; uncommitted frames are discarded.
 */
export const sqliteDriver: Driver<Details, CheckedCopies> = {
  details: DETAILS,
  name: 'sqlite',
  format: 'tar',
  imageNames: [],
  claimedByLabel: SQLITE_PATHS_LABEL,
  secrets: () => [],

  backup: async (ctx) => backupThrough(await frozenSnapshot(ctx), ctx.output),

  /**
   * Consistent backups: the pre-copy runs before the window; inside it (the app is paused
   * anyway) only what changed since is copied, which fixes the point; recovering, checking
   * and archiving happen afterwards, on the host.
   */
  prepareSnapshot: (ctx) => frozenSnapshot(ctx),

  async plan(engine, container) {
    const paths = sqlitePaths(container.labels);
    const problems: string[] = [];
    for (const p of paths) {
      const facts = await sqliteHeaderOf(engine, container.id, p);
      if (facts !== 'sqlite') problems.push(notADatabase(p, facts));
    }
    return {
      method: 'frozen copy of each database with its -wal (pre-copied while the app runs, so it is paused only to copy what changed), recovered and checked on the host',
      interrupts: 'paused',
      paths,
      warnings: [...problems, ...outsideVolumes(container, paths)],
    };
  },

  /**
   * Stops the app container, replaces each database file with its copy, and writes empty
   * -wal, -shm and -journal files over stale ones (an empty WAL holds no frames; an empty -shm is
   * rebuilt on open), so nothing from after the backup is replayed. A database's directory that
   * is not there (a new volume the app has not filled yet) is made, owned as the database is. A
   * database a restore point recorded as absent is removed, with its -wal, -shm and -journal
   * (the files a restore writes there) and nothing else, by a helper container on its mount.
   * The files are read back before the app starts again; their fingerprint is what was restored.
   */
  async restore({ engine, container, entry, open, withStopped, signal, checked }) {
    const files = recorded(DETAILS, entry).files;
    if (files.length === 0) throw new Error('the backup lists no SQLite files');
    checkRecordedFiles(files, container);
    const byDir = new Map<string, BuildEntry[]>();
    for (const f of copiesOf(files)) {
      const copy = await findTarEntry(open(), `sqlite/${f.entry}`);
      copy.close(); // only the header (size, owner, mode) is needed here
      const owner = parseOwner(f.owner) ?? { uid: copy.uid, gid: copy.gid };
      // Never a setuid, setgid or sticky bit, whatever a manifest says.
      const mode = (f.mode ? parseInt(f.mode, 8) : copy.mode) & 0o777;
      const name = basename(f.path);
      const list = byDir.get(dirname(f.path)) ?? [];
      list.push(
        { path: name, size: copy.size, ...owner, mode, open: async () => (await findTarEntry(open(), `sqlite/${f.entry}`)).stream },
        { path: `${name}-wal`, size: 0, ...owner, mode },
        { path: `${name}-shm`, size: 0, ...owner, mode },
        // An empty journal is not a hot one: nothing from before the restore is rolled back into it.
        { path: `${name}-journal`, size: 0, ...owner, mode },
      );
      byDir.set(dirname(f.path), list);
    }
    const absent = files.filter(isAbsent).flatMap((f) => WRITTEN_FILES.map((suffix) => f.path + suffix));
    return withStopped(async () => {
      for (const [dir, entries] of byDir) await putFilesMakingDir(engine, container.id, dir, entries);
      if (absent.length) await removeFromVolumes(engine, container, absent, 'files');
      return fingerprintLiveFiles(
        engine,
        container.id,
        files.map((f) => f.path),
        false,
        methodFor(entry.fingerprint),
        signal,
        checked,
      );
    });
  },

  /**
   * Before anything changes: the recorded paths must be this container's, and each copy in the
   * backup must be the file the backup recorded (its SHA-256, when a fingerprint was recorded:
   * checked before SQLite reads a byte of it) and a sound database whose rows can be read
   * (integrity_check, row counts and the digests restore will compare, on the host, bounded as
   * onHost says). A corrupt or hostile copy is refused here, with the app still running. The
   * digests are handed to `restore`, which need not read the same bytes again once written.
   */
  async checkRestore({ entry, container, open }) {
    const files = recorded(DETAILS, entry).files;
    checkRecordedFiles(files, container);
    const method = methodFor(entry.fingerprint);
    return withWorkDir(async (work) => {
      const known: CheckedCopies = {};
      for (const f of copiesOf(files)) {
        const local = join(work, f.entry);
        const sha256 = await extractCopy(open, f, local, entry.fingerprint);
        try {
          const { digests } = await onHost('checkBackupCopy', { path: f.path, signal: interruptSignal }, local, f.path, METHODS.itemHash(method), readsVirtualTables(method));
          known[f.path] = { method, sha256, digests };
        } catch (err) {
          if (interruptSignal.aborted) throw new StackvaultError(`Interrupted while checking the backup's copy of ${f.path}; nothing was changed.`, ExitCode.interrupted);
          throw new Error(`${(err as Error).message} (sqlite/${f.entry} in the artifact)`);
        }
      }
      return known;
    });
  },

  async artifactFingerprint({ entry, open, signal }) {
    const files = recorded(DETAILS, entry).files;
    const method = methodFor(entry.fingerprint); // deep verify compares it with the recorded one
    return withWorkDir(async (work) => {
      const parts: Record<string, string> = {};
      for (const f of files) {
        if (isAbsent(f)) {
          parts[`${f.path} file`] = ABSENT;
          continue;
        }
        const local = join(work, f.entry);
        await pipeline((await findTarEntry(open(), `sqlite/${f.entry}`)).stream, createWriteStream(local, { mode: 0o600 }));
        Object.assign(parts, await fileParts(local, f.path, method, signal));
      }
      return { method, parts };
    });
  },

  liveFingerprint: ({ engine, container, entry, expected, signal }) =>
    fingerprintLiveFiles(
      engine,
      container.id,
      recorded(DETAILS, entry).files.map((f) => f.path),
      true,
      methodFor(expected),
      signal,
    ),

  /**
   * SQLite files are self-contained, so they are checked on the host with node:sqlite:
   * integrity_check, row counts, and the content fingerprint when the backup recorded one.
   */
  async deepVerify(ctx) {
    const files = recorded(DETAILS, ctx.entry).files;
    return withWorkDir(async (work) => {
      const seen: Record<string, Record<string, number>> = {};
      for (const f of copiesOf(files)) {
        const local = join(work, f.entry);
        await extractCopy(ctx.open, f, local, ctx.entry.fingerprint);
        const { tables, virtual } = await onHost('checkedTableCounts', { path: f.path, signal: ctx.signal }, local, f.path);
        // Backups before sqlite-v3 counted virtual tables too; their rows are derived, and not read any more.
        const differ = Object.keys({ ...tables, ...f.tables }).filter((t) => tables[t] !== f.tables[t] && !virtual.includes(t));
        if (differ.length) throw new Error(`${f.path}: row counts differ from the backup's for ${differ.join(', ')}`);
        seen[f.path] = tables;
      }
      if (ctx.entry.fingerprint) {
        const difference = firstDifference(ctx.entry.fingerprint, await sqliteDriver.artifactFingerprint!({ ...ctx }));
        if (difference) throw new Error(`the artifact does not hold the content recorded at backup time: ${difference}`);
      }
      const absent = files.filter(isAbsent).map((f) => f.path);
      return { files: seen, ...(absent.length ? { absent } : {}) };
    });
  },

  /**
   * The app's image, not running the app (it would look for its stores under names only its
   * own stack resolves, and write into the databases): a shell keeps it alive. A fresh volume
   * at each recorded database's directory, and the label naming exactly the recorded paths, so
   * the restore writes there and nowhere else. The recorded paths are input: each must be a
   * normalised absolute path outside system directories (the volume would hide them), with no
   * comma (the label's separator), or nothing is started.
   */
  throwaway: (entry) => throwawaySpec(recorded(DETAILS, entry).files),

  async ready(engine, container) {
    if (!container.running) return false;
    const path = sqlitePaths(container.labels)[0]!;
    // sqlite3 creates the file it opens: a database the app has not created yet (or that a
    // restore point put back as absent) stays absent, and running is all there is to see.
    if ((await sqliteHeaderOf(engine, container.id, path)) === 'missing') return true;
    const r = await engine.exec(container.id, ['sqlite3', path, 'PRAGMA quick_check']);
    if (r.exitCode === 126 || r.exitCode === 127) return true; // no sqlite3 in this image: running is all we can see
    return r.exitCode === 0 && r.stdout.trim() === 'ok';
  },
};

/** See `throwaway` above; throws (integrity) on a recorded path it will not create a volume for. */
function throwawaySpec(files: readonly AnyRecord[]): ThrowawaySpec {
  if (files.length === 0) throw new StackvaultError('The backup lists no SQLite files, so there is nothing to drill.', ExitCode.integrity);
  const paths = files.map((f) => f.path);
  for (const path of paths) {
    const why =
      path.trim() !== path || [...path].some((c) => c === ',' || c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)
        ? 'it holds a comma, a control character or surrounding blanks'
        : (unsafeDataPath(path) ?? (posix.dirname(path) === '/' ? 'a file in / (its directory would be a volume over the whole file system)' : unsafeDataPath(posix.dirname(path))));
    if (why) throw new StackvaultError(`The backup records the SQLite file ${JSON.stringify(path)}, which a throwaway copy will not hold (${why}); nothing was started.`, ExitCode.integrity);
  }
  if (new Set(paths).size !== paths.length) throw new StackvaultError('The backup records one SQLite file twice; nothing was started.', ExitCode.integrity);
  // Nothing at the paths, as on a new host before the app first ran: the restore point records
  // them as absent, as for any app that has not created its databases yet. A shell waits.
  const script = 'trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done';
  return {
    volumes: [...new Set(paths.map((p) => posix.dirname(p)))].sort(),
    entrypoint: ['sh', '-c', script],
    // Root, as a fresh volume's directory may belong to root whatever user the app runs as.
    user: '0',
    noHealthcheck: true,
    labels: { [SQLITE_PATHS_LABEL]: paths.join(',') },
  };
}

/**
 * A restore writes only the files this container is labelled with, and only under safe names;
 * it removes a database recorded as absent only where a helper can: on a volume or bind mount.
 */
function checkRecordedFiles(files: AnyRecord[], container: ContainerDetails): void {
  const labelled = sqlitePaths(container.labels);
  const stray = files.find((f) => !labelled.includes(f.path));
  if (stray) throw new Error(`the backup records ${String(stray.path)}, which is not among this container's ${SQLITE_PATHS_LABEL} (${labelled.join(', ') || 'none'}); refusing to restore`);
  const odd = copiesOf(files).find((f) => !/^[0-9]+-[A-Za-z0-9._-]+$/.test(String(f.entry)));
  if (odd) throw new Error(`the backup names its copy of ${odd.path} '${String(odd.entry)}', which is not a name stackvault writes; refusing to restore`);
  const unmounted = files.find((f) => isAbsent(f) && !mountOf(container, f.path));
  if (unmounted) throw new Error(`the backup records ${unmounted.path} as absent, and it is not on a volume or bind mount of ${container.name}, so it could not be removed; refusing to restore`);
}

/** Why a labelled path that is not an existing SQLite database is refused. */
function notADatabase(path: string, facts: Exclude<SqliteHeaderFacts, 'sqlite'>): string {
  const label = `check the ${SQLITE_PATHS_LABEL} label`;
  return {
    missing: `${path} does not exist in the container (${label}); nothing was created`,
    'not a file': `${path} is not a regular file (${label})`,
    empty: `${path} is an empty file, not a SQLite database (${label})`,
    other: `${path} is not a SQLite database (it does not start with "SQLite format 3"); ${label}`,
  }[facts];
}

/**
 * Each labelled path must be an existing SQLite database (checked without writing anything),
 * except, in a restore point, one that does not exist yet, on a volume or bind mount: returned
 * as absent. Off every mount it is refused: no helper could remove the file a restore writes
 * there from the stopped container, so the restore could not be undone.
 */
async function absentPaths(ctx: BackupContext, paths: readonly string[]): Promise<string[]> {
  const absent: string[] = [];
  for (const path of paths) {
    const facts = await sqliteHeaderOf(ctx.engine, ctx.container.id, path);
    if (facts === 'sqlite') continue;
    if (facts !== 'missing' || !ctx.restorePoint) throw new Error(notADatabase(path, facts));
    if (!mountOf(ctx.container, path)) {
      throw new Error(
        `${path} does not exist in the container yet, and is not on a volume or bind mount, so a restore there could not be undone (no helper can remove a file from a stopped container's own layer): let the app create it first, or mount a volume at ${posix.dirname(path)}`,
      );
    }
    absent.push(path);
  }
  return absent;
}

/**
 * putFiles into `dir`, making it first when it is not there (a new volume's subdirectory the app
 * has not made yet), with its missing parents, owned by the first entry's owner, mode 0755: the
 * app, often not root, must be able to create its -wal and -journal beside the database. An
 * existing directory is never touched: only what is missing is made, never over a dangling link.
 */
async function putFilesMakingDir(engine: DockerEngine, containerId: string, dir: string, entries: BuildEntry[]): Promise<void> {
  try {
    await putFiles(engine, containerId, dir, entries);
  } catch (err) {
    if (!isNotFound(err) || dir === '/') throw err;
    // Something stands there that does not lead to a directory: a symbolic link to one that is
    // not there (a disk not mounted yet). The engine would remove the link to make the directory.
    if ((await pathKindOf(engine, containerId, dir)) !== 'missing') {
      throw new Error(`${dir} is a symbolic link to a directory that does not exist; refusing to replace it with a directory (create its target or mount it first)`);
    }
    const { uid, gid } = entries[0]!;
    await putFilesMakingDir(engine, containerId, posix.dirname(dir), [{ path: posix.basename(dir), type: 'Directory', size: 0, uid, gid, mode: 0o755 }]);
    await putFiles(engine, containerId, dir, entries);
  }
}

/**
 * Writes a database's copy out of the artifact to `local` and returns its SHA-256. When the
 * backup recorded a fingerprint, the copy must be the file it recorded (the `file` part), or it
 * is refused before SQLite opens it: a copy swapped in the artifact (a hostile schema, random
 * bytes) is caught without reading it as a database.
 */
async function extractCopy(open: () => Readable, f: SqliteFileRecord, local: string, fingerprint: Fingerprint | undefined): Promise<string> {
  const sha = createHash('sha256');
  await pipeline(
    (await findTarEntry(open(), `sqlite/${f.entry}`)).stream,
    async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) {
        sha.update(chunk);
        yield chunk;
      }
    },
    createWriteStream(local, { mode: 0o600 }),
  );
  const hex = sha.digest('hex');
  const want = fingerprint?.parts[`${f.path} file`];
  if (want !== undefined && want !== hex) {
    throw new Error(`the copy of ${f.path} in the artifact (sqlite/${f.entry}) is not the file the backup recorded (SHA-256 ${hex.slice(0, 12)}..., recorded ${want.slice(0, 12)}...)`);
  }
  return hex;
}

async function withWorkDir<T>(work: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'stackvault-sqlite-'));
  try {
    return await work(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** What checkRestore learned of each recorded database (by its path): its copy's digests. */
type CheckedCopies = Record<string, KnownDigests>;

/** A database's digests under a method, as its file's sha256 gave them (what checkRestore learned of a backup's copy). */
type KnownDigests = { method: string; sha256: string; digests: Record<string, string> };

/**
 * Fingerprint parts of one clean database file: its bytes and every table's rows. When `known`
 * holds the digests of a file with the same bytes, its digests are those: the file is not read
 * by SQLite again.
 */
async function fileParts(file: string, path: string, method: string, signal: AbortSignal, known?: KnownDigests): Promise<Record<string, string>> {
  const sha = createHash('sha256');
  const digest = () => onHost('sqliteTableDigests', { path, signal }, file, METHODS.itemHash(method), readsVirtualTables(method));
  let tables: Record<string, string>;
  let hex: string;
  if (known?.method === method) {
    await pipeline(createReadStream(file), sha);
    hex = sha.digest('hex');
    tables = hex === known.sha256 ? known.digests : await digest();
  } else {
    [, tables] = await Promise.all([pipeline(createReadStream(file), sha), digest()]);
    hex = sha.digest('hex');
  }
  const parts: Record<string, string> = { [`${path} file`]: hex };
  for (const [name, digest] of Object.entries(tables)) parts[`${path} ${name}`] = digest;
  return parts;
}

/**
 * Reads databases out of a container (stopped right after a restore, or running) and
 * fingerprints them. A running database is copied with its -wal and recovered first; its
 * file bytes then differ from any backup, so only its tables are compared.
 */
async function fingerprintLiveFiles(engine: DockerEngine, containerId: string, paths: string[], running: boolean, method: string, signal: AbortSignal, known?: CheckedCopies): Promise<Fingerprint> {
  return withWorkDir(async (work) => {
    const parts: Record<string, string> = {};
    for (const [i, path] of paths.entries()) {
      const raw = join(work, `${i}`);
      // Not there: read as absent (what a restore point recorded of a database not made yet).
      if (!(await copyOut(engine, containerId, path, raw, running ? ['', '-wal'] : [''], true))) {
        parts[`${path} file`] = ABSENT;
        continue;
      }
      if (!running) {
        Object.assign(parts, await fileParts(raw, path, method, signal, known?.[path]));
        continue;
      }
      const { digests } = await onHost('checkAndDigest', { path, signal }, raw, join(work, `${i}.clean`), path, METHODS.itemHash(method), readsVirtualTables(method));
      for (const [name, digest] of Object.entries(digests)) parts[`${path} ${name}`] = digest;
    }
    return { method, parts };
  });
}

/**
 * Copies a file (and the given companions that exist) out of a container through the archive
 * API; with `mayBeAbsent`, a file that is not there gives undefined (and no companions are read).
 */
async function copyOut(engine: DockerEngine, containerId: string, path: string, target: string, suffixes: readonly string[], mayBeAbsent = false): Promise<CopyHeader> {
  let header: CopyHeader;
  for (const suffix of suffixes) {
    const copied = await copyFileOut(engine, containerId, path + suffix, target + suffix, { mayBeMissing: suffix !== '' || mayBeAbsent }); // no WAL or journal: fine
    if (!suffix) {
      if (!copied && mayBeAbsent) return undefined;
      header = copied;
    }
  }
  return header;
}

type CopyHeader = { uid: number; gid: number; mode: number } | undefined;

/**
 * The frozen copy as a Snapshot: set up (and pre-copied) while the app runs, fixed while it is
 * paused (by `fix` itself, or by a consistent backup's window), archived after it runs again.
 */
async function frozenSnapshot(ctx: BackupContext): Promise<Snapshot<Details>> {
  const labelled = sqlitePaths(ctx.container.labels);
  if (labelled.length === 0) throw usageError(`Container ${ctx.container.name} has no ${SQLITE_PATHS_LABEL} label naming its database files.`);
  const absent = await absentPaths(ctx, labelled);
  const paths = labelled.filter((p) => !absent.includes(p));
  // Still not there at the point, or the point would claim absent what it did not copy.
  const stillAbsent = async () => {
    for (const path of absent) {
      if ((await sqliteHeaderOf(ctx.engine, ctx.container.id, path)) !== 'missing') throw new Error(`${path} was created while the restore point was taken; run the restore again`);
    }
  };
  // Raw copies are staged in the service's scratch directory, next to the backup, when there is one.
  const work = await mkdtemp(join(ctx.scratchDir ?? tmpdir(), 'stackvault-sqlite-'));
  const raw = join(work, 'raw');
  let pre: SqlitePreCopy | undefined;
  try {
    await mkdir(raw);
    if (paths.length) pre = await preCopy(ctx, paths, raw);
  } catch (err) {
    await rm(work, { recursive: true, force: true });
    throw err;
  }
  let headers: CopyHeader[] | undefined;
  let caughtUp: SqlitePreCopy | undefined;
  let copiedWhilePaused: number | undefined;
  return {
    async fix() {
      // Nothing to copy: no pause, only the check that nothing appeared.
      if (paths.length === 0) {
        await stillAbsent();
        headers = [];
        return;
      }
      await ctx.withPaused(async () => {
        await stillAbsent();
        if (pre) {
          try {
            copiedWhilePaused = await pre.catchUp();
            caughtUp = pre;
            return;
          } catch (err) {
            if (!(err instanceof NoPreCopy) || ctx.signal.aborted) throw err;
            ctx.log(`copied while paused (no pre-copy: ${err.message})`);
          }
        }
        headers = await copyFrozen(ctx.engine, ctx.container.id, paths, raw);
      });
    },
    async backup(output) {
      if (caughtUp) {
        await caughtUp.collect();
        headers = caughtUp.headers;
      }
      if (!headers) throw new Error('the snapshot point was not fixed');
      const { files: copies, fingerprint } = await archiveCopies(output, paths, work, headers, ctx.recordFingerprint !== false, ctx.signal);
      // In the label's order; a database not made yet is recorded as absent (restore points only).
      const files = labelled.map((path): AnyRecord => (absent.includes(path) ? { path, absent: true } : copies.find((f) => f.path === path)!));
      for (const path of absent) {
        if (fingerprint) fingerprint.parts[`${path} file`] = ABSENT;
        ctx.log(`${path} does not exist yet: recorded as absent, so putting this restore point back removes the file a restore writes there`);
      }
      // A database in the container's own layer is gone when the container is recreated, as the files driver warns for any path.
      // In the entry only, not logged too: the output shows an entry's warnings under its line.
      const warnings = outsideVolumes(ctx.container, paths);
      return {
        ...(warnings.length ? { warnings } : {}),
        details: { method: 'frozen copy, recovered on host', files, ...(copiedWhilePaused !== undefined ? { preCopy: { copiedWhilePaused } } : {}) },
        ...(fingerprint ? { fingerprint } : {}),
      };
    },
    async release() {
      await pre?.dispose();
      await rm(work, { recursive: true, force: true });
    },
  };
}

/** The pre-copy, or undefined (after saying why) when the files are to be copied whole while the app is paused. */
async function preCopy(ctx: BackupContext, paths: string[], raw: string): Promise<SqlitePreCopy | undefined> {
  try {
    // Encrypted artifacts: raw bytes are not staged on disk before the pause, as for every pre-copy.
    if (!ctx.scratchDir) throw new NoPreCopy('artifacts are encrypted, so nothing is staged before the pause');
    return await startSqlitePreCopy(ctx.engine, ctx.container, paths, raw, ctx.signal);
  } catch (err) {
    if (!(err instanceof NoPreCopy) || ctx.signal.aborted) throw err;
    ctx.log(`copied while paused (no pre-copy: ${err.message})`);
    return undefined;
  }
}

/** Every database with its -wal and -journal into `raw`, as they are now (the caller has the app paused). */
async function copyFrozen(engine: DockerEngine, containerId: string, paths: string[], raw: string): Promise<CopyHeader[]> {
  // Nothing of a pre-copy that could not catch up may stay: a WAL staged then and gone now would be replayed.
  await rm(raw, { recursive: true, force: true });
  await mkdir(raw);
  const headers: CopyHeader[] = [];
  for (const [i, path] of paths.entries()) headers[i] = await copyOut(engine, containerId, path, rawFile(raw, i, ''), DATABASE_FILES);
  return headers;
}

/**
 * Recovers and checks the frozen copies on the host, then writes them as the artifact's tar
 * while (unless told not to) their rows are fingerprinted beside it, in a child process: the
 * archive no longer waits for the fingerprint (`create --only app` of 225 MB: the fingerprint
 * is about 3 s of it).
 */
async function archiveCopies(
  output: BackupContext['output'],
  paths: string[],
  work: string,
  headers: CopyHeader[],
  withFingerprint: boolean,
  signal: AbortSignal,
): Promise<{ files: SqliteFileRecord[]; fingerprint?: Fingerprint }> {
  const raw = join(work, 'raw');
  const out = join(work, 'sqlite');
  await mkdir(out);
  const files: SqliteFileRecord[] = [];
  for (const [i, path] of paths.entries()) {
    const entry = entryName(i, path);
    const h = headers[i];
    files.push({
      path,
      entry,
      tables: await onHost('checkSqliteCopy', { path, signal }, rawFile(raw, i, ''), join(out, entry), path),
      ...(h ? { owner: `${h.uid}:${h.gid}`, mode: h.mode.toString(8) } : {}),
    });
  }
  const fingerprinted = (async () => {
    if (!withFingerprint) return undefined;
    const parts: Record<string, string> = {};
    for (const f of files) Object.assign(parts, await fileParts(join(out, f.entry), f.path, SQLITE_FINGERPRINT_METHOD, signal)); // one child at a time
    return { method: SQLITE_FINGERPRINT_METHOD, parts };
  })();
  // node-tar reads each file in blocks of up to 16 MB, several files at once: a 240 MB database
  // held 50 MB of buffers. 1 MB blocks, one file at a time, keep the run's memory flat.
  // The files by name, not the directory's listing: whatever SQLite may put beside a copy while
  // the fingerprint reads it (a -shm) stays out of the archive.
  const names = ['sqlite', ...files.map((f) => `sqlite/${f.entry}`)];
  const archived = pipeline(tar.create({ cwd: work, portable: true, maxReadSize: 1 << 20, jobs: 1, noDirRecurse: true }, names), forwardTo(output));
  const [fingerprint, archive] = await Promise.allSettled([fingerprinted, archived]);
  if (archive.status === 'rejected') throw archive.reason;
  if (fingerprint.status === 'rejected') throw fingerprint.reason;
  return { files, ...(fingerprint.value ? { fingerprint: fingerprint.value } : {}) };
}
