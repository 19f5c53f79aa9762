import { usageError } from '../errors.js';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { type BackupRecord, readCatalog, type Catalog } from './catalog.js';
import { acquireLock } from './lock.js';
import { succeeded } from './manifest.js';
import { applyAgeLimit, applyRetention, DEFAULT_POLICY, type Decision, type RetentionItem, type RetentionPolicy } from './retention.js';
import { fsyncPath } from '../util/fsync.js';
import { MiB, readRegularFile } from '../util/safe-file.js';
import { mapLimit } from '../util/limit.js';
import { removeTree, treeBytes } from '../util/safe-remove.js';

export interface Removal {
  id: string;
  type: string;
  createdAt: string;
  bytes: number;
  reason: string;
}

/** What a plan applies: cleanup's age limit or prune's policy, at one instant. */
type Rule = { now: Date } & ({ days: number } | { policy: RetentionPolicy });

export interface RemovalPlan {
  dir: string;
  remove: Removal[];
  keep: Decision[];
  /** Unfinished `.tmp-*` directories left by interrupted runs. */
  leftovers: Array<{ name: string; bytes: number }>;
  /** How it was decided: executeRemoval decides again under the lock and removes only what both decisions remove. */
  rule: Rule;
}

/**
 * The catalog's backups as retention sees them. Success is read from the services, never from
 * the status field alone. The newest successful backups are looked at on disk, newest first,
 * until one is whole (intactOnDisk): one whose files are not does not take the protection of
 * "the newest successful backup" alone (retention.ts `spared`).
 */
async function asItems(c: Catalog): Promise<RetentionItem[]> {
  const items: RetentionItem[] = c.backups.map((b) => ({
    id: b.manifest.id,
    type: b.manifest.type,
    createdAt: new Date(b.manifest.createdAt),
    status: succeeded(b.manifest) ? 'ok' : 'partial',
  }));
  for (const [i, b] of c.backups.entries()) {
    if (items[i]!.status !== 'ok') continue;
    items[i]!.intact = await intactOnDisk(b);
    if (items[i]!.intact) break;
  }
  return items;
}

/**
 * Cheap signs that a backup can still be restored: every artifact of an ok service is a regular
 * file of the size the manifest records, and its last verification, if any, passed. (Hashing
 * is verify's work; this is what a retention run can afford for one or two backups.)
 */
export async function intactOnDisk(b: BackupRecord): Promise<boolean> {
  if (b.manifest.verifications?.at(-1)?.ok === false) return false;
  for (const s of b.manifest.services) {
    if (s.status !== 'ok') continue;
    const file = await lstat(join(b.path, s.artifact!)).catch(() => undefined);
    if (!file?.isFile() || file.size !== s.bytes) return false;
  }
  return true;
}

async function decide(catalog: Catalog, rule: Rule): Promise<Decision[]> {
  const items = await asItems(catalog);
  return 'days' in rule ? applyAgeLimit(items, rule.days, rule.now) : applyRetention(items, rule.policy, rule.now);
}

async function plan(catalog: Catalog, rule: Rule): Promise<RemovalPlan> {
  const decisions = await decide(catalog, rule);
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
    leftovers: await leftoverDirs(catalog),
    rule,
  };
}

/** `backup cleanup DAYS`. */
export async function planCleanup(dirOption: string, days: number, now: Date): Promise<RemovalPlan> {
  return plan(await readCatalog(dirOption, now), { days, now });
}

/** `backup prune`: the retention policy. */
export async function planPrune(dirOption: string, policy: RetentionPolicy, now: Date): Promise<RemovalPlan> {
  return plan(await readCatalog(dirOption, now), { policy, now });
}

/** `<dir>/retention.json`, read once: where it is, and its object (undefined when there is none). */
export interface RetentionFile {
  path: string;
  data?: Record<string, unknown>;
}

/**
 * Reads `<dir>/retention.json`. A file that is not JSON, or JSON that is not an object, is a bad
 * setting: one sentence naming the file (exit 2). A run that needs both the policy and the offsite
 * setting reads it once and asks policyIn and offsiteIn.
 */
export async function readRetentionFile(dir: string): Promise<RetentionFile> {
  const path = join(dir, 'retention.json');
  // Absent (or no directory to hold it, which the caller's own check reports): the defaults.
  // A symlink, FIFO or device in its place is refused (readRegularFile).
  const text = await readRegularFile(path, MiB).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw err;
  });
  if (text === undefined) return { path };
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw usageError(`${path} is not valid JSON.`, 'It holds e.g. {"dailyDays": 14, "preUpdateKeep": 10}.');
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw usageError(`${path} must hold a JSON object, e.g. {"dailyDays": 14}.`);
  return { path, data: data as Record<string, unknown> };
}

/** `"offsite": true` in the policy file: every backup of this directory is stored offsite too (as --offsite). */
export function offsiteIn(file: RetentionFile): boolean {
  const v = file.data?.offsite;
  if (v !== undefined && typeof v !== 'boolean') throw usageError(`${file.path}: offsite must be true or false.`);
  return v === true;
}

/** The policy the file sets (any subset of the fields), else the defaults. */
export function policyIn(file: RetentionFile): RetentionPolicy {
  const policy = { ...DEFAULT_POLICY };
  if (!file.data) return policy;
  for (const key of Object.keys(DEFAULT_POLICY) as Array<keyof RetentionPolicy>) {
    const v = file.data[key];
    if (v !== undefined) {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw usageError(`${file.path}: ${key} must be a whole number of at least 1.`);
      policy[key] = v;
    }
  }
  return policy;
}

/** offsiteIn of `<dir>/retention.json`, for a run that needs nothing else from it. */
export async function offsiteByPolicy(dir: string): Promise<boolean> {
  return offsiteIn(await readRetentionFile(dir));
}

/** policyIn of `<dir>/retention.json`, for a run that needs nothing else from it. */
export async function loadPolicy(dir: string): Promise<RetentionPolicy> {
  return policyIn(await readRetentionFile(dir));
}

async function leftoverDirs(catalog: Catalog): Promise<RemovalPlan['leftovers']> {
  // A few at a time: each walk holds a descriptor per level, and a directory can hold thousands.
  return mapLimit(
    catalog.incomplete.filter((d) => d.name.startsWith('.tmp-')),
    8,
    async (d) => ({ name: d.name, bytes: await du(d.path) }),
  );
}

/**
 * Carries out a plan under the lock (so no run is writing), returning the bytes freed and the
 * backups removed. The plan was made before the lock was taken, and the directory may have
 * changed while this waited for it (a `backup delete` of the newest backup, another cleanup):
 * the same rule is applied again to the directory as it is now, and a backup is removed only
 * when both decisions remove it, so the newest successful backup of now is never one of them.
 */
export async function executeRemoval(p: RemovalPlan, command: string): Promise<{ freedBytes: number; removed: Removal[] }> {
  const release = await acquireLock(p.dir, command, 60_000);
  try {
    const now = await decide(await readCatalog(p.dir, p.rule.now), p.rule);
    const still = new Set(now.filter((d) => !d.keep).map((d) => d.id));
    const removed = p.remove.filter((r) => still.has(r.id));
    let freed = 0;
    for (const r of removed) {
      freed += await du(join(p.dir, r.id));
      await removeTree(join(p.dir, r.id));
    }
    // Holding the lock means no run is writing, so every .tmp- directory is a leftover.
    for (const l of p.leftovers) {
      freed += l.bytes;
      await removeTree(join(p.dir, l.name));
    }
    await fsyncPath(p.dir);
    return { freedBytes: freed, removed };
  } finally {
    await release();
  }
}

/** Bytes a directory tree takes, as removeTree frees them (util/safe-remove.ts: no link followed, even one swapped in meanwhile). */
export const du = treeBytes;
