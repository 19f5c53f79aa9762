import { Option } from 'commander';
import type { BackupPlanResult } from '../core/plan.js';
import { type Compression, DEFAULT_COMPRESSION } from '../core/compression.js';
import type { BackupType, Manifest } from '../core/manifest.js';
import { ExitCode, type ExitCodeValue, ALWAYS_POSSIBLE } from '../errors.js';
import { formatBytes } from '../util/format.js';
import { shown } from '../util/terminal.js';
import { defineCommand, type CommandIO } from './command.js';
import { parseStopTimeout, wholeNumber } from './parse.js';
import type { SharedFlagValues } from './shared-flags.js';

interface CreateFlags extends SharedFlagValues {
  type: BackupType;
  comment: string;
  only?: string;
  parallel: string;
  compress: Compression;
  prefix: string;
  verify?: boolean;
  dryRun?: boolean;
  verbose?: boolean;
  offsite?: boolean;
  consistent?: boolean;
}

/** `backup create`: the manifest of the new backup (or, with --dry-run, the plan); exit 3 when only some services succeeded. */
export const createCommand = defineCommand<CreateFlags, Manifest | BackupPlanResult>({
  path: 'backup create',
  exitCodes: [...ALWAYS_POSSIBLE, ExitCode.partial, ExitCode.notFound, ExitCode.integrity, ExitCode.dockerUnreachable, ExitCode.storage, ExitCode.locked, ExitCode.offsite],
  description: 'discover the running datastores and back each up, in parallel',
  shared: ['dir', 'host', 'metrics', 'project', 'encryptTo', 'identity', 'stopTimeout', 'json'],
  options: () => [
    new Option('--type <type>', 'backup type').choices(['manual', 'daily', 'weekly', 'monthly', 'pre-update']).default('manual'),
    new Option('--comment <text>', 'free text stored with the backup').default(''),
    new Option('--only <services>', 'comma-separated services to back up'),
    new Option('--parallel <n>', 'how many services to back up at once').default('4'),
    new Option('--compress <codec>', 'artifact compression').choices(['gzip', 'zstd', 'none']).default(DEFAULT_COMPRESSION),
    new Option('--prefix <prefix>', 'directory name prefix').default('stackvault'),
    new Option('--verify', 'right after the backup, restore each artifact into a throwaway container and check its content (as verify --deep)'),
    new Option('--offsite', 'then store it in the restic repository of RESTIC_REPOSITORY (with earlier backups whose offsite copy failed)').env('STACKVAULT_OFFSITE'),
    new Option('--dry-run', 'show what would be backed up (driver, paths, size, stop or pause) and what is left out, touching nothing'),
    new Option('--verbose', 'also list what was not backed up and why (skipped mounts, left-out containers)'),
    new Option('--consistent', 'one point in time for every store: app containers are paused briefly while each store fixes its snapshot'),
  ],
  examples: [
    './bot.sh backup create',
    './bot.sh backup create --project bot --only postgres,redis --compress zstd',
    './bot.sh backup create --verify',
    'RESTIC_REPOSITORY=sftp:backup@nas:/srv/restic RESTIC_PASSWORD_FILE=~/.restic-pw ./bot.sh backup create --offsite',
    './bot.sh backup create --project bot --consistent',
    './bot.sh backup create --project bot --dry-run',
    'BACKUP_DIR=/srv/backups ./bot.sh backup create --type daily --json',
  ],
  logged: true,
  writesMetrics: true,
  async run({ flags, io }) {
    const parallel = wholeNumber(flags.parallel, '--parallel')!;
    const [{ commandContext }, { parseServiceList }] = await Promise.all([import('./context.js'), import('../core/selection.js')]);
    const ctx = commandContext(flags.host);
    if (flags.dryRun) {
      const { planBackup } = await import('../core/plan.js');
      return { data: await planBackup({ project: flags.project, only: parseServiceList(flags.only), consistent: flags.consistent, warn: (m) => io.say(`warning: ${m}`) }, ctx) };
    }
    const [{ createBackup }, { verifyBackup }, { readManifest, MANIFEST_FILE }, { offsiteByPolicy }, { requireOffsite, asOffsiteError }, { progressFor }, { join }] = await Promise.all([
      import('../core/create.js'),
      import('../core/verify.js'),
      import('../core/manifest.js'),
      import('../core/removal.js'),
      import('../offsite/restic.js'),
      import('./progress-renderers.js'),
      import('node:path'),
    ]);
    // A missing repository is found out before any container is touched.
    const offsite = flags.offsite || (await offsiteByPolicy(flags.dir));
    if (offsite) requireOffsite();
    const progress = progressFor(io.out);
    let exitCode: ExitCodeValue = ExitCode.ok;
    try {
      const { manifest, path } = await createBackup(
        {
          dir: flags.dir,
          type: flags.type,
          comment: flags.comment,
          project: flags.project,
          only: parseServiceList(flags.only),
          parallel,
          compress: flags.compress,
          prefix: flags.prefix,
          encryptTo: flags.encryptTo,
          stopTimeout: parseStopTimeout(flags.stopTimeout),
          consistent: flags.consistent,
        },
        { ...ctx, progress },
      );
      // Backed up whole but refused by a restore (restoreRefuses) counts as not backed up: nothing reports ✅ that cannot be restored.
      const failed = manifest.services.filter((s) => s.status !== 'ok' || s.restoreRefuses !== undefined);
      // --verify: prove the new backup restores, before anyone relies on it.
      const verified = flags.verify ? await verifyBackup(flags.dir, manifest.id, { ...ctx, progress }, flags.identity) : undefined;
      // After a verification the manifest on disk also holds its result and any fingerprint it recorded.
      const final = verified ? await readManifest(join(path, MANIFEST_FILE)) : manifest;
      const total = manifest.services.reduce((t, s) => t + (s.bytes ?? 0), 0);
      io.say(
        shown(`${failed.length ? 'Partial backup' : 'Backup'} ${manifest.id}: ${manifest.services.length - failed.length}/${manifest.services.length} services, ${formatBytes(total)} in ${path}`),
      );
      if (failed.length) {
        io.say(
          shown(`warning: not backed up: ${failed.map((s) => `${s.name} (${s.status === 'ok' ? `kept, but a restore would refuse it: ${s.restoreRefuses}` : `${s.status}: ${s.error}`})`).join('; ')}`),
        );
        exitCode = ExitCode.partial;
      }
      // Each service's warnings were shown under its line as it finished (progress-renderers.ts), once.
      if (flags.verbose) {
        for (const s of final.services) {
          for (const k of s.skipped ?? []) io.say(shown(`  ${s.name}: not backed up: ${k.path} (${k.why})`));
        }
        for (const l of final.leftOut ?? []) io.say(shown(`  left out: ${l.service ?? l.container} (${l.reason})`));
      }
      if (verified) {
        for (const s of verified.services) io.say(shown(s.ok ? `✅ ${s.service}: restored into a throwaway container and checked` : `❌ ${s.service}: does not restore: ${s.error}`));
        const bad = verified.services.filter((s) => !s.ok);
        if (bad.length) {
          io.say(shown(`Backup ${manifest.id} is kept but FAILED its verification: ${bad.map((s) => s.service).join(', ')} would not restore.`));
          exitCode = ExitCode.integrity;
        }
      }
      if (offsite) {
        // The backup is made: a failing offsite step must not keep its manifest from a script.
        try {
          exitCode = (await storeOffsiteAndReport(flags.dir, manifest.id, io)) ?? exitCode;
        } catch (err) {
          return { data: final, exitCode, backupId: manifest.id, error: asOffsiteError(err) };
        }
      }
      return { data: final, exitCode, backupId: manifest.id };
    } finally {
      progress.stop?.();
    }
  },
  render(data, io, flags) {
    if (flags.dryRun) io.out.write(renderPlan(data as BackupPlanResult));
  },
});

/** --offsite: the new backup, then any earlier one still pending; a failure keeps the local backup and exits 10. */
async function storeOffsiteAndReport(dir: string, id: string, io: CommandIO): Promise<ExitCodeValue | undefined> {
  const [{ storeNewAndPending }, { shownRepository }, { interruptSignal }] = await Promise.all([import('../core/offsite.js'), import('../offsite/restic.js'), import('../util/interrupt.js')]);
  io.say(`Storing offsite in the restic repository ${shownRepository()} ...`);
  const outcomes = await storeNewAndPending(dir, id, interruptSignal);
  for (const o of outcomes) {
    if (o.stored) {
      const s = o.stored;
      io.say(
        `✅ ${o.id} stored offsite (snapshot ${s.snapshot}${s.created ? ', new repository' : ''}): ${formatBytes(s.bytesIn)} in, ${formatBytes(s.bytesAdded)} of it new after deduplication (before restic compresses it)`,
      );
    } else {
      io.say(`❌ ${o.id} NOT stored offsite: ${o.error} (kept locally; the next backup create --offsite tries again)`);
    }
  }
  const failed = outcomes.find((o) => !o.ok);
  return failed ? ((failed.exitCode as ExitCodeValue | undefined) ?? ExitCode.offsite) : undefined;
}

export function renderPlan(plan: BackupPlanResult): string {
  const lines = ['Dry run: nothing was touched. A backup would take:'];
  for (const s of plan.services) {
    if (s.notRunning) {
      lines.push(`  ${s.service} (${s.driver}, ${s.container}): not running (${s.notRunning}), would be recorded as skipped`);
      continue;
    }
    if (s.problem) {
      lines.push(`  ${s.service} (${s.driver}, ${s.container}): cannot be planned: ${s.problem}`);
      continue;
    }
    const size = s.estimatedBytes !== undefined ? `, about ${formatBytes(s.estimatedBytes)}` : '';
    const how =
      s.interrupts === 'online' ? 'stays online' : s.interrupts === 'paused' ? 'paused while copied' : s.interrupts === 'stopped' ? 'stopped while copied' : 'whether it is stopped is not known';
    lines.push(`  ${s.service} (${s.driver}, ${s.container}): ${s.method ?? 'method not known'}; ${how}${size}`);
    for (const p of s.paths ?? []) lines.push(`      ${p}`);
    for (const k of s.skipped ?? []) lines.push(`      not backed up: ${k.path} (${k.why})`);
    for (const w of s.warnings ?? []) lines.push(`      warning: ${w}`);
  }
  for (const l of plan.leftOut) lines.push(`  left out: ${l.service ?? l.container} (${l.reason})`);
  const c = plan.consistency;
  if (c) {
    lines.push(
      `Consistent${c.byLabel ? ' (the label stackvault.consistent=true asks for it)' : ''}: every store fixes its point in one window in which ${c.writers.length ? `${c.writers.join(', ')} ${c.writers.length > 1 ? 'are' : 'is'} paused` : 'no container is paused (no writers found)'}.`,
    );
    if (c.copiedWhole.length) lines.push(`  copied whole inside the window (no quick snapshot point): ${c.copiedWhole.join(', ')}`);
  }
  // Names, paths and reasons come from labels and the containers: each line escaped, line ends kept.
  return `${lines.map(shown).join('\n')}\n`;
}
