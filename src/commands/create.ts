import { createBackup } from '../core/create.js';
import { verifyBackup } from '../core/verify.js';
import { type BackupPlanResult, planBackup } from '../core/plan.js';
import type { Compression } from '../core/artifact.js';
import { type BackupType, MANIFEST_FILE, readManifest } from '../core/manifest.js';
import { join } from 'node:path';
import { parseServiceList } from '../core/selection.js';
import { ExitCode, usageError } from '../errors.js';
import { formatBytes } from '../util/format.js';
import { commandContext } from './context.js';
import { withMetrics } from './metrics-file.js';
import { shownRepository, requireOffsite } from '../offsite/restic.js';
import { storeNewAndPending } from '../core/offsite.js';
import { offsiteByPolicy } from '../core/removal.js';
import { interruptSignal } from '../util/interrupt.js';
import { progressFor } from './progress-renderers.js';

interface CreateFlags {
  metrics?: string;
  host?: string[];
  dir: string;
  type: BackupType;
  comment: string;
  project?: string;
  only?: string;
  parallel: string;
  compress: Compression;
  prefix: string;
  json?: boolean;
  encryptTo?: string[];
  verify?: boolean;
  identity?: string;
  dryRun?: boolean;
  verbose?: boolean;
  stopTimeout?: string;
  offsite?: boolean;
  consistent?: boolean;
}

/** `--stop-timeout SECONDS`: a whole number, or undefined for each container's own timeout. */
export function parseStopTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw usageError(`--stop-timeout must be a whole number of seconds, not '${value}'.`);
  return n;
}

/** `backup create`: parse flags, run the core, render. Exit code 3 when only some services succeeded. */
export async function createCommand(flags: CreateFlags): Promise<{ backupId: string }> {
  if (flags.dryRun) return runCreate(flags);
  return withMetrics(flags.metrics, flags.dir, flags.project, () => runCreate(flags));
}

async function runCreate(flags: CreateFlags): Promise<{ backupId: string }> {
  const parallel = Number(flags.parallel);
  if (!Number.isInteger(parallel) || parallel < 1) throw usageError(`--parallel must be a whole number of at least 1, not '${flags.parallel}'.`);
  // Human output goes to stderr under --json, so stdout carries the manifest and nothing else.
  const out = flags.json ? process.stderr : process.stdout;
  const ctx = commandContext(flags.host);
  if (flags.dryRun) {
    const plan = await planBackup({ project: flags.project, only: parseServiceList(flags.only) }, ctx);
    if (flags.json) process.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
    else out.write(renderPlan(plan));
    return { backupId: '' };
  }
  // A missing repository is found out before any container is touched.
  flags.offsite ||= await offsiteByPolicy(flags.dir);
  if (flags.offsite) requireOffsite();
  const progress = progressFor(out);
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
    const failed = manifest.services.filter((s) => s.status !== 'ok');
    // --verify: prove the new backup restores, before anyone relies on it.
    const verified = flags.verify ? await verifyBackup(flags.dir, manifest.id, { ...ctx, progress }, flags.identity) : undefined;
    // After a verification the manifest on disk also holds its result and any fingerprint it recorded.
    const final = verified ? await readManifest(join(path, MANIFEST_FILE)) : manifest;
    if (flags.json) process.stdout.write(`${JSON.stringify(final, null, 2)}\n`);
    const total = manifest.services.reduce((t, s) => t + (s.bytes ?? 0), 0);
    out.write(`${failed.length ? 'Partial backup' : 'Backup'} ${manifest.id}: ${manifest.services.length - failed.length}/${manifest.services.length} services, ${formatBytes(total)} in ${path}\n`);
    if (failed.length) {
      out.write(`warning: not backed up: ${failed.map((s) => `${s.name} (${s.status}: ${s.error})`).join('; ')}\n`);
      process.exitCode = ExitCode.partial;
    }
    if (flags.verbose || failed.length) {
      for (const s of final.services) for (const w of s.warnings ?? []) out.write(`warning: ${s.name}: ${w}\n`);
    }
    if (flags.verbose) {
      for (const s of final.services) {
        for (const k of (s.details?.skipped as Array<{ path: string; why: string }> | undefined) ?? []) out.write(`  ${s.name}: not backed up: ${k.path} (${k.why})\n`);
      }
      for (const l of final.leftOut ?? []) out.write(`  left out: ${l.service ?? l.container} (${l.reason})\n`);
    }
    if (verified) {
      for (const s of verified.services) out.write(s.ok ? `✅ ${s.service}: restored into a throwaway container and checked\n` : `❌ ${s.service}: does not restore: ${s.error}\n`);
      const bad = verified.services.filter((s) => !s.ok);
      if (bad.length) {
        out.write(`Backup ${manifest.id} is kept but FAILED its verification: ${bad.map((s) => s.service).join(', ')} would not restore.\n`);
        process.exitCode = ExitCode.integrity;
      }
    }
    if (flags.offsite) await storeOffsiteAndReport(flags.dir, manifest.id, out);
    return { backupId: manifest.id };
  } finally {
    progress.stop?.();
  }
}

/** --offsite: the new backup, then any earlier one still pending; a failure keeps the local backup and exits 10. */
async function storeOffsiteAndReport(dir: string, id: string, out: NodeJS.WritableStream): Promise<void> {
  out.write(`Storing offsite in the restic repository ${shownRepository()} ...\n`);
  const outcomes = await storeNewAndPending(dir, id, interruptSignal);
  for (const o of outcomes) {
    if (o.stored) {
      const s = o.stored;
      out.write(
        `✅ ${o.id} stored offsite (snapshot ${s.snapshot}${s.created ? ', new repository' : ''}): ${formatBytes(s.bytesIn)} in, ${formatBytes(s.bytesAdded)} of it new after deduplication (before restic compresses it)\n`,
      );
    } else {
      out.write(`❌ ${o.id} NOT stored offsite: ${o.error} (kept locally; the next backup create --offsite tries again)\n`);
    }
  }
  const failed = outcomes.find((o) => !o.ok);
  if (failed) process.exitCode = failed.exitCode ?? ExitCode.offsite;
}

function renderPlan(plan: BackupPlanResult): string {
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
    const how = s.interrupts === 'online' ? 'stays online' : s.interrupts === 'paused' ? 'paused while copied' : 'stopped while copied';
    lines.push(`  ${s.service} (${s.driver}, ${s.container}): ${s.method}; ${how}${size}`);
    for (const p of s.paths ?? []) lines.push(`      ${p}`);
    for (const k of s.skipped ?? []) lines.push(`      not backed up: ${k.path} (${k.why})`);
    for (const w of s.warnings ?? []) lines.push(`      warning: ${w}`);
  }
  for (const l of plan.leftOut) lines.push(`  left out: ${l.service ?? l.container} (${l.reason})`);
  return `${lines.join('\n')}\n`;
}
