import { DEFAULT_COMPRESSION } from './core/artifact.js';
import { Command, Option } from 'commander';
import { ExitCode, exitCodeHelp } from './errors.js';
import { TOOL_VERSION } from './version.js';

/**
 * Appends one line per operation to <backup dir>/operations.log (time, user, command, backup
 * id, result, duration), whatever the outcome. Values of --ping are never written.
 */
function logged<A extends unknown[]>(run: (...args: A) => Promise<{ backupId?: string } | void>) {
  return async (...args: A): Promise<void> => {
    const started = Date.now();
    const options = args.find((a): a is { dir: string; dryRun?: boolean } => typeof a === 'object' && a !== null && 'dir' in a);
    const argv = process.argv.slice(2).map((a, i, all) => (all[i - 1] === '--ping' ? '***' : a.replace(/^--ping=.*/, '--ping=***')));
    let result = 'ok';
    let backupId = '';
    try {
      backupId = (await run(...args))?.backupId ?? '';
      if (typeof process.exitCode === 'number' && process.exitCode !== 0) result = process.exitCode === ExitCode.partial ? 'partial' : `exit ${process.exitCode}`;
    } catch (err) {
      result = `error: ${err instanceof Error ? err.message : String(err)}`;
      if ((err as { exitCode?: number }).exitCode === ExitCode.usage) result = ''; // usage errors attempted nothing
      throw err;
    } finally {
      if (options?.dir && result && !options.dryRun) {
        // a dry run touches nothing, the log included
        const { appendOperation, currentUser } = await import('./core/oplog.js');
        const { resolve } = await import('node:path');
        await appendOperation(resolve(options.dir), { at: new Date().toISOString(), user: currentUser(), command: argv.join(' '), backupId, result, durationMs: Date.now() - started }).catch(
          () => undefined,
        );
      }
    }
  };
}

const examples = (lines: string[]) => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;

/** Defines the whole command tree; actions load their module on demand to keep start-up fast. */
export function buildProgram(): Command {
  const program = new Command('stackvault')
    .description('Back up and restore every datastore of a Docker stack with one command.')
    .version(TOOL_VERSION)
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      `${examples(['./bot.sh demo', './bot.sh backup create', './bot.sh backup list', './bot.sh backup restore latest --only postgres', './bot.sh scheduler install daily'])}\n${exitCodeHelp}\n`,
    );

  const backup = program.command('backup').description('create, list, restore and verify backups');
  backup.addHelpText(
    'after',
    `${examples(['./bot.sh backup create --comment "before migration"', './bot.sh backup list --json', './bot.sh backup verify latest --deep', './bot.sh backup restore 20261121_020000 --only redis'])}\n${exitCodeHelp}\n`,
  );
  const dirOption = () => new Option('--dir <path>', 'backup directory').env('BACKUP_DIR').default('./backups');
  // Several engines: each NAME=URL (or docker context) once; STACKVAULT_HOSTS holds the same, space-separated.
  const hostOption = () =>
    new Option('--host <name=url...>', 'the Docker engines to use, each named (unix://, tcp:// with TLS from DOCKER_CERT_PATH, ssh://, or a docker context name)')
      .env('STACKVAULT_HOSTS')
      .argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
  const metricsOption = () => new Option('--metrics <file>', "after the run, write Prometheus metrics (node_exporter's textfile collector) to this file, atomically").env('STACKVAULT_METRICS');
  const identityOption = () => new Option('--identity <file>', 'age identity (private key) file, for encrypted backups').env('STACKVAULT_AGE_IDENTITY');

  backup
    .command('create')
    .description('discover the running datastores and back each up, in parallel')
    .addOption(dirOption())
    .addOption(hostOption())
    .addOption(metricsOption())
    .addOption(new Option('--type <type>', 'backup type').choices(['manual', 'daily', 'weekly', 'monthly', 'pre-update']).default('manual'))
    .option('--comment <text>', 'free text stored with the backup', '')
    .option('--project <name>', 'only containers of this Compose project')
    .option('--only <services>', 'comma-separated services to back up')
    .option('--parallel <n>', 'how many services to back up at once', '4')
    .addOption(new Option('--compress <codec>', 'artifact compression').choices(['gzip', 'zstd', 'none']).default(DEFAULT_COMPRESSION))
    .option('--prefix <prefix>', 'directory name prefix', 'stackvault')
    .option('--encrypt-to <recipient...>', 'encrypt every artifact to these age recipients (public keys) while it streams')
    .option('--verify', 'right after the backup, restore each artifact into a throwaway container and check its content (as verify --deep)')
    .addOption(new Option('--offsite', 'then store it in the restic repository of RESTIC_REPOSITORY (with earlier backups whose offsite copy failed)').env('STACKVAULT_OFFSITE'))
    .option('--dry-run', 'show what would be backed up (driver, paths, size, stop or pause) and what is left out, touching nothing')
    .option('--verbose', 'also list what was not backed up and why (skipped mounts, left-out containers)')
    .addOption(identityOption())
    .option('--stop-timeout <seconds>', 'seconds a container stopped for its copy gets to exit before Docker kills it (default: its own stop_grace_period, else 10)')
    .option('--consistent', 'one point in time for every store: app containers are paused briefly while each store fixes its snapshot')
    .option('--json', 'print the manifest as JSON on stdout and nothing else there')
    .addHelpText(
      'after',
      examples([
        './bot.sh backup create',
        './bot.sh backup create --project bot --only postgres,redis --compress zstd',
        './bot.sh backup create --verify',
        'RESTIC_REPOSITORY=sftp:backup@nas:/srv/restic RESTIC_PASSWORD_FILE=~/.restic-pw ./bot.sh backup create --offsite',
        './bot.sh backup create --project bot --dry-run',
        'BACKUP_DIR=/srv/backups ./bot.sh backup create --type daily --json',
      ]),
    )
    .action(logged(async (opts) => (await import('./commands/create.js')).createCommand(opts)));

  backup
    .command('list')
    .description('list backups, newest first')
    .addOption(dirOption())
    .addOption(hostOption())
    .option('--all', 'also show incomplete directories')
    .option('--remote', 'also list the backups in the restic repository of RESTIC_REPOSITORY')
    .option('--json', 'print manifests as JSON (with --remote: {"local": [...], "remote": [...]})')
    .addHelpText('after', examples(['./bot.sh backup list', './bot.sh backup list --json | jq ".[0].id"', './bot.sh backup list --remote']))
    .action(async (opts) => (await import('./commands/list.js')).listCommand(opts));

  backup
    .command('restore')
    .argument('<id>', 'backup directory name, its timestamp part, or "latest"')
    .description('restore services from a backup (a restore point is taken first); one that is only in the restic repository is fetched first')
    .addOption(dirOption())
    .addOption(hostOption())
    .option('--only <services>', 'comma-separated services to restore')
    .option('--yes', 'do not ask for confirmation')
    .option('--no-check', 'skip the content check after restoring (faster; the restore is then not proven)')
    .option('--into-project <name>', 'restore into the same services of another Compose project (a clone), leaving the backed-up one untouched')
    .option('--map <service=container...>', 'restore a service into this container (name or id), whatever its project')
    .addOption(identityOption())
    .option('--stop-timeout <seconds>', 'seconds a container stopped for the restore gets to exit before Docker kills it (default: its own stop_grace_period, else 10)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `${examples([
        './bot.sh backup restore latest',
        './bot.sh backup restore 20261121_020000 --only postgres --yes',
        'docker compose -p bot-drill up -d && ./bot.sh backup restore latest --into-project bot-drill --yes',
        './bot.sh backup restore latest --only redis --map redis=scratch-redis',
      ])}
"latest" is the newest backup that is not a restore point. Every artifact is checked before
anything changes, and a restore point (type restore-point) of the same services is taken
first; a service that fails to restore is put back from it. After restoring, each store's
content is read back and compared with the backup's fingerprint (rows, keys, vectors, files);
a difference is a failure (exit 5) naming the first differing table, key space or file, and
the service is put back on the restore point. Stop apps that write to the stores first, or
their writes will show up as differences.
`,
    )
    .action(logged(async (id, opts) => (await import('./commands/restore.js')).restoreCommand(id, opts)));

  backup
    .command('report')
    .description(
      'write the history of the backup directory as one self-contained HTML file: size, duration and downtime per service over time, compression, verify and drill results, failures, the scheduler',
    )
    .addOption(dirOption())
    .option('--out <file>', 'where to write it (default <dir>/report.html)')
    .addHelpText('after', examples(['./bot.sh backup report', './bot.sh backup report --out /var/www/html/backups.html']))
    .action(async (opts) => (await import('./commands/report.js')).reportCommand(opts));

  backup
    .command('drill')
    .argument('<id>', 'backup directory name, its timestamp part, or "latest"')
    .description('restore the backup into a throwaway copy of its services (started from the recorded images), check every store, remove the copy, record the drill; production is never touched')
    .addOption(dirOption())
    .addOption(hostOption())
    .addOption(identityOption())
    .option('--json', 'print the result as JSON')
    .addHelpText('after', `${examples(['./bot.sh backup drill latest', './bot.sh backup drill 20261121_020000 --json'])}\nExit 5 when a service did not come back equal (or could not be drilled).\n`)
    .action(logged(async (id, opts) => (await import('./commands/drill.js')).drillCommand(id, opts)));

  backup
    .command('verify')
    .argument('<id>', 'backup directory name, its timestamp part, or "latest"')
    .description('re-hash every artifact and check it opens; --deep restores into throwaway containers')
    .addOption(dirOption())
    .addOption(hostOption())
    .option('--deep', 'restore each artifact into a throwaway container and check the data')
    .option('--remote', 'check the restic repository (restic check), then verify the backup as stored there (fetched into a scratch directory, every checksum checked)')
    .option('--read-data-subset <spec>', "with --remote: how much of the repository's data restic reads back (restic's syntax: 10%, 1/5, 500M)", '10%')
    .addOption(identityOption())
    .option('--json', 'print the result as JSON')
    .addHelpText('after', examples(['./bot.sh backup verify latest', './bot.sh backup verify latest --deep', './bot.sh backup verify latest --remote --read-data-subset 100%']))
    .action(logged(async (id, opts) => (await import('./commands/verify.js')).verifyCommand(id, opts)));

  backup
    .command('cleanup')
    .argument('[days]', 'remove backups older than this many days', '30')
    .description('remove backups older than DAYS (manual and restore-point backups, and the newest successful one, are kept)')
    .addOption(dirOption())
    .option('--dry-run', 'show what would be removed, remove nothing')
    .option('--json', 'print the plan and result as JSON')
    .addHelpText('after', examples(['./bot.sh backup cleanup', './bot.sh backup cleanup 14 --dry-run']))
    .action(logged(async (days, opts) => (await import('./commands/maintenance.js')).cleanupCommand(days, opts)));

  backup
    .command('prune')
    .description('apply the retention policy (what the scheduler runs after a successful backup)')
    .addOption(dirOption())
    .option('--dry-run', 'show what would be removed, remove nothing')
    .option('--json', 'print the plan and result as JSON')
    .option('--keep-daily <days>', 'keep daily backups this many days (default 7)')
    .option('--keep-weekly <weeks>', 'keep weekly backups this many weeks (default 4)')
    .option('--keep-monthly <months>', 'keep monthly backups this many months (default 12)')
    .option('--keep-pre-update <n>', 'keep this many pre-update backups (default 5)')
    .option('--remote', 'also in the restic repository of RESTIC_REPOSITORY (restic forget, then prune)')
    .addHelpText(
      'after',
      `${examples(['./bot.sh backup prune --dry-run', './bot.sh backup prune --keep-daily 14', './bot.sh backup prune --remote'])}
The policy can also live in <backup dir>/retention.json, e.g. {"dailyDays": 14, "preUpdateKeep": 10};
flags win over the file. manual and restore-point backups are never removed, nor is the newest
successful backup.
`,
    )
    .action(logged(async (opts) => (await import('./commands/maintenance.js')).pruneCommand(opts)));

  backup
    .command('delete')
    .argument('<id>', 'backup directory name, its timestamp part, or "latest"')
    .description('delete one backup (asks first)')
    .addOption(dirOption())
    .option('--yes', 'do not ask for confirmation')
    .action(logged(async (id, opts) => (await import('./commands/maintenance.js')).deleteCommand(id, opts)));

  backup
    .command('log')
    .description('show the operations log: who created, restored, verified or deleted what, and when')
    .addOption(dirOption())
    .option('-n, --lines <n>', 'how many recent lines', '20')
    .option('--json', 'print as JSON')
    .action(async (opts) => (await import('./commands/maintenance.js')).logCommand(opts));

  backup
    .command('stats')
    .description('count and size per type and per service, compression ratio, last success')
    .addOption(dirOption())
    .option('--json', 'print as JSON')
    .addHelpText('after', examples(['./bot.sh backup stats', './bot.sh backup stats --json | jq .lastSuccessful']))
    .action(async (opts) => (await import('./commands/stats.js')).statsCommand(opts));

  const scheduler = program.command('scheduler').description('install, remove and inspect the scheduled backup (cron)');
  scheduler.addHelpText('after', examples(['./bot.sh scheduler install daily', './bot.sh scheduler install "30 3 * * *"', './bot.sh scheduler status', './bot.sh scheduler trigger']));
  const scheduleType = () => new Option('--type <type>', 'backup type for a cron expression (named schedules set it)').choices(['daily', 'weekly', 'monthly']);
  scheduler
    .command('install')
    .argument('<schedule>', 'daily | weekly | monthly | "CRON EXPR" (5 fields, names like mon-fri, or @daily/@weekly/...)')
    .description('install (or replace) our crontab entry; daily 02:00, weekly Sunday 02:00, monthly the 1st 02:00')
    .addOption(dirOption())
    .addOption(hostOption())
    .addOption(metricsOption())
    .addOption(scheduleType())
    .option('--project <name>', 'only back up this Compose project')
    .option('--encrypt-to <recipient...>', 'encrypt the scheduled backups to these age recipients')
    .option('--ping <url>', 'GET <url>/start, <url> or <url>/fail around each run (healthchecks.io style)')
    .option(
      '--offsite',
      'store each scheduled backup in the restic repository too, and apply retention there (RESTIC_* variables are kept in the crontab line; the password must come from a file or command)',
    )
    .addHelpText(
      'after',
      examples([
        './bot.sh scheduler install daily',
        './bot.sh scheduler install "30 3 * * mon-fri" --type daily --ping https://hc-ping.com/UUID',
        './bot.sh scheduler install @weekly',
        './bot.sh scheduler install daily --offsite',
      ]),
    )
    .action(async (schedule, opts) => (await import('./commands/scheduler.js')).installCommand(schedule, opts));
  scheduler
    .command('uninstall')
    .description('remove our crontab entry, leaving other lines alone')
    .action(async () => (await import('./commands/scheduler.js')).uninstallCommand());
  scheduler
    .command('status')
    .description('schedule in words, next run, last run and result, last successful backup')
    .addOption(dirOption())
    .option('--json', 'print as JSON')
    .action(async (opts) => (await import('./commands/scheduler.js')).statusCommand(opts));
  scheduler
    .command('trigger')
    .description('run the scheduled job now, in the foreground (backup, then retention if it fully succeeded)')
    .addOption(dirOption())
    .addOption(hostOption())
    .addOption(metricsOption())
    .addOption(scheduleType())
    .option('--project <name>', 'only back up this Compose project')
    .option('--encrypt-to <recipient...>', 'encrypt the scheduled backups to these age recipients')
    .option('--ping <url>', 'ping this URL as a scheduled run would')
    .option('--offsite', 'store it in the restic repository too, as a scheduled run with --offsite would')
    .action(logged(async (opts) => (await import('./commands/scheduler.js')).runCommand(opts, false)));
  scheduler
    .command('run', { hidden: true })
    .description('what cron runs')
    .addOption(dirOption())
    .addOption(hostOption())
    .addOption(metricsOption())
    .addOption(scheduleType())
    .option('--project <name>')
    .option('--encrypt-to <recipient...>')
    .option('--ping <url>')
    .option('--offsite')
    .action(logged(async (opts) => (await import('./commands/scheduler.js')).runCommand(opts, true)));

  program
    .command('demo')
    .description('bring up the demo stack in compose/, fill it with sample data, back it up and list it')
    .addOption(dirOption())
    .addHelpText('after', examples(['./bot.sh demo', 'BACKUP_DIR=/tmp/demo-backups ./bot.sh demo']))
    .action(async (opts) => (await import('./commands/demo.js')).demoCommand(opts));

  for (const [verb, text] of [
    ['start', 'start the stack in compose/ (docker compose up -d)'],
    ['stop', 'stop the stack'],
    ['restart', 'restart the stack, or one service'],
    ['status', "show the stack's containers"],
    ['logs', 'show the last 100 log lines, of all services or one'],
  ] as const) {
    const cmd = program.command(verb).description(`${text} (Compose project $STACKVAULT_PROJECT, default stackvault-demo)`);
    if (verb === 'restart' || verb === 'logs') cmd.argument('[service]', 'one service');
    cmd.action(async (service?: string) => (await import('./commands/stack.js')).stackCommand(verb, typeof service === 'string' ? service : undefined));
  }

  program
    .command('update')
    .description('pre-update routine: back up (type pre-update), git pull, restart; stops if the backup fails')
    .addOption(dirOption())
    .option('--project <name>', 'Compose project to back up and restart (default $STACKVAULT_PROJECT or stackvault-demo)')
    .option('--repo <path>', 'git checkout to pull (default: this one)')
    .option('--allow-partial', 'go ahead even if some services could not be backed up')
    .addHelpText('after', examples(['./bot.sh update', './bot.sh update --project bot --repo /srv/bot']))
    .action(logged(async (opts) => (await import('./commands/stack.js')).updateCommand(opts)));

  return program;
}
