import type { Removal, RemovalPlan } from '../core/removal.js';
import { formatBytes, formatDate } from '../util/format.js';
import type { CommandIO } from './command.js';

/** What cleanup and prune did (or, with --dry-run, would do); their --json output. */
export interface RemovalResult {
  dryRun: boolean;
  removed: Removal[];
  leftovers: RemovalPlan['leftovers'];
  kept: RemovalPlan['keep'];
  freedBytes: number;
}

/** Removes what the plan says (nothing on a dry run) and says what it freed. */
export async function carryOut(plan: RemovalPlan, dryRun: boolean | undefined, command: string): Promise<RemovalResult> {
  const { executeRemoval } = await import('../core/removal.js');
  if (dryRun) {
    const freedBytes = plan.remove.reduce((t, r) => t + r.bytes, 0) + plan.leftovers.reduce((t, l) => t + l.bytes, 0);
    return { dryRun: true, removed: plan.remove, leftovers: plan.leftovers, kept: plan.keep, freedBytes };
  }
  const done = await executeRemoval(plan, command);
  // What was decided again under the lock and spared is counted as kept.
  const spared = plan.remove.filter((r) => !done.removed.includes(r));
  return {
    dryRun: false,
    removed: done.removed,
    leftovers: plan.leftovers,
    kept: [...plan.keep, ...spared.map((r) => ({ id: r.id, keep: true, reason: 'kept: the directory changed while waiting for the lock' }))],
    freedBytes: done.freedBytes,
  };
}

export function renderRemoval(r: RemovalResult, io: CommandIO): void {
  const verb = r.dryRun ? 'would remove' : 'removed';
  for (const b of r.removed) io.say(`${verb} ${b.id} (${b.type}, ${formatDate(new Date(b.createdAt))}, ${formatBytes(b.bytes)}): ${b.reason}`);
  for (const l of r.leftovers) io.say(`${verb} unfinished ${l.name} (${formatBytes(l.bytes)}): left by an interrupted run`);
  io.say(
    r.removed.length + r.leftovers.length === 0
      ? 'Nothing to remove.'
      : `${r.dryRun ? 'Would free' : 'Freed'} ${formatBytes(r.freedBytes)}; ${r.kept.length} backup${r.kept.length === 1 ? '' : 's'} kept.`,
  );
}
