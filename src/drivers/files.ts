import { existsSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import type { ReadEntry } from 'tar';
import type { ContainerDetails, DockerEngine, Mount } from '../docker/engine.js';
import { booleanLabel, composeConfigFiles } from '../docker/labels.js';
import { TarChecker } from '../util/tar-stream.js';
import { pipeline } from 'node:stream/promises';
import { fingerprintTar } from './tar-fingerprint.js';
import { planMounts, type PlannedMount } from './mount-plan.js';
import { SQLITE_HEADER, pathKindOf, sqliteHeaderOf } from './container-files.js';
import type { BackupContext, Driver, Peer, Snapshot } from './types.js';
import {
  archiveSnapshot,
  checkLabelledPaths,
  checkRestorable,
  labelledPaths,
  planDataPaths,
  readBack,
  recordedEntryRule,
  restoreDataPaths,
  STOP_LABEL,
  unsafeThrowawayPath,
  VOLUME_SHAPE,
} from './volume-archive.js';
import { recorded } from './details.js';
import { otherStoreOf, otherStoreWarning } from './other-stores.js';
import { backupThrough } from './snapshot.js';
import { array, boolean, type Infer, object, optional, string } from '../util/schema.js';

/** An archive of data paths, paused rather than stopped, with the SQLite files found in source trees. */
const DETAILS = object({ ...VOLUME_SHAPE, paused: optional(boolean), sqliteFiles: optional(array(string)) });

/** Directories of a source tree that hold dependencies and history, not an app's data. */
const NOT_DATA_DIRS = new Set(['node_modules', '.git', '__pycache__', '.venv', 'venv', '.cache', '.npm', 'site-packages']);

/**
 * The data of an app container that is not a datastore: its volumes and read-write data
 * binds (see mount-plan.ts for what counts), and the SQLite databases found by their header
 * in the project's own source tree. The container is paused (cgroup freezer) while they are
 * copied, so files written together are copied together, as a crash would leave them; SQLite
 * recovers such a copy on open. A restore stops the app and puts the files back exactly.
 */
export const filesDriver: Driver<Infer<typeof DETAILS>, string[]> = {
  name: 'files',
  details: DETAILS,
  format: 'tar',
  entryRule: recordedEntryRule,
  imageNames: [],
  secrets: () => [],

  leftover(container, peers) {
    const plan = mountPlanOf(container, peers);
    if (plan.some((p) => p.role !== 'skipped')) return undefined;
    return plan.length ? `no data mounts (${plan.map((p) => `${p.destination}: ${p.why}`).join('; ')})` : 'no mounts: nothing of it outlives the container';
  },

  backup: async (ctx) => backupThrough(await filesSnapshot(ctx), ctx.output),

  /**
   * Consistent backups: what to copy is found, and the pre-copy staged, before the window (the
   * app runs, so commands work in it); in the window the app is paused anyway and only its
   * changed files are copied.
   */
  prepareSnapshot: (ctx) => filesSnapshot(ctx),

  async plan(engine, container, peers) {
    const labelled = labelledPaths(container);
    const plan = mountPlanOf(container, peers);
    const data = labelled ?? plan.filter((p) => p.role === 'data').map((p) => p.destination);
    const sqlite = labelled
      ? []
      : await sqliteInSourceTrees(
          engine,
          container.id,
          plan.filter((p) => p.role === 'source-tree'),
        );
    const present = async (paths: string[]) => (await Promise.all(paths.map(async (p) => ((await pathKindOf(engine, container.id, p)) === 'missing' ? [] : [p])))).flat();
    const withCompanions = labelled ? [...labelled, ...(await present((await labelledSqlite(engine, container, labelled)).companions))] : [...data, ...sqlite];
    const planned = await planDataPaths(engine, container, withCompanions, 'paused', otherStoreWarnings(container));
    return { ...planned, skipped: plan.filter((p) => p.role !== 'data').map((p) => ({ path: p.destination, why: p.why })) };
  },

  /** Returns the paths it judged writable, so the restore (and its rollback) writes exactly those. */
  checkRestore: async (ctx) => {
    const paths = await currentPaths(ctx.engine, ctx.container, recorded(DETAILS, ctx.entry).sqliteFiles);
    await checkRestorable(ctx, paths);
    return paths;
  },
  /**
   * With the paths checkRestore judged before anything changed: a rollback must not ask the
   * container again, where a failed restore may have turned a source-tree database into a
   * directory, which is then "not a database" and the restore point refused.
   */
  restore: async (ctx) => {
    const { sqliteFiles } = recorded(DETAILS, ctx.entry);
    return restoreDataPaths(ctx, ctx.checked ?? (await currentPaths(ctx.engine, ctx.container, sqliteFiles)), companions(sqliteFiles));
  },
  artifactFingerprint: ({ open }) => fingerprintTar(open()),
  liveFingerprint: ({ engine, container, entry }) => readBack({ engine, container }, recorded(DETAILS, entry).paths),

  /** The archive's files must be the ones recorded at backup time. */
  async deepVerify(ctx) {
    const fp = await fingerprintTar(ctx.open());
    const files = Object.values(fp.parts).reduce((n, v) => n + Number(/n=(\d+)/.exec(v)?.[1] ?? 0), 0);
    if (ctx.entry.fingerprint && JSON.stringify(ctx.entry.fingerprint.parts) !== JSON.stringify(fp.parts)) throw new Error('the archive does not hold the files recorded at backup time');
    return { entries: files };
  },
  /**
   * The app's image with a fresh volume at each recorded path, kept alive by a shell instead of
   * the app (which would look for its stores under names only its own stack resolves).
   */
  throwaway: (entry) => ({
    volumes: recorded(DETAILS, entry).paths.map((p) => {
      const why = unsafeThrowawayPath(p);
      if (why) throw new Error(`the backup records the path ${p}, which is ${why}; a drill does not mount a volume there`);
      return p;
    }),
    entrypoint: ['sh', '-c', 'trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done'],
    noHealthcheck: true,
  }),
  ready: async (_engine, container) => container.running,
};

/** A datastore stackvault has no driver for (ClickHouse, Elasticsearch, MongoDB, ...) is copied as files: said, never a bare ✅. */
function otherStoreWarnings(container: ContainerDetails): string[] {
  const store = otherStoreOf(container);
  return store ? [otherStoreWarning(store, booleanLabel(container, STOP_LABEL) === false)] : [];
}

function mountPlanOf(container: ContainerDetails, peers: readonly Peer[] = []): PlannedMount[] {
  const configFiles = composeConfigFiles(container.labels);
  // A .git beside the data can only be seen when stackvault runs on the Docker host itself.
  const gitTrees = container.mounts.filter((m) => m.type === 'bind' && existsSync(join(m.source, '.git'))).map((m) => m.source);
  const planned = planMounts(container.mounts, { configFiles, gitTrees }).map((p) => {
    const mount = container.mounts.find((m) => m.destination === p.destination)!;
    const owner = p.role === 'skipped' ? undefined : ownerOf(mount, container, peers);
    return owner ? { ...p, role: 'skipped' as const, why: owner } : p;
  });
  // A data mount inside another is archived with the outer one (the archive API reads through it).
  const data = planned.filter((p) => p.role === 'data').map((p) => p.destination);
  return planned.map((p) => {
    const outer = p.role === 'data' ? data.find((d) => p.destination.startsWith(`${d}/`)) : undefined;
    return outer ? { ...p, role: 'skipped' as const, why: `inside ${outer}, archived with it` } : p;
  });
}

/**
 * A mount shared by several containers is backed up once: by the store's server when one
 * mounts it, else by the first app container (by name) that mounts it. Returns why this
 * container leaves it to another, or undefined when it is its own.
 */
function ownerOf(mount: Mount, container: ContainerDetails, peers: readonly Peer[]): string | undefined {
  const same = (m: Mount) => m.type === mount.type && (mount.type === 'volume' ? Boolean(mount.name) && m.name === mount.name : m.source === mount.source);
  const sharers = peers.filter((p) => p.container.mounts.some(same));
  const server = sharers.find((p) => p.driver !== '' && p.driver !== filesDriver.name);
  if (server) return `shared with ${server.container.name}, whose ${server.driver} backup holds it`;
  const first = sharers
    .filter((p) => p.driver === filesDriver.name)
    .map((p) => p.container.name)
    .sort()[0];
  return first !== undefined && first < container.name ? `shared with ${first}, backed up there` : undefined;
}

/**
 * Paths a restore may write for this container now: its data mounts, and those SQLite files
 * the backup names in its source trees that are SQLite databases there now (with their -wal
 * and -journal): a crafted manifest cannot name a script or a git hook as "a database".
 */
async function currentPaths(engine: DockerEngine, container: ContainerDetails, sqliteFiles: readonly string[] = []): Promise<string[]> {
  const plan = mountPlanOf(container);
  const files = sqliteFiles;
  const inSourceTree = files.filter((f) => plan.some((p) => p.role === 'source-tree' && f.startsWith(`${p.destination}/`)));
  const databases: string[] = [];
  for (const f of inSourceTree.filter((x) => !/-(wal|journal)$/.test(x))) {
    if (await isSqliteNow(engine, container.id, f)) databases.push(f);
  }
  const companionsOk = inSourceTree.filter((f) => /-(wal|journal)$/.test(f) && databases.includes(f.replace(/-(wal|journal)$/, '')));
  const labelled = labelledPaths(container);
  // The -wal and -journal of a labelled database: beside a path that is a SQLite database now,
  // or that is not there at all (a recreated container), never beside a script or a directory.
  const labelledCompanions: string[] = [];
  for (const f of files.filter((x) => /-(wal|journal)$/.test(x))) {
    const db = f.replace(/-(wal|journal)$/, '');
    if (!labelled?.includes(db) || labelled.includes(f)) continue;
    const kind = await pathKindOf(engine, container.id, db);
    if (kind === 'sqlite' || kind === 'missing') labelledCompanions.push(f);
  }
  return [...(labelled ?? plan.filter((p) => p.role === 'data').map((p) => p.destination)), ...databases, ...companionsOk, ...labelledCompanions];
}

const isSqliteNow = async (engine: DockerEngine, containerId: string, path: string) => (await sqliteHeaderOf(engine, containerId, path).catch(() => 'missing')) === 'sqlite';

/**
 * The SQLite databases among the labelled paths (regular files with SQLite's header; the label
 * is checked first, before anything is paused), and the -wal and -journal each may have, to be
 * copied with it in the same pause. They are asked for whether or not they exist now: a WAL
 * may appear before the pause and is part of the database's state; one that is not there then
 * is left out of the copy and the record.
 */
async function labelledSqlite(engine: DockerEngine, container: ContainerDetails, labelled: string[]): Promise<{ databases: string[]; companions: string[] }> {
  const kinds = await checkLabelledPaths(engine, container, labelled);
  const databases = labelled.filter((p) => kinds.get(p) === 'sqlite');
  const companions = databases.flatMap((db) => [`${db}-wal`, `${db}-journal`]).filter((c) => !labelled.includes(c));
  return { databases, companions };
}

/** Source-tree SQLite files whose last name no data path or earlier file has, and the others. */
function distinctNames(data: string[], files: string[]): { kept: string[]; clashes: string[] } {
  const names = new Set(data.map((d) => posix.basename(d)));
  const kept: string[] = [];
  const clashes: string[] = [];
  for (const f of files.filter((x) => !/-(wal|journal)$/.test(x))) {
    const base = posix.basename(f);
    if (names.has(base)) clashes.push(f);
    else {
      names.add(base);
      kept.push(f);
    }
  }
  // A -wal or -journal goes with its database.
  const companions = files.filter((x) => /-(wal|journal)$/.test(x) && kept.includes(x.replace(/-(wal|journal)$/, '')));
  return { kept: [...kept, ...companions].sort(), clashes };
}

/** A restored SQLite file must not meet a -wal or -shm from after the backup. */
function companions(sqliteFiles: readonly string[] = []): string[] {
  const files = sqliteFiles.filter((f) => !/-(wal|journal)$/.test(f));
  return files.flatMap((f) => [`${f}-wal`, `${f}-shm`, `${f}-journal`]);
}

/**
 * SQLite databases in source-tree mounts, found by their 16-byte header as the tree streams
 * by (dependency folders skipped), with their -wal or -journal when present.
 */
async function sqliteInSourceTrees(engine: DockerEngine, containerId: string, trees: PlannedMount[]): Promise<string[]> {
  const found: string[] = [];
  for (const tree of trees) {
    const names: string[] = [];
    const checker = new TarChecker((e: ReadEntry) => {
      const rel = e.path.replace(/^\.\//, '').split('/').slice(1);
      if (e.type !== 'File' || rel.some((part) => NOT_DATA_DIRS.has(part))) return;
      const file = posix.join(tree.destination, ...rel);
      if (/-(wal|journal)$/.test(file)) {
        names.push(file);
        return;
      }
      let head = Buffer.alloc(0);
      e.on('data', (c: Buffer) => {
        if (head.length < 16) head = Buffer.concat([head, c]).subarray(0, 16);
      });
      e.on('end', () => {
        if (head.equals(SQLITE_HEADER)) found.push(file);
      });
    });
    await pipeline((await engine.getArchive(containerId, tree.destination)) as Readable, checker);
    found.push(...names.filter((n) => found.includes(n.replace(/-(wal|journal)$/, ''))));
  }
  return [...new Set(found)].sort();
}

/** The app data's copy as a Snapshot: found and pre-copied now, copied while paused in `fix`, assembled in `backup`. */
async function filesSnapshot(ctx: BackupContext): Promise<Snapshot<Infer<typeof DETAILS>>> {
  const labelled = labelledPaths(ctx.container);
  const plan = mountPlanOf(ctx.container, ctx.peers);
  // A labelled SQLite database takes its -wal and -journal with it: without them a WAL
  // database's copy can hold none of its recent rows.
  const labelledDbs = labelled ? await labelledSqlite(ctx.engine, ctx.container, labelled) : undefined;
  const data = labelled ? [...labelled, ...labelledDbs!.companions] : plan.filter((p) => p.role === 'data').map((p) => p.destination);
  const found = labelled
    ? []
    : await sqliteInSourceTrees(
        ctx.engine,
        ctx.container.id,
        plan.filter((p) => p.role === 'source-tree'),
      );
  // One archive keeps paths apart by their last name: a second database of the same name is
  // left out, and said so, rather than failing the whole service.
  const { kept: sqlite, clashes } = labelledDbs ? { kept: [...labelledDbs.databases, ...labelledDbs.companions], clashes: [] } : distinctNames(data, found);
  const paths = labelledDbs ? data : [...data, ...sqlite];
  if (paths.length === 0) throw new Error('it has no data mounts and no SQLite database in its source tree');
  for (const c of clashes) ctx.log(`warning: ${c} is not backed up: another backed-up path has the same name (label stackvault.paths to choose)`);
  const skipped = [
    ...plan.filter((p) => p.role !== 'data').map((p) => ({ path: p.destination, why: p.why })),
    ...clashes.map((c) => ({ path: c, why: 'a SQLite file whose name another backed-up path already has' })),
  ];
  const hot = booleanLabel(ctx.container, STOP_LABEL) === false;
  const mayVanish = sqlite.filter((f) => /-(wal|journal)$/.test(f)); // may be checkpointed away before the copy
  const snapshot = await archiveSnapshot({ ...ctx, withStopped: hot ? (w) => w() : ctx.withPaused }, paths, {
    mayVanish,
    down: 'paused',
    labelChecked: Boolean(labelled),
    // An app is one of the writers a consistent backup's window holds paused: its changed files are copied before the window closes.
    holdEndsWithFix: true,
  });
  return {
    ...snapshot,
    async backup(output) {
      const outcome = await snapshot.backup(output);
      // In the entry only, as archiveSnapshot's own: the output shows an entry's warnings under its line.
      const warnings = [...(outcome.warnings ?? []), ...otherStoreWarnings(ctx.container)];
      return { ...outcome, ...(warnings.length ? { warnings } : {}), details: { ...(outcome.details ?? { paths: [] }), stopped: false, paused: !hot, sqliteFiles: sqlite }, skipped };
    },
  };
}
