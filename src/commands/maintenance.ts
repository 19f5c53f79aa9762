import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readCatalog, resolveBackup } from '../core/catalog.js';
import { acquireLock } from '../core/lock.js';
import { readOperations } from '../core/oplog.js';
import { du, executeRemoval, loadPolicy, planCleanup, planPrune, type RemovalPlan } from '../core/removal.js';
import type { RetentionPolicy } from '../core/retention.js';
import { ExitCode, StackvaultError, usageError } from '../errors.js';
import { formatBytes, formatDate } from '../util/format.js';
import { confirm } from './confirm.js';
import { pruneOffsite } from '../core/offsite.js';
import { requireOffsite, shownRepository } from '../offsite/restic.js';
import { interruptSignal } from '../util/interrupt.js';

const say = (line: string) => process.stdout.write(`${line}\n`);

function wholeNumber(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw usageError(`${flag} must be a whole number of at least 1, not '${value}'.`);
  return n;
}

async function carryOut(p: RemovalPlan, dryRun: boolean | undefined, command: string, json: boolean | undefined, then?: () => Promise<Record<string, unknown>>): Promise<{ backupId: string }> {
  const verb = dryRun ? 'would remove' : 'removed';
  const freed = dryRun ? p.remove.reduce((t, r) => t + r.bytes, 0) + p.leftovers.reduce((t, l) => t + l.bytes, 0) : await executeRemoval(p, command);
  if (json) {
    const more = (await then?.()) ?? {};
    process.stdout.write(`${JSON.stringify({ dryRun: Boolean(dryRun), removed: p.remove, leftovers: p.leftovers, kept: p.keep, freedBytes: freed, ...more }, null, 2)}\n`);
  } else {
    for (const r of p.remove) say(`${verb} ${r.id} (${r.type}, ${formatDate(new Date(r.createdAt))}, ${formatBytes(r.bytes)}): ${r.reason}`);
    for (const l of p.leftovers) say(`${verb} unfinished ${l.name} (${formatBytes(l.bytes)}): left by an interrupted run`);
    say(p.remove.length + p.leftovers.length === 0 ? 'Nothing to remove.' : `${dryRun ? 'Would free' : 'Freed'} ${formatBytes(freed)}; ${p.keep.length} backup${p.keep.length === 1 ? '' : 's'} kept.`);
    await then?.();
  }
  return { backupId: p.remove.map((r) => r.id).join(',') };
}

export async function cleanupCommand(days: string, flags: { dir: string; dryRun?: boolean; json?: boolean }) {
  const n = wholeNumber(days, 'DAYS')!;
  return carryOut(await planCleanup(flags.dir, n, new Date()), flags.dryRun, `backup cleanup ${n}`, flags.json);
}

interface PruneFlags {
  dir: string;
  dryRun?: boolean;
  json?: boolean;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepPreUpdate?: string;
  remote?: boolean;
}

export async function policyFrom(flags: PruneFlags): Promise<RetentionPolicy> {
  const base = await loadPolicy(flags.dir).catch((err: Error) => {
    throw usageError(err.message);
  });
  return {
    dailyDays: wholeNumber(flags.keepDaily, '--keep-daily') ?? base.dailyDays,
    weeklyWeeks: wholeNumber(flags.keepWeekly, '--keep-weekly') ?? base.weeklyWeeks,
    monthlyMonths: wholeNumber(flags.keepMonthly, '--keep-monthly') ?? base.monthlyMonths,
    preUpdateKeep: wholeNumber(flags.keepPreUpdate, '--keep-pre-update') ?? base.preUpdateKeep,
  };
}

export async function pruneCommand(flags: PruneFlags) {
  const policy = await policyFrom(flags);
  if (flags.remote) requireOffsite();
  // --remote: the restic repository too, by the same rules (after the local directory).
  const remote = flags.remote
    ? async () => {
        const r = await pruneOffsite(policy, new Date(), Boolean(flags.dryRun), interruptSignal);
        if (!flags.json) {
          const drop = r.decisions.filter((d) => !d.keep);
          for (const d of drop) say(`${flags.dryRun ? 'would forget' : 'forgot'} ${d.id} in the restic repository: ${d.reason}`);
          if (r.brokenUploads) say(`${flags.dryRun ? 'would forget' : 'forgot'} ${r.brokenUploads} snapshot${r.brokenUploads === 1 ? '' : 's'} of uploads that broke off`);
          say(
            drop.length + r.brokenUploads === 0
              ? `Nothing to remove in the restic repository ${shownRepository()}.`
              : `${r.freedBytes !== undefined ? `The repository shrank by ${formatBytes(r.freedBytes)}` : 'Nothing pruned yet'}; ${r.decisions.length - drop.length} kept there.`,
          );
        }
        return { remote: r };
      }
    : undefined;
  return carryOut(await planPrune(flags.dir, policy, new Date()), flags.dryRun, 'backup prune', flags.json, remote);
}

export async function deleteCommand(id: string, flags: { dir: string; yes?: boolean }) {
  const catalog = await readCatalog(flags.dir);
  const backup = resolveBackup(catalog, id);
  const bytes = await du(backup.path);
  say(`Delete ${backup.manifest.id} (${backup.manifest.type}, ${formatDate(new Date(backup.manifest.createdAt))}, ${formatBytes(bytes)})?`);
  if (!(await confirm('Delete this backup for good?', flags.yes, 'Deleting a backup'))) {
    throw new StackvaultError('Not deleted.', ExitCode.aborted);
  }
  const release = await acquireLock(catalog.dir, `backup delete ${backup.manifest.id}`, 60_000);
  try {
    await rm(join(catalog.dir, backup.manifest.id), { recursive: true, force: true });
  } finally {
    await release();
  }
  say(`Deleted ${backup.manifest.id}; freed ${formatBytes(bytes)}.`);
  return { backupId: backup.manifest.id };
}

export async function logCommand(flags: { dir: string; lines: string; json?: boolean }) {
  const catalog = await readCatalog(flags.dir);
  const n = wholeNumber(flags.lines, '--lines')!;
  const ops = (await readOperations(catalog.dir)).slice(-n);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(ops, null, 2)}\n`);
    return;
  }
  if (ops.length === 0) say(`No operations recorded in ${catalog.dir} yet.`);
  for (const o of ops) say(`${o.at}  ${o.user}  ${o.command}  ${o.backupId || '-'}  ${o.result}  ${(o.durationMs / 1000).toFixed(1)}s`);
}
