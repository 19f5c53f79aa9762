import type { DrillResult } from '../core/drill.js';
import { ExitCode, ALWAYS_POSSIBLE } from '../errors.js';
import { formatDuration } from '../util/format.js';
import { shown } from '../util/terminal.js';
import { defineCommand } from './command.js';
import type { SharedFlagValues } from './shared-flags.js';

/** `backup drill ID`: restore into a throwaway copy of the stack, check, remove it; exit 5 when anything did not come back equal. */
export const drillCommand = defineCommand<SharedFlagValues, DrillResult>({
  path: 'backup drill',
  exitCodes: [...ALWAYS_POSSIBLE, ExitCode.notFound, ExitCode.integrity, ExitCode.dockerUnreachable, ExitCode.storage, ExitCode.locked],
  description: 'restore the backup into a throwaway copy of its services (started from the recorded images), check every store, remove the copy, record the drill; production is never touched',
  arguments: [{ name: '<id>', description: 'backup directory name, its timestamp part, or "latest"' }],
  shared: ['dir', 'host', 'identity', 'json'],
  examples: ['./bot.sh backup drill latest', './bot.sh backup drill 20261121_020000 --json'],
  help: 'Exit 5 when a service did not come back equal (or could not be drilled).',
  logged: true,
  async run({ args: [id], flags, io }) {
    const [{ drillBackup }, { commandContext }, { progressFor }] = await Promise.all([import('../core/drill.js'), import('./context.js'), import('./progress-renderers.js')]);
    const progress = progressFor(io.out);
    try {
      const result = await drillBackup({ dir: flags.dir, id: id!, identity: flags.identity, parallel: 4 }, { ...commandContext(flags.host), progress: { ...progress, serviceDone: () => undefined } });
      progress.stop?.();
      for (const [service, s] of Object.entries(result.services)) io.say(`${s.ok ? '✅' : '❌'} ${shown(service)}: ${shown(s.check)}`);
      io.say(`${result.ok ? 'Drill passed' : 'Drill FAILED'} for ${result.backupId} in ${formatDuration(result.durationMs)}; the throwaway copy is removed and the drill is recorded in the manifest.`);
      return { data: result, backupId: result.backupId, exitCode: result.ok ? ExitCode.ok : ExitCode.integrity };
    } finally {
      progress.stop?.();
    }
  },
});
