import { ALWAYS_POSSIBLE, ExitCode } from '../errors.js';
import { Option } from 'commander';
import type { OffsitePrune } from '../core/offsite.js';
import type { RetentionPolicy } from '../core/retention.js';
import { formatBytes } from '../util/format.js';
import { defineCommand } from './command.js';
import { wholeNumber } from './parse.js';
import { carryOut, type RemovalResult, renderRemoval } from './removal-result.js';
import type { SharedFlagValues } from './shared-flags.js';

interface PruneFlags extends SharedFlagValues {
  dryRun?: boolean;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepPreUpdate?: string;
  remote?: boolean;
}

type Pruned = RemovalResult & { remote?: OffsitePrune; repository?: string };

export const pruneCommand = defineCommand<PruneFlags, Pruned>({
  path: 'backup prune',
  exitCodes: [...ALWAYS_POSSIBLE, ExitCode.storage, ExitCode.locked, ExitCode.offsite],
  description: 'apply the retention policy (what the scheduler runs after a successful backup)',
  shared: ['dir', 'json'],
  options: () => [
    new Option('--dry-run', 'show what would be removed, remove nothing'),
    new Option('--keep-daily <days>', 'keep daily backups this many days (default 7)'),
    new Option('--keep-weekly <weeks>', 'keep weekly backups this many weeks (default 4)'),
    new Option('--keep-monthly <months>', 'keep monthly backups this many months (default 12)'),
    new Option('--keep-pre-update <n>', 'keep this many pre-update backups (default 5)'),
    new Option('--remote', 'also in the restic repository of RESTIC_REPOSITORY (restic forget, then prune)'),
  ],
  examples: ['./bot.sh backup prune --dry-run', './bot.sh backup prune --keep-daily 14', './bot.sh backup prune --remote'],
  help: `The policy can also live in <backup dir>/retention.json, e.g. {"dailyDays": 14, "preUpdateKeep": 10};
flags win over the file. manual and restore-point backups are never removed, nor is the newest
successful backup. A daily, weekly or monthly backup goes only when past its age and as many
newer successful ones of its type exist as the number (7 dailies for --keep-daily 7), so a clock
that jumped ahead, or weeks of failed runs, cost no history.`,
  logged: true,
  async run({ flags }) {
    const [{ planPrune }, { pruneOffsite }, { requireOffsite, shownRepository, asOffsiteError }, { interruptSignal }] = await Promise.all([
      import('../core/removal.js'),
      import('../core/offsite.js'),
      import('../offsite/restic.js'),
      import('../util/interrupt.js'),
    ]);
    const policy = await policyFrom(flags);
    if (flags.remote) requireOffsite();
    const local = await carryOut(await planPrune(flags.dir, policy, new Date()), flags.dryRun, 'backup prune');
    const backupId = local.removed.map((r) => r.id).join(',');
    if (!flags.remote) return { data: local, backupId };
    // --remote: the restic repository too, by the same rules, after the local directory; when
    // that fails, what was removed here is still shown and logged before the error.
    try {
      return { data: { ...local, remote: await pruneOffsite(policy, new Date(), Boolean(flags.dryRun), interruptSignal), repository: shownRepository() }, backupId };
    } catch (err) {
      return { data: local, backupId, error: asOffsiteError(err) };
    }
  },
  render(pruned, io, flags) {
    renderRemoval(pruned, io);
    const r = pruned.remote;
    if (!r) return;
    const drop = r.decisions.filter((d) => !d.keep);
    for (const d of drop) io.say(`${flags.dryRun ? 'would forget' : 'forgot'} ${d.id} in the restic repository: ${d.reason}`);
    if (r.brokenUploads) io.say(`${flags.dryRun ? 'would forget' : 'forgot'} ${r.brokenUploads} snapshot${r.brokenUploads === 1 ? '' : 's'} of uploads that broke off`);
    io.say(
      drop.length + r.brokenUploads === 0
        ? `Nothing to remove in the restic repository ${pruned.repository}.`
        : `${r.freedBytes !== undefined ? `The repository shrank by ${formatBytes(r.freedBytes)}` : 'Nothing pruned yet'}; ${r.decisions.length - drop.length} kept there.`,
    );
  },
});

/** The retention policy: <dir>/retention.json, each value overridden by its flag. */
export async function policyFrom(flags: Pick<PruneFlags, 'dir' | 'keepDaily' | 'keepWeekly' | 'keepMonthly' | 'keepPreUpdate'>): Promise<RetentionPolicy> {
  const { loadPolicy } = await import('../core/removal.js');
  const base = await loadPolicy(flags.dir); // a bad retention.json is a usage error naming the file
  return {
    dailyDays: wholeNumber(flags.keepDaily, '--keep-daily') ?? base.dailyDays,
    weeklyWeeks: wholeNumber(flags.keepWeekly, '--keep-weekly') ?? base.weeklyWeeks,
    monthlyMonths: wholeNumber(flags.keepMonthly, '--keep-monthly') ?? base.monthlyMonths,
    preUpdateKeep: wholeNumber(flags.keepPreUpdate, '--keep-pre-update') ?? base.preUpdateKeep,
  };
}
