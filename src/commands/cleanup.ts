import { ALWAYS_POSSIBLE, ExitCode } from '../errors.js';
import { Option } from 'commander';
import { defineCommand } from './command.js';
import { wholeNumber } from './parse.js';
import { carryOut, type RemovalResult, renderRemoval } from './removal-result.js';
import type { SharedFlagValues } from './shared-flags.js';

export const cleanupCommand = defineCommand<SharedFlagValues & { dryRun?: boolean }, RemovalResult>({
  path: 'backup cleanup',
  exitCodes: [...ALWAYS_POSSIBLE, ExitCode.storage, ExitCode.locked],
  description: 'remove backups older than DAYS (manual and restore-point backups, and the newest successful one, are kept)',
  arguments: [{ name: '[days]', description: 'remove backups older than this many days', default: '30' }],
  shared: ['dir', 'json'],
  options: () => [new Option('--dry-run', 'show what would be removed, remove nothing')],
  examples: ['./bot.sh backup cleanup', './bot.sh backup cleanup 14 --dry-run'],
  logged: true,
  async run({ args: [days], flags }) {
    const n = wholeNumber(days, 'DAYS')!;
    const { planCleanup } = await import('../core/removal.js');
    const result = await carryOut(await planCleanup(flags.dir, n, new Date()), flags.dryRun, `backup cleanup ${n}`);
    return { data: result, backupId: result.removed.map((r) => r.id).join(',') };
  },
  render: renderRemoval,
});
