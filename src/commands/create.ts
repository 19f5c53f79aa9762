import { createBackup } from '../core/create.js';
import type { Compression } from '../core/artifact.js';
import type { BackupType } from '../core/manifest.js';
import { parseServiceList } from '../core/selection.js';
import { ExitCode, usageError } from '../errors.js';
import { formatBytes } from '../util/format.js';
import { commandContext } from './context.js';
import { progressFor } from './progress-renderers.js';

interface CreateFlags {
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
  stopTimeout?: string;
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
  const parallel = Number(flags.parallel);
  if (!Number.isInteger(parallel) || parallel < 1) throw usageError(`--parallel must be a whole number of at least 1, not '${flags.parallel}'.`);
  // Human output goes to stderr under --json, so stdout carries the manifest and nothing else.
  const out = flags.json ? process.stderr : process.stdout;
  const progress = progressFor(out);
  const ctx = commandContext();
  try {
    const { manifest, path } = await createBackup(
      { dir: flags.dir, type: flags.type, comment: flags.comment, project: flags.project, only: parseServiceList(flags.only), parallel, compress: flags.compress, prefix: flags.prefix, encryptTo: flags.encryptTo, stopTimeout: parseStopTimeout(flags.stopTimeout) },
      { ...ctx, progress },
    );
    const failed = manifest.services.filter((s) => s.status !== 'ok');
    if (flags.json) process.stdout.write(`${JSON.stringify(manifest, null, 2)}\n`);
    const total = manifest.services.reduce((t, s) => t + (s.bytes ?? 0), 0);
    out.write(`${failed.length ? 'Partial backup' : 'Backup'} ${manifest.id}: ${manifest.services.length - failed.length}/${manifest.services.length} services, ${formatBytes(total)} in ${path}\n`);
    if (failed.length) {
      out.write(`warning: not backed up: ${failed.map((s) => `${s.name} (${s.status}: ${s.error})`).join('; ')}\n`);
      process.exitCode = ExitCode.partial;
    }
    return { backupId: manifest.id };
  } finally {
    progress.stop?.();
  }
}
