import chalk from 'chalk';
import { readCatalog, type BackupRecord } from '../core/catalog.js';
import { statusMark } from '../core/backup-info.js';
import { leftStopped, leftStoppedWarning } from '../core/stopped-markers.js';
import { formatAge, formatBytes, formatDate, formatDuration } from '../util/format.js';
import { commandContext } from './context.js';
import { listOffsite, type RemoteBackup } from '../core/offsite.js';
import { requireOffsite, shownRepository } from '../offsite/restic.js';
import { interruptSignal } from '../util/interrupt.js';

interface ListFlags {
  host?: string[];
  dir: string;
  all?: boolean;
  json?: boolean;
  remote?: boolean;
}

export async function listCommand(flags: ListFlags): Promise<void> {
  const catalog = await readCatalog(flags.dir);
  if (flags.remote) requireOffsite();
  const remote = flags.remote ? await listOffsite(interruptSignal) : undefined;
  if (flags.json && remote) {
    process.stdout.write(`${JSON.stringify({ local: catalog.backups.map((b) => b.manifest), remote }, null, 2)}\n`);
    return;
  }
  if (flags.json) {
    const out = catalog.backups.map((b) => b.manifest);
    process.stdout.write(`${JSON.stringify(flags.all ? { backups: out, incomplete: catalog.incomplete } : out, null, 2)}\n`);
    return;
  }
  await warnLeftStopped(catalog.dir, flags.host);
  const now = new Date();
  if (catalog.backups.length === 0) {
    process.stdout.write(`No backups in ${catalog.dir}. Create one with: ./bot.sh backup create\n`);
  } else {
    process.stdout.write(`${catalog.backups.length} backup${catalog.backups.length > 1 ? 's' : ''} in ${catalog.dir}, newest first:\n\n`);
    for (const b of catalog.backups) process.stdout.write(`${renderRow(b, now)}\n`);
    process.stdout.write(`\nRestore the newest with: ./bot.sh backup restore ${catalog.backups[0]!.manifest.id}\n`);
  }
  if (remote) process.stdout.write(renderRemote(remote, new Set(catalog.backups.map((b) => b.manifest.id)), now));
  if (catalog.incomplete.length > 0) {
    if (flags.all) {
      process.stdout.write(`\nIncomplete (not backups):\n`);
      for (const d of catalog.incomplete) process.stdout.write(`  ${chalk.yellow('!')} ${d.name}: ${d.reason}\n`);
    } else {
      process.stdout.write(chalk.dim(`\n${catalog.incomplete.length} incomplete director${catalog.incomplete.length > 1 ? 'ies' : 'y'} not shown (--all shows them).\n`));
    }
  }
}

function renderRemote(remote: RemoteBackup[], local: Set<string>, now: Date): string {
  const lines = [`\n${remote.length} backup${remote.length === 1 ? '' : 's'} in the restic repository ${shownRepository()}, newest first:`];
  for (const r of remote) {
    const at = new Date(r.time);
    lines.push(
      `  ${chalk.bold(r.id)}  ${formatDate(at)} (${formatAge(at, now)})  ${r.type}  snapshot ${r.snapshot} from ${r.hostname}  ${local.has(r.id) ? 'also local' : chalk.cyan('only offsite')}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function renderRow(b: BackupRecord, now: Date): string {
  const m = b.manifest;
  const created = new Date(m.createdAt);
  const services = m.services.map((s) => `${statusMark(s)} ${s.name}${s.engine ? `@${s.engine}` : ''}${s.downtimeMs !== undefined ? ` (down ${formatDuration(s.downtimeMs)})` : ''}`).join('  ');
  const comment = m.comment ? `  "${m.comment}"` : '';
  return `${chalk.bold(m.id)}  ${formatDate(created)} (${formatAge(created, now)})  ${m.type}  ${formatBytes(b.bytes)}${comment}\n    ${services}`;
}

/** A killed run may have left containers stopped; say which, if Docker can tell us. */
async function warnLeftStopped(dir: string, hosts: string[] | undefined): Promise<void> {
  try {
    const warning = leftStoppedWarning(await leftStopped(dir, commandContext(hosts).engine));
    if (warning) process.stderr.write(`${chalk.yellow('warning:')} ${warning}\n`);
  } catch {
    // Docker unreachable: listing backups does not need it.
  }
}
