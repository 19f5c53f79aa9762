import { restoreBackup, type RestorePlan } from '../core/restore.js';
import { parseServiceList } from '../core/selection.js';
import { ExitCode, StackvaultError, usageError } from '../errors.js';
import { confirm } from './confirm.js';
import { formatAge, formatBytes, formatDate, formatDuration } from '../util/format.js';
import { parseStopTimeout } from './create.js';
import { commandContext } from './context.js';
import { localOrFetched } from '../core/offsite.js';
import { interruptSignal } from '../util/interrupt.js';
import { progressFor } from './progress-renderers.js';

interface RestoreFlags {
  host?: string[];
  dir: string;
  identity?: string;
  only?: string;
  yes?: boolean;
  json?: boolean;
  parallel?: string;
  /** commander's --no-check sets this to false. */
  check?: boolean;
  stopTimeout?: string;
  intoProject?: string;
  map?: string[];
}

/** `--map postgres=clone-db-1 --map redis=…` into a record; a value without `=` is a usage error. */
export function parseMap(values: string[] | undefined): Record<string, string> | undefined {
  if (!values?.length) return undefined;
  const map: Record<string, string> = {};
  for (const v of values.flatMap((x) => x.split(','))) {
    const i = v.indexOf('=');
    if (i <= 0 || i === v.length - 1) throw usageError(`--map takes SERVICE=CONTAINER, not '${v}'.`);
    map[v.slice(0, i)] = v.slice(i + 1);
  }
  return map;
}

export async function restoreCommand(id: string, flags: RestoreFlags): Promise<{ backupId: string }> {
  const out = flags.json ? process.stderr : process.stdout;
  const progress = progressFor(out);
  const ctx = commandContext(flags.host);
  try {
    await localOrFetched(flags.dir, id, (message) => out.write(`${message}\n`), interruptSignal);
    const result = await restoreBackup(
      {
        dir: flags.dir,
        id,
        only: parseServiceList(flags.only),
        parallel: 4,
        identity: flags.identity,
        stopTimeout: parseStopTimeout(flags.stopTimeout),
        check: flags.check !== false,
        intoProject: flags.intoProject,
        map: parseMap(flags.map),
      },
      {
        ...ctx,
        progress: { ...progress, serviceDone: () => undefined },
        confirm: async (plan) => {
          out.write(renderPlan(plan));
          return confirm('Replace this data? A restore point is taken first.', flags.yes, 'Restore');
        },
      },
    );
    progress.stop?.();
    for (const s of result.services) {
      const mark = s.status === 'restored' ? '✅' : s.status === 'interrupted' ? '⏭️' : '❌';
      const what =
        s.status === 'restored'
          ? `restored, content ${s.check}`
          : s.status === 'rolled-back'
            ? `NOT restored, back on the restore point: ${s.error}`
            : s.status === 'interrupted'
              ? `not restored: ${s.error}`
              : `FAILED: ${s.error}`;
      const down = s.downtimeMs !== undefined ? `, down ${formatDuration(s.downtimeMs)}` : '';
      out.write(`${mark} ${s.service} (${s.container}): ${what} (${formatDuration(s.durationMs)}${down})\n`);
      for (const w of s.warnings ?? []) out.write(`warning: ${s.service}: ${w}\n`);
    }
    if (result.stoppedApps?.length) out.write(`Stopped during the restore and started again: ${result.stoppedApps.join(', ')}\n`);
    out.write(`Restore point: ${result.restorePointId} (./bot.sh backup restore ${result.restorePointId} undoes this restore)\n`);
    if (flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    if (result.interrupted) {
      const named = (status: string, words: string) => {
        const names = result.services.filter((s) => s.status === status).map((s) => s.service);
        return names.length ? [`${words}: ${names.join(', ')}`] : [];
      };
      const parts = [...named('restored', 'restored'), ...named('rolled-back', 'back on the restore point'), ...named('interrupted', 'not started'), ...named('failed', 'FAILED, see above')];
      throw new StackvaultError(`Restore interrupted (${parts.join('; ')}); no stopped container was left stopped.`, ExitCode.interrupted);
    }
    const bad = result.services.filter((s) => s.status !== 'restored').length;
    if (bad) process.exitCode = bad === result.services.length ? ExitCode.failure : ExitCode.partial;
    // Content that did not come back as it was backed up outranks every other outcome.
    if (result.services.some((s) => s.mismatch)) process.exitCode = ExitCode.integrity;
    return { backupId: result.backupId };
  } finally {
    progress.stop?.();
  }
}

function renderPlan(plan: RestorePlan): string {
  const created = new Date(plan.backup.createdAt);
  const width = Math.max(...plan.items.map((i) => i.service.length));
  return [
    `Restore ${plan.backup.id} (${plan.backup.type}, ${formatDate(created)}, ${formatAge(created, new Date())}${plan.backup.comment ? `, "${plan.backup.comment}"` : ''}).`,
    'This REPLACES the current data of:',
    ...plan.items.map((i) => `  ${i.service.padEnd(width)}  container ${i.container}  (${i.driver}, ${formatBytes(i.bytes)} compressed)`),
    '',
  ].join('\n');
}
