import { Option } from 'commander';
import type { RestorePlan, RestoreResult } from '../core/restore.js';
import { ExitCode, type ExitCodeValue, StackvaultError, ALWAYS_POSSIBLE } from '../errors.js';
import { formatAge, formatBytes, formatDate, formatDuration } from '../util/format.js';
import { shown } from '../util/terminal.js';
import { defineCommand } from './command.js';
import { parseMap, parseStopTimeout } from './parse.js';
import type { SharedFlagValues } from './shared-flags.js';

interface RestoreFlags extends SharedFlagValues {
  only?: string;
  /** commander's --no-check sets this to false. */
  check?: boolean;
  intoProject?: string;
  map?: string[];
}

export const restoreCommand = defineCommand<RestoreFlags, RestoreResult>({
  path: 'backup restore',
  exitCodes: [...ALWAYS_POSSIBLE, ExitCode.partial, ExitCode.notFound, ExitCode.integrity, ExitCode.dockerUnreachable, ExitCode.storage, ExitCode.locked, ExitCode.aborted, ExitCode.offsite],
  description: 'restore services from a backup (a restore point is taken first); one that is only in the restic repository is fetched first',
  arguments: [{ name: '<id>', description: 'backup directory name, its timestamp part, or "latest"' }],
  shared: ['dir', 'host', 'yes', 'identity', 'stopTimeout', 'json'],
  options: () => [
    new Option('--only <services>', 'comma-separated services to restore'),
    new Option('--no-check', 'skip the content check after restoring (faster; the restore is then not proven)'),
    new Option('--into-project <name>', 'restore into the same services of another Compose project (a clone), leaving the backed-up one untouched'),
    new Option('--map <service=container...>', 'restore a service into this container (name or id), whatever its project'),
  ],
  examples: [
    './bot.sh backup restore latest',
    './bot.sh backup restore 20261121_020000 --only postgres --yes',
    'docker compose -p bot-drill up -d && ./bot.sh backup restore latest --into-project bot-drill --yes',
    './bot.sh backup restore latest --only redis --map redis=scratch-redis',
  ],
  help: `"latest" is the newest backup that is not a restore point. Every artifact is checked before
anything changes, and a restore point (type restore-point) of the same services is taken
first; a service that fails to restore is put back from it. After restoring, each store's
content is read back and compared with the backup's fingerprint (rows, keys, vectors, files);
a difference is a failure (exit 5) naming the first differing table, key space or file, and
the service is put back on the restore point. Stop apps that write to the stores first, or
their writes will show up as differences.`,
  logged: true,
  async run({ args: [id], flags, io }) {
    const [{ restoreBackup }, { parseServiceList }, { localOrFetched }, { commandContext }, { interruptSignal }, { progressFor }, { confirm }] = await Promise.all([
      import('../core/restore.js'),
      import('../core/selection.js'),
      import('../core/offsite.js'),
      import('./context.js'),
      import('../util/interrupt.js'),
      import('./progress-renderers.js'),
      import('./confirm.js'),
    ]);
    const progress = progressFor(io.out);
    const ctx = commandContext(flags.host);
    try {
      await localOrFetched(flags.dir, id!, io.say, interruptSignal);
      const result = await restoreBackup(
        {
          dir: flags.dir,
          id: id!,
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
            io.out.write(renderPlan(plan));
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
        io.say(`${mark} ${shown(s.service)} (${shown(s.container)}): ${shown(what)} (${formatDuration(s.durationMs)}${down})`);
        for (const w of s.warnings ?? []) io.say(`warning: ${shown(s.service)}: ${shown(w)}`);
      }
      const leftStopped = new Set(result.leftStopped ?? []);
      const apps = (result.stoppedApps ?? []).filter((a) => !leftStopped.has(a));
      if (apps.length) io.say(shown(`Stopped during the restore and started again: ${apps.join(', ')}`));
      if (leftStopped.size) io.say(shown(`warning: stopped and NOT started again: ${[...leftStopped].join(', ')}; start with: docker start ${[...leftStopped].join(' ')}`));
      io.say(`Restore point: ${result.restorePointId} (./bot.sh backup restore ${result.restorePointId} undoes this restore)`);
      return { data: result, backupId: result.backupId, exitCode: restoreExitCode(result), error: interruptedError(result) };
    } finally {
      progress.stop?.();
    }
  },
});

function restoreExitCode(result: RestoreResult): ExitCodeValue {
  // Content that did not come back as it was backed up outranks every other outcome.
  if (result.services.some((s) => s.mismatch)) return ExitCode.integrity;
  // The cause, when the engine went away: the fix is to bring Docker back, then the put-back command.
  if (result.services.some((s) => s.engineLost)) return ExitCode.dockerUnreachable;
  const bad = result.services.filter((s) => s.status !== 'restored').length;
  return bad === 0 ? ExitCode.ok : bad === result.services.length ? ExitCode.failure : ExitCode.partial;
}

/** An interrupted restore ends with one sentence of what got where. */
function interruptedError(result: RestoreResult): StackvaultError | undefined {
  if (!result.interrupted) return undefined;
  const named = (status: string, words: string) => {
    const names = result.services.filter((s) => s.status === status).map((s) => s.service);
    return names.length ? [`${words}: ${names.join(', ')}`] : [];
  };
  const parts = [...named('restored', 'restored'), ...named('rolled-back', 'back on the restore point'), ...named('interrupted', 'not started'), ...named('failed', 'FAILED, see above')];
  return new StackvaultError(
    `Restore interrupted (${parts.join('; ')}); ${result.leftStopped?.length ? `left stopped: ${result.leftStopped.join(', ')}` : 'no stopped container was left stopped'}.`,
    ExitCode.interrupted,
  );
}

function renderPlan(plan: RestorePlan): string {
  const created = new Date(plan.backup.createdAt);
  const width = Math.max(...plan.items.map((i) => shown(i.service).length));
  return [
    `Restore ${shown(plan.backup.id)} (${shown(plan.backup.type)}, ${formatDate(created)}, ${formatAge(created, new Date())}${plan.backup.comment ? `, "${shown(plan.backup.comment)}"` : ''}).`,
    'This REPLACES the current data of:',
    ...plan.items.map((i) => `  ${shown(i.service).padEnd(width)}  container ${shown(i.container)}  (${shown(i.driver)}, ${formatBytes(i.bytes)} compressed)`),
    ...(plan.notInBackup.length
      ? ['Not in this backup, so left as they are now:', ...plan.notInBackup.map((n) => `  ${shown(n.service)}  (${shown(n.status)} when it was made${n.error ? `: ${shown(n.error)}` : ''})`)]
      : []),
    '',
  ].join('\n');
}
