import { ALWAYS_POSSIBLE, ExitCode } from '../errors.js';
import { Option } from 'commander';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { BackupRecord, Catalog } from '../core/catalog.js';
import type { Manifest } from '../core/manifest.js';
import type { RemoteBackup } from '../core/offsite.js';
import { formatAge, formatBytes, formatDate, formatDuration } from '../util/format.js';
import { shown } from '../util/terminal.js';
import { defineCommand } from './command.js';
import type { SharedFlagValues } from './shared-flags.js';

interface ListFlags extends SharedFlagValues {
  all?: boolean;
  remote?: boolean;
}

/** What `backup list` found, for people; `--json` prints the manifests instead. */
interface Listing {
  catalog: Catalog;
  remote?: RemoteBackup[];
  repository?: string;
  /** Containers a killed run left stopped, in a sentence (when Docker answers). */
  leftStopped?: string;
}

type ListJson = Manifest[] | { backups: Manifest[]; ahead: Manifest[]; incomplete: Catalog['incomplete'] } | { local: Manifest[]; remote: RemoteBackup[] };

export const listCommand = defineCommand<ListFlags, Listing | ListJson>({
  path: 'backup list',
  exitCodes: [...ALWAYS_POSSIBLE, ExitCode.storage, ExitCode.offsite],
  description: 'list backups, newest first',
  shared: ['dir', 'host', 'json'],
  options: () => [
    new Option('--all', 'also show incomplete directories'),
    new Option('--remote', 'also list the backups in the restic repository of RESTIC_REPOSITORY (with --json: {"local": [...], "remote": [...]})'),
  ],
  examples: ['./bot.sh backup list', './bot.sh backup list --json | jq ".[0].id"', './bot.sh backup list --remote'],
  async run({ flags }) {
    const [{ readCatalog }, offsite, restic, { interruptSignal }] = await Promise.all([
      import('../core/catalog.js'),
      import('../core/offsite.js'),
      import('../offsite/restic.js'),
      import('../util/interrupt.js'),
    ]);
    if (flags.remote) restic.requireOffsite();
    // On a new host (the disk lost) there is no backup directory yet: what the repository holds
    // is what the user needs to see, beside no local backups.
    const here = flags.remote ? await stat(resolve(flags.dir)).catch(() => undefined) : true;
    const catalog: Catalog = here ? await readCatalog(flags.dir) : { dir: resolve(flags.dir), backups: [], ahead: [], incomplete: [] };
    const remote = flags.remote ? await offsite.listOffsite(interruptSignal) : undefined;
    if (flags.json) {
      const manifests = catalog.backups.map((b) => b.manifest);
      const ahead = catalog.ahead.map((b) => b.manifest);
      return { data: remote ? { local: manifests, remote } : flags.all ? { backups: manifests, ahead, incomplete: catalog.incomplete } : manifests };
    }
    return { data: { catalog, remote, repository: remote ? restic.shownRepository() : undefined, leftStopped: await leftStoppedSentence(catalog.dir, flags.host) } };
  },
  async render(data, io, flags) {
    const listing = data as Listing;
    const [{ default: chalk }, { statusMark }, { ownersHint, resolveBackup }] = await Promise.all([import('chalk'), import('../core/backup-info.js'), import('../core/catalog.js')]);
    const { catalog, remote } = listing;
    for (const line of listing.leftStopped?.split('\n') ?? []) process.stderr.write(`${chalk.yellow('warning:')} ${line}\n`);
    const now = new Date();
    // Never hidden as "incomplete": whole backups, often, copied in by another user.
    const unreadable = catalog.incomplete.filter((d) => d.unreadable);
    for (const d of unreadable) process.stderr.write(`${chalk.yellow('warning:')} ${shown(d.name)} is ${shown(d.reason)}.\n`);
    if (unreadable.length) process.stderr.write(`  hint: ${shown(ownersHint(catalog.dir))}\n`);
    if (catalog.backups.length === 0 && unreadable.length) {
      io.say(`No backups in ${catalog.dir} that this user can read.`);
    } else if (catalog.backups.length === 0) {
      io.say(`No backups in ${catalog.dir}. Create one with: ./bot.sh backup create`);
    } else {
      io.say(`${catalog.backups.length} backup${catalog.backups.length > 1 ? 's' : ''} in ${catalog.dir}, newest first:\n`);
      for (const b of catalog.backups) io.say(renderRow(b, now, chalk, statusMark));
      // What `latest` restores, by its own rule: never a restore point (after a restore onto a new
      // host, the empty stack it replaced), never an older backup past a newer one this user
      // cannot read (the warning above names it). None: no line.
      const newest = (() => {
        try {
          return resolveBackup(catalog, 'latest');
        } catch {
          return undefined;
        }
      })();
      if (newest) io.say(`\nRestore the newest with: ./bot.sh backup restore ${shown(newest.manifest.id)}`);
    }
    if (catalog.ahead.length > 0) {
      // Always shown: they are backups (often the newest data there is), only their dates cannot be placed.
      const n = catalog.ahead.length;
      io.say(
        `\n${n} backup${n > 1 ? 's' : ''} dated ahead of this clock (${formatDate(now)}): made while this host's clock ran ahead, or on a host whose clock does. ${n > 1 ? 'They are' : 'It is'} never "latest" and never removed by cleanup or prune; restore, verify or delete ${n > 1 ? 'one' : 'it'} by its ID:\n`,
      );
      for (const b of catalog.ahead) io.say(renderRow(b, now, chalk, statusMark));
    }
    if (remote) io.out.write(renderRemote(remote, listing.repository ?? '', new Set([...catalog.backups, ...catalog.ahead].map((b) => b.manifest.id)), now, chalk));
    const incomplete = catalog.incomplete.filter((d) => !d.unreadable);
    if (incomplete.length > 0) {
      if (flags.all) {
        io.say(`\nIncomplete (not backups):`);
        for (const d of incomplete) io.say(`  ${chalk.yellow('!')} ${shown(d.name)}: ${shown(d.reason)}`);
      } else {
        io.say(chalk.dim(`\n${incomplete.length} incomplete director${incomplete.length > 1 ? 'ies' : 'y'} not shown (--all shows them).`));
      }
    }
  },
});

type Chalk = typeof import('chalk').default;

function renderRemote(remote: RemoteBackup[], repository: string, local: Set<string>, now: Date, chalk: Chalk): string {
  const lines = [`\n${remote.length} backup${remote.length === 1 ? '' : 's'} in the restic repository ${repository}, newest first:`];
  for (const r of remote) {
    const at = new Date(r.time);
    lines.push(
      `  ${chalk.bold(shown(r.id))}  ${formatDate(at)} (${formatAge(at, now)})  ${shown(r.type)}  snapshot ${shown(r.snapshot)} from ${shown(r.hostname)}  ${local.has(r.id) ? 'also local' : chalk.cyan('only offsite')}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function renderRow(b: BackupRecord, now: Date, chalk: Chalk, mark: (s: Manifest['services'][number]) => string): string {
  const m = b.manifest;
  const created = new Date(m.createdAt);
  // Every text here comes from the manifest: none goes to the terminal raw.
  const services = m.services
    .map((s) => `${mark(s)} ${shown(s.name)}${s.engine ? `@${shown(s.engine)}` : ''}${s.downtimeMs !== undefined ? ` (down ${formatDuration(s.downtimeMs)})` : ''}`)
    .join('  ');
  const comment = m.comment ? `  "${shown(m.comment)}"` : '';
  return `${chalk.bold(shown(m.id))}  ${formatDate(created)} (${formatAge(created, now)})  ${shown(m.type)}  ${formatBytes(b.bytes)}${comment}\n    ${services}`;
}

/**
 * A killed run may have left containers stopped (said if Docker can tell us), or a store half
 * restored (said whether or not Docker answers: its data's state does not depend on it).
 */
async function leftStoppedSentence(dir: string, hosts: string[] | undefined): Promise<string | undefined> {
  const [{ anyStoppedMarker, leftStopped, leftStoppedWarning }, { anyRestoreMarker, halfRestoredWarnings, leftHalfRestored }, { commandContext }] = await Promise.all([
    import('../core/stopped-markers.js'),
    import('../core/restore-journal.js'),
    import('./context.js'),
  ]);
  // Nothing to say: Docker is not asked (an engine that is down could take minutes to say so).
  if (!(await anyStoppedMarker(dir)) && !(await anyRestoreMarker(dir))) return undefined;
  // Docker unreachable (or a --host it cannot use): listing backups does not need it.
  const reachable = await (async () => {
    const engine = commandContext(hosts).engine;
    await engine.version();
    return engine;
  })().catch(() => undefined);
  const stopped = reachable ? await leftStopped(dir, reachable).then(leftStoppedWarning, () => undefined) : undefined;
  const half = await leftHalfRestored(dir, reachable, { clear: false }).then(
    (m) => halfRestoredWarnings(dir, m),
    () => [],
  );
  // One warning a line; names and ids come from files in the backup directory: escaped.
  const lines = [...(stopped ? stopped.split('\n') : []), ...half].map(shown);
  return lines.length ? lines.join('\n') : undefined;
}
