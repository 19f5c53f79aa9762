import { ALWAYS_POSSIBLE, ExitCode } from '../errors.js';
import { Option } from 'commander';
import { defineCommand } from './command.js';
import type { SharedFlagValues } from './shared-flags.js';

/** `backup report`: the directory's history as one self-contained HTML file (default <dir>/report.html). */
export const reportCommand = defineCommand<SharedFlagValues & { out?: string }, { file: string; backups: number }>({
  path: 'backup report',
  exitCodes: [...ALWAYS_POSSIBLE, ExitCode.storage],
  description:
    'write the history of the backup directory as one self-contained HTML file: size, duration and downtime per service over time, compression, verify and drill results, failures, the scheduler',
  shared: ['dir', 'json'],
  options: () => [new Option('--out <file>', 'where to write it (default <dir>/report.html)')],
  examples: ['./bot.sh backup report', './bot.sh backup report --out /var/www/html/backups.html'],
  async run({ flags }) {
    const [{ readCatalog }, { renderReport }, { schedulerStatus }, { writeFileAtomic }, { join, resolve }] = await Promise.all([
      import('../core/catalog.js'),
      import('../core/report.js'),
      import('../core/scheduler.js'),
      import('../util/safe-file.js'),
      import('node:path'),
    ]);
    const catalog = await readCatalog(flags.dir);
    const scheduler = await schedulerStatus(flags.dir).catch(() => undefined);
    const file = resolve(flags.out ?? join(catalog.dir, 'report.html'));
    try {
      await writeFileAtomic(file, renderReport({ dir: catalog.dir, backups: catalog.backups, ahead: catalog.ahead, scheduler, now: new Date() }), { mode: 0o600 });
    } catch (err) {
      // A read-only or full backup directory is one sentence (exit 7), and where else it can go.
      const { describeFsError, isStorageFailure } = await import('../core/backup-dir.js');
      const { storageError } = await import('../errors.js');
      if (isStorageFailure(err)) throw storageError(`The report cannot be written to ${file}: ${describeFsError(err)}.`, 'Write it elsewhere with --out FILE.');
      throw err;
    }
    return { data: { file, backups: catalog.backups.length + catalog.ahead.length } };
  },
  render: ({ file, backups }, io) => io.say(`Report of ${backups} backups written to ${file} (open it in any browser; it needs no network).`),
});
