import { ExitCode, StackvaultError, ALWAYS_POSSIBLE } from '../errors.js';
import { formatBytes, formatDate } from '../util/format.js';
import { defineCommand } from './command.js';
import type { SharedFlagValues } from './shared-flags.js';

export const deleteCommand = defineCommand<SharedFlagValues, { deleted: string; freedBytes: number }>({
  path: 'backup delete',
  exitCodes: [...ALWAYS_POSSIBLE, ExitCode.notFound, ExitCode.integrity, ExitCode.storage, ExitCode.locked, ExitCode.aborted],
  description: 'delete one backup (asks first)',
  arguments: [{ name: '<id>', description: 'backup directory name, its timestamp part, or "latest"' }],
  shared: ['dir', 'yes', 'json'],
  examples: ['./bot.sh backup delete 20261121_020000', './bot.sh backup delete latest --yes'],
  logged: true,
  async run({ args: [id], flags, io }) {
    const [{ readCatalog, resolveBackup }, { du }, { acquireLock }, { confirm }, { removeTree }, { join }] = await Promise.all([
      import('../core/catalog.js'),
      import('../core/removal.js'),
      import('../core/lock.js'),
      import('./confirm.js'),
      import('../util/safe-remove.js'),
      import('node:path'),
    ]);
    const catalog = await readCatalog(flags.dir);
    const backup = resolveBackup(catalog, id!);
    const bytes = await du(backup.path);
    io.say(`Delete ${backup.manifest.id} (${backup.manifest.type}, ${formatDate(new Date(backup.manifest.createdAt))}, ${formatBytes(bytes)})?`);
    if (!(await confirm('Delete this backup for good?', flags.yes, 'Deleting a backup'))) throw new StackvaultError('Not deleted.', ExitCode.aborted);
    const release = await acquireLock(catalog.dir, `backup delete ${backup.manifest.id}`, 60_000);
    try {
      await removeTree(join(catalog.dir, backup.manifest.id));
    } finally {
      await release();
    }
    return { data: { deleted: backup.manifest.id, freedBytes: bytes }, backupId: backup.manifest.id };
  },
  render: (d, io) => io.say(`Deleted ${d.deleted}; freed ${formatBytes(d.freedBytes)}.`),
});
