import { drillBackup } from '../core/drill.js';
import { ExitCode } from '../errors.js';
import { formatDuration } from '../util/format.js';
import { commandContext } from './context.js';
import { progressFor } from './progress-renderers.js';

interface DrillFlags {
  dir: string;
  host?: string[];
  identity?: string;
  json?: boolean;
}

/** `backup drill ID`: restore into a throwaway copy of the stack, check, remove it; exit 5 when anything did not come back equal. */
export async function drillCommand(id: string, flags: DrillFlags): Promise<{ backupId: string }> {
  const out = flags.json ? process.stderr : process.stdout;
  const progress = progressFor(out);
  const result = await drillBackup({ dir: flags.dir, id, identity: flags.identity, parallel: 4 }, { ...commandContext(flags.host), progress: { ...progress, serviceDone: () => undefined } });
  progress.stop?.();
  for (const [service, s] of Object.entries(result.services)) out.write(`${s.ok ? '✅' : '❌'} ${service}: ${s.check}\n`);
  out.write(
    `${result.ok ? 'Drill passed' : 'Drill FAILED'} for ${result.backupId} in ${formatDuration(result.durationMs)}; the throwaway copy is removed and the drill is recorded in the manifest.\n`,
  );
  if (flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  if (!result.ok) process.exitCode = ExitCode.integrity;
  return { backupId: result.backupId };
}
