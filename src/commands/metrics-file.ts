import { readCatalog } from '../core/catalog.js';
import { renderMetrics, writeMetricsFile } from '../core/metrics.js';
import { ExitCode } from '../errors.js';

/**
 * --metrics FILE: runs `work` (a backup run), then writes the Prometheus metrics of how it went,
 * whatever the outcome (a failed run is what monitoring most needs to see). A metrics file that
 * cannot be written is a warning, not a failed backup.
 */
export async function withMetrics<T extends { backupId?: string; exitCode?: number }>(file: string, dir: string, project: string | undefined, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  let exitCode: number = ExitCode.failure;
  let backupId: string | undefined;
  try {
    const result = await work();
    backupId = result.backupId;
    exitCode = result.exitCode ?? ExitCode.ok;
    return result;
  } catch (err) {
    exitCode = (err as { exitCode?: number }).exitCode ?? ExitCode.failure;
    throw err;
  } finally {
    try {
      const catalog = await readCatalog(dir).catch(() => ({ backups: [], ahead: [] }));
      const manifest = backupId ? catalog.backups.find((b) => b.manifest.id === backupId)?.manifest : undefined;
      await writeMetricsFile(file, renderMetrics({ finishedAt: new Date(), durationMs: Date.now() - started, exitCode, manifest }, catalog, project));
    } catch (err) {
      process.stderr.write(`warning: the metrics file ${file} could not be written: ${(err as Error).message}\n`);
    }
  }
}
