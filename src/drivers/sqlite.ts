import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import { LABELS } from '../core/selection.js';
import { usageError } from '../errors.js';
import { concatTars } from '../util/tar-stream.js';
import { forwardTo } from '../util/backpressure.js';
import { execChecked } from './exec.js';
import { checkedTableCounts, checkSqliteCopy } from './sqlite-host.js';
import { findTarEntry, type BuildEntry } from '../util/tar-build.js';
import { parseOwner, putFiles } from './container-files.js';
import type { BackupContext, Driver } from './types.js';

export interface SqliteFileRecord {
  path: string;
  /** Name of the consistent copy inside the artifact tar (`sqlite/<entry>`). */
  entry: string;
  owner?: string;
  mode?: string;
  tables: Record<string, number>;
}

export function sqlitePaths(labels: Record<string, string>): string[] {
  const paths = (labels[LABELS.sqlitePaths] ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  const bad = paths.find((p) => !p.startsWith('/'));
  if (bad) throw usageError(`${LABELS.sqlitePaths} must list absolute paths; '${bad}' is not.`);
  return paths;
}

const entryName = (index: number, path: string) => `${index}-${basename(path).replace(/[^A-Za-z0-9._-]/g, '_')}`;

/**
 * SQLite files inside app containers, named by the label stackvault.sqlite.paths. Never a
 * plain copy of a live database:
 *  - the container has `sqlite3`: `.backup` (SQLite's online backup API) into a temporary
 *    directory in the container, `PRAGMA integrity_check` on the copy, then the archive API;
 *  - it has not: the container is paused (cgroup freezer) while the database and its -wal
 *    file are copied as one set, then the copy is recovered, checked and compacted on the
 *    host with node:sqlite. A frozen db+wal pair is what a crash leaves, which SQLite is
 *    built to recover; uncommitted WAL frames are discarded.
 */
export const sqliteDriver: Driver = {
  name: 'sqlite',
  format: 'tar',
  imageNames: [],
  secrets: () => [],

  async backup(ctx) {
    const paths = sqlitePaths(ctx.container.labels);
    if (paths.length === 0) throw usageError(`Container ${ctx.container.name} has no ${LABELS.sqlitePaths} label naming its database files.`);
    const hasCli = (await ctx.engine.exec(ctx.container.id, ['sqlite3', '-version'])).exitCode === 0;
    const files = hasCli ? await backupInside(ctx, paths) : await backupFrozen(ctx, paths);
    return { details: { method: hasCli ? 'sqlite3 .backup in container' : 'frozen copy, recovered on host', files } };
  },

  /**
   * Stops the app container, replaces each database file with its copy, and writes empty
   * -wal and -shm files over stale ones (an empty WAL holds no frames; an empty -shm is
   * rebuilt on open), so nothing from after the backup is replayed. Starts it again.
   */
  async restore({ engine, container, entry, open, withStopped }) {
    const files = (entry.details?.files as SqliteFileRecord[] | undefined) ?? [];
    if (files.length === 0) throw new Error('the backup lists no SQLite files');
    const byDir = new Map<string, BuildEntry[]>();
    for (const f of files) {
      const copy = await findTarEntry(open(), `sqlite/${f.entry}`);
      copy.close(); // only the header (size, owner, mode) is needed here
      const owner = parseOwner(f.owner) ?? { uid: copy.uid, gid: copy.gid };
      const mode = f.mode ? parseInt(f.mode, 8) : copy.mode;
      const name = basename(f.path);
      const list = byDir.get(dirname(f.path)) ?? [];
      list.push(
        { path: name, size: copy.size, ...owner, mode, open: async () => (await findTarEntry(open(), `sqlite/${f.entry}`)).stream },
        { path: `${name}-wal`, size: 0, ...owner, mode },
        { path: `${name}-shm`, size: 0, ...owner, mode },
      );
      byDir.set(dirname(f.path), list);
    }
    await withStopped(async () => {
      for (const [dir, entries] of byDir) await putFiles(engine, container.id, dir, entries);
    });
  },

  /**
   * SQLite files are self-contained, so they are checked on the host with node:sqlite:
   * integrity_check, and every table's row count must equal the count taken at backup time.
   */
  async deepVerify({ entry, open }) {
    const files = (entry.details?.files as SqliteFileRecord[] | undefined) ?? [];
    const work = await mkdtemp(join(tmpdir(), 'stackvault-verify-'));
    try {
      const seen: Record<string, Record<string, number>> = {};
      for (const f of files) {
        const copy = await findTarEntry(open(), `sqlite/${f.entry}`);
        const local = join(work, f.entry);
        await pipeline(copy.stream, createWriteStream(local, { mode: 0o600 }));
        const tables = checkedTableCounts(local, f.path);
        const differ = Object.keys({ ...tables, ...f.tables }).filter((t) => tables[t] !== f.tables[t]);
        if (differ.length) throw new Error(`${f.path}: row counts differ from the backup's for ${differ.join(', ')}`);
        seen[f.path] = tables;
      }
      return { files: seen };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  },

  async ready(engine, container) {
    if (!container.running) return false;
    const r = await engine.exec(container.id, ['sqlite3', sqlitePaths(container.labels)[0]!, 'PRAGMA quick_check']);
    if (r.exitCode === 126 || r.exitCode === 127) return true; // no sqlite3 in this image: running is all we can see
    return r.exitCode === 0 && r.stdout.trim() === 'ok';
  },
};

async function backupInside(ctx: BackupContext, paths: string[]): Promise<SqliteFileRecord[]> {
  const { engine, container } = ctx;
  const run = (cmd: string[], what: string) => execChecked(engine, container.id, cmd, what);
  const tmp = await run(['mktemp', '-d', '/tmp/stackvault.XXXXXX'], 'create a temporary directory');
  try {
    await run(['mkdir', `${tmp}/sqlite`], 'create a temporary directory');
    const files: SqliteFileRecord[] = [];
    for (const [i, path] of paths.entries()) {
      const copy = `${tmp}/sqlite/${entryName(i, path)}`;
      await run(['sqlite3', '-cmd', '.timeout 30000', path, `.backup '${copy}'`], `sqlite3 .backup of ${path}`);
      const check = await run(['sqlite3', copy, 'PRAGMA integrity_check'], `integrity_check of ${path}`);
      if (check !== 'ok') throw new Error(`the copy of ${path} failed integrity_check: ${check.split('\n')[0]}`);
      const tables = await tableCounts((sql) => run(['sqlite3', copy, sql], `count rows in ${path}`));
      const [owner, mode] = (await run(['stat', '-c', '%u:%g %a', path], `stat ${path}`)).split(' ');
      files.push({ path, entry: entryName(i, path), owner, mode, tables });
    }
    await concatTars([() => engine.getArchive(container.id, `${tmp}/sqlite`)], ctx.output);
    return files;
  } finally {
    await engine.exec(container.id, ['rm', '-rf', tmp]).catch(() => undefined);
  }
}

/** Row counts per table, recorded so that verify and restore can compare. */
export async function tableCounts(query: (sql: string) => Promise<string>): Promise<Record<string, number>> {
  const names = (await query("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")).split('\n').filter(Boolean);
  const counts: Record<string, number> = {};
  for (const name of names) counts[name] = Number(await query(`SELECT count(*) FROM "${name.replaceAll('"', '""')}"`));
  return counts;
}

async function backupFrozen(ctx: BackupContext, paths: string[]): Promise<SqliteFileRecord[]> {
  const { engine, container } = ctx;
  const work = await mkdtemp(join(tmpdir(), 'stackvault-sqlite-'));
  try {
    const raw = join(work, 'raw');
    const out = join(work, 'sqlite');
    await Promise.all([mkdir(raw), mkdir(out)]);
    await ctx.withPaused(async () => {
      for (const [i, path] of paths.entries()) {
        for (const suffix of ['', '-wal']) {
          const tarStream = await engine.getArchive(container.id, path + suffix).catch((err: unknown) => {
            if (suffix && (err as { statusCode?: number }).statusCode === 404) return undefined; // no WAL: fine
            throw err;
          });
          if (tarStream) await pipeline((await findTarEntry(tarStream, basename(path + suffix))).stream, createWriteStream(join(raw, `${i}${suffix}`), { mode: 0o600 }));
        }
      }
    });
    const files: SqliteFileRecord[] = [];
    for (const [i, path] of paths.entries()) {
      const entry = entryName(i, path);
      const tables = checkSqliteCopy(join(raw, String(i)), join(out, entry), path);
      files.push({ path, entry, tables });
    }
    await pipeline(tar.create({ cwd: work, portable: true }, ['sqlite']), forwardTo(ctx.output));
    return files;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
