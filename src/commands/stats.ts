import { ALWAYS_POSSIBLE, ExitCode } from '../errors.js';
import type { Bucket, Stats } from '../core/stats.js';
import { formatAge, formatBytes, formatDate, formatDuration } from '../util/format.js';
import { shown } from '../util/terminal.js';
import { defineCommand } from './command.js';
import type { SharedFlagValues } from './shared-flags.js';

const downtime = (b: { lastDowntimeMs?: number; maxDowntimeMs?: number }) =>
  b.lastDowntimeMs === undefined ? '' : `  down ${formatDuration(b.lastDowntimeMs)} last, ${formatDuration(b.maxDowntimeMs ?? b.lastDowntimeMs)} at most`;

export const statsCommand = defineCommand<SharedFlagValues, Stats & { dir: string }>({
  path: 'backup stats',
  exitCodes: [...ALWAYS_POSSIBLE, ExitCode.storage],
  description: 'count and size per type and per service, compression ratio, last success',
  shared: ['dir', 'json'],
  examples: ['./bot.sh backup stats', './bot.sh backup stats --json | jq .lastSuccessful'],
  async run({ flags }) {
    const [{ readCatalog }, { computeStats }] = await Promise.all([import('../core/catalog.js'), import('../core/stats.js')]);
    const catalog = await readCatalog(flags.dir);
    return { data: { ...computeStats(catalog.backups, catalog.incomplete.length, catalog.ahead), dir: catalog.dir } };
  },
  render: (stats, io) => io.say(renderStats(stats)),
});

function renderStats(stats: Stats & { dir: string }): string {
  const now = new Date();
  const when = (b?: { id: string; createdAt: string }) => (b ? `${shown(b.id)} (${formatDate(new Date(b.createdAt))}, ${formatAge(new Date(b.createdAt), now)})` : '-');
  const row = (name: string, b: Bucket, extra = '') =>
    `  ${shown(name).padEnd(16)} ${String(b.count).padStart(4)}  ${formatBytes(b.bytes).padStart(9)}  ${b.bytes ? `${(b.rawBytes / b.bytes).toFixed(1)}x` : '-'}${extra}`;
  const lines = [
    `${stats.backups} backups${stats.ahead.length ? ` (${stats.ahead.length} dated ahead of this clock, below)` : ''}, ${formatBytes(stats.bytes)} on disk (${formatBytes(stats.rawBytes)} before compression, ratio ${stats.compressionRatio ?? '-'}x) in ${stats.dir}`,
    '',
    'By type:             count       size  ratio',
    ...Object.entries(stats.byType)
      .sort()
      .map(([t, b]) => row(t, b)),
    '',
    'By service:          count       size  ratio',
    ...Object.entries(stats.byService)
      .sort()
      .map(([s, b]) => row(s, b, `${b.engine ? `  on ${shown(b.engine)}` : ''}${b.failed ? `  (${b.failed} failed)` : ''}${downtime(b)}`)),
    '',
    `Oldest:           ${when(stats.oldest)}`,
    `Newest:           ${when(stats.newest)}`,
    `Last successful:  ${when(stats.lastSuccessful)}`,
    ...(stats.ahead.length
      ? [
          '',
          `Dated ahead of this clock (${formatDate(now)}): ${stats.ahead.length}, counted above but not as oldest, newest or last successful (made while a clock ran ahead; restore, verify or delete by ID):`,
          ...stats.ahead.map((b) => `  ${when(b)}`),
        ]
      : []),
    ...(stats.incomplete ? [`Incomplete directories: ${stats.incomplete} (see backup list --all)`] : []),
  ];
  return lines.join('\n');
}
