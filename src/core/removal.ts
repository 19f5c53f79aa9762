import { usageError } from '../errors.js';
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readCatalog, type Catalog } from './catalog.js';
import { acquireLock } from './lock.js';
import { applyAgeLimit, applyRetention, DEFAULT_POLICY, type Decision, type RetentionPolicy } from './retention.js';
import { fsyncPath } from '../util/fsync.js';
import { MiB, readRegularFile } from '../util/safe-file.js';

export interface Removal {
  id: string;
  type: string;
  createdAt: string;
  bytes: number;
  reason: string;
}

export interface RemovalPlan {
  dir: string;
  remove: Removal[];
  keep: Decision[];
  /** Unfinished `.tmp-*` directories left by interrupted runs. */
  leftovers: Array<{ name: string; bytes: number }>;
}

const asItems = (c: Catalog) => c.backups.map((b) => ({ id: b.manifest.id, type: b.manifest.type, createdAt: new Date(b.manifest.createdAt), status: b.manifest.status }));

function plan(catalog: Catalog, decisions: Decision[], leftovers: RemovalPlan['leftovers']): RemovalPlan {
  const byId = new Map(catalog.backups.map((b) => [b.manifest.id, b]));
  return {
    dir: catalog.dir,
    remove: decisions
      .filter((d) => !d.keep)
      .map((d) => {
        const b = byId.get(d.id)!;
        return { id: d.id, type: b.manifest.type, createdAt: b.manifest.createdAt, bytes: b.bytes, reason: d.reason };
      }),
    keep: decisions.filter((d) => d.keep),
    leftovers,
  };
}

/** `backup cleanup DAYS`. */
export async function planCleanup(dirOption: string, days: number, now: Date): Promise<RemovalPlan> {
  const catalog = await readCatalog(dirOption);
  return plan(catalog, applyAgeLimit(asItems(catalog), days, now), await leftoverDirs(catalog));
}

/** `backup prune`: the retention policy. */
export async function planPrune(dirOption: string, policy: RetentionPolicy, now: Date): Promise<RemovalPlan> {
  const catalog = await readCatalog(dirOption);
  return plan(catalog, applyRetention(asItems(catalog), policy, now), await leftoverDirs(catalog));
}

/** Policy from `<dir>/retention.json` (any subset of the fields), else the defaults. */
/** `"offsite": true` in the policy file: every backup of this directory is stored offsite too (as --offsite). */
export async function offsiteByPolicy(dir: string): Promise<boolean> {
  const text = await readRegularFile(join(dir, 'retention.json'), MiB).catch(() => undefined);
  if (!text) return false;
  const v = (JSON.parse(text) as { offsite?: unknown }).offsite;
  if (v !== undefined && typeof v !== 'boolean') throw usageError('retention.json: offsite must be true or false.');
  return v === true;
}

export async function loadPolicy(dir: string): Promise<RetentionPolicy> {
  const text = await readRegularFile(join(dir, 'retention.json'), MiB).catch(() => undefined);
  if (!text) return DEFAULT_POLICY;
  const data = JSON.parse(text) as Partial<RetentionPolicy>;
  const policy = { ...DEFAULT_POLICY };
  for (const key of Object.keys(DEFAULT_POLICY) as Array<keyof RetentionPolicy>) {
    const v = data[key];
    if (v !== undefined) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`retention.json: ${key} must be a whole number of at least 1`);
      policy[key] = v;
    }
  }
  return policy;
}

async function leftoverDirs(catalog: Catalog): Promise<RemovalPlan['leftovers']> {
  return Promise.all(catalog.incomplete.filter((d) => d.name.startsWith('.tmp-')).map(async (d) => ({ name: d.name, bytes: await du(d.path) })));
}

/** Carries out a plan under the lock (so no run is writing), returning the bytes freed. */
export async function executeRemoval(p: RemovalPlan, command: string): Promise<number> {
  const release = await acquireLock(p.dir, command, 60_000);
  try {
    let freed = 0;
    for (const r of p.remove) {
      freed += await du(join(p.dir, r.id));
      await rm(join(p.dir, r.id), { recursive: true, force: true });
    }
    // Holding the lock means no run is writing, so every .tmp- directory is a leftover.
    for (const l of p.leftovers) {
      freed += l.bytes;
      await rm(join(p.dir, l.name), { recursive: true, force: true });
    }
    await fsyncPath(p.dir);
    return freed;
  } finally {
    await release();
  }
}

/**
 * Bytes a directory tree takes, as rm would free them: lstat, so a symlink counts as itself and
 * is never followed (a link to /usr/lib is not walked or counted; `a -> .` loops no more).
 * An entry that vanished or cannot be read counts 0 rather than failing a cleanup for good.
 */
export async function du(path: string): Promise<number> {
  const info = await lstat(path).catch(() => undefined);
  if (!info) return 0;
  if (!info.isDirectory()) return info.size;
  let total = 0;
  for (const e of await readdir(path).catch(() => [])) total += await du(join(path, e));
  return total;
}
