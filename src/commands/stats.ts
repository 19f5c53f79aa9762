import { readCatalog } from '../core/catalog.js';
import { computeStats, type Bucket } from '../core/stats.js';
import { formatAge, formatBytes, formatDate, formatDuration } from '../util/format.js';

const downtime = (b: { lastDowntimeMs?: number; maxDowntimeMs?: number }) =>
  b.lastDowntimeMs === undefined ? '' : `  down ${formatDuration(b.lastDowntimeMs)} last, ${formatDuration(b.maxDowntimeMs ?? b.lastDowntimeMs)} at most`;

export async function statsCommand(flags: { dir: string; json?: boolean }): Promise<void> {
  const catalog = await readCatalog(flags.dir);
  const stats = computeStats(catalog.backups, catalog.incomplete.length);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(stats, null, 2)}\n`);
    return;
  }
  const now = new Date();
  const when = (b?: { id: string; createdAt: string }) => (b ? `${b.id} (${formatDate(new Date(b.createdAt))}, ${formatAge(new Date(b.createdAt), now)})` : '-');
  const row = (name: string, b: Bucket, extra = '') =>
    `  ${name.padEnd(16)} ${String(b.count).padStart(4)}  ${formatBytes(b.bytes).padStart(9)}  ${b.bytes ? `${(b.rawBytes / b.bytes).toFixed(1)}x` : '-'}${extra}`;
  const lines = [
    `${stats.backups} backups, ${formatBytes(stats.bytes)} on disk (${formatBytes(stats.rawBytes)} before compression, ratio ${stats.compressionRatio ?? '-'}x) in ${catalog.dir}`,
    '',
    'By type:             count       size  ratio',
    ...Object.entries(stats.byType)
      .sort()
      .map(([t, b]) => row(t, b)),
    '',
    'By service:          count       size  ratio',
    ...Object.entries(stats.byService)
      .sort()
      .map(([s, b]) => row(s, b, `${b.engine ? `  on ${b.engine}` : ''}${b.failed ? `  (${b.failed} failed)` : ''}${downtime(b)}`)),
    '',
    `Oldest:           ${when(stats.oldest)}`,
    `Newest:           ${when(stats.newest)}`,
    `Last successful:  ${when(stats.lastSuccessful)}`,
    ...(stats.incomplete ? [`Incomplete directories: ${stats.incomplete} (see backup list --all)`] : []),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
