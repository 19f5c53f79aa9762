import { Command } from 'commander';
import { COMMANDS } from './commands/all.js';
import type { CommandIO, CommandModule, Outcome } from './commands/command.js';
import { checkDirFlag } from './commands/dir-flag.js';
import { SHARED_FLAGS } from './commands/shared-flags.js';
import { ExitCode, exitCodeHelp, exitCodeHelpFor, usageError } from './errors.js';
import { TOOL_VERSION } from './version.js';

/**
 * The one runner: builds the command tree from the registry (src/commands/all.ts) and runs a
 * command: its output (JSON under --json, else its rendering), the metrics file, the
 * operations log and the exit code. Only src/cli.ts exits.
 */
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
  const groups: Record<string, Command> = {
    backup: program
      .command('backup')
      .description('create, list, restore and verify backups')
      .addHelpText(
        'after',
        `${examples(['./bot.sh backup create --comment "before migration"', './bot.sh backup list --json', './bot.sh backup verify latest --deep', './bot.sh backup restore 20261121_020000 --only redis'])}\n${exitCodeHelp}\n`,
      ),
    scheduler: program
      .command('scheduler')
      .description('install, remove and inspect the scheduled backup (cron)')
      .addHelpText('after', examples(['./bot.sh scheduler install daily', './bot.sh scheduler install "30 3 * * *"', './bot.sh scheduler status', './bot.sh scheduler trigger'])),
  };
  for (const command of COMMANDS) {
    const words = command.path.split(' ');
    declare(words.length > 1 ? groups[words[0]!]! : program, words.at(-1)!, command);
  }
  return program;
}

const examples = (lines: readonly string[]) => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;

function declare(parent: Command, name: string, command: CommandModule): void {
  const cmd = parent.command(name, { hidden: command.hidden }).description(command.description);
  for (const a of command.arguments ?? []) cmd.argument(a.name, a.description, a.default);
  const shared = command.shared ?? [];
  // --json last, where people look for it.
  for (const flag of shared.filter((f) => f !== 'json')) cmd.addOption(SHARED_FLAGS[flag]());
  for (const option of command.options?.() ?? []) cmd.addOption(option);
  if (shared.includes('json')) cmd.addOption(SHARED_FLAGS.json());
  const after = `${command.examples?.length ? examples(command.examples) : ''}${command.help ? `\n${command.help}\n` : ''}\n${exitCodeHelpFor(command.exitCodes)}\n`;
  cmd.addHelpText('after', after);
  cmd.action(async (...params: unknown[]) => {
    // commander passes the arguments, then the parsed options, then the command itself.
    const args = params.slice(0, command.arguments?.length ?? 0).map((a) => (typeof a === 'string' ? a : ''));
    await execute(command, args, cmd.opts());
  });
}

interface RunnerFlags {
  dir?: string;
  json?: boolean;
  dryRun?: boolean;
  metrics?: string;
  project?: string;
}

/**
 * Flags whose empty value would silently mean something wide: `--project ""` every project on
 * the host, `--dir ""` the current directory (`--project "$PROJECT"` with the variable unset),
 * or nothing at all: `--ping "$HC_URL"` with the variable unset would send no pings.
 */
const NOT_EMPTY: ReadonlyArray<[key: string, flag: string]> = [
  ['project', '--project'],
  ['intoProject', '--into-project'],
  ['dir', '--dir (or BACKUP_DIR)'],
  ['prefix', '--prefix'],
  ['ping', '--ping'],
  ['pingFile', '--ping-file'],
];

/** Refuses an empty or blank value of a flag in NOT_EMPTY, in one sentence (exit 2). */
export function refuseEmptyFlags(flags: Record<string, unknown>): void {
  for (const [key, flag] of NOT_EMPTY) {
    const value = flags[key];
    if (typeof value === 'string' && value.trim() === '') throw usageError(`${flag} is empty: give it a value, or leave the flag out.`);
  }
}

async function execute(command: CommandModule, args: string[], flags: Record<string, unknown> & RunnerFlags): Promise<void> {
  refuseEmptyFlags(flags);
  // Under --json, stdout carries the JSON alone; lines for people go to stderr.
  const out = flags.json ? process.stderr : process.stdout;
  const io: CommandIO = { out, json: Boolean(flags.json), say: (line) => out.write(`${line}\n`) };
  // Before anything reads or writes there (and before the operations log would try to).
  if (typeof flags.dir === 'string') checkDirFlag(flags.dir);
  const once = async (): Promise<Outcome> => {
    const outcome = await command.run({ args, flags, io });
    if (outcome.data !== undefined) {
      if (io.json) process.stdout.write(`${JSON.stringify(outcome.data, null, 2)}\n`);
      else await command.render?.(outcome.data, io, flags);
    }
    if (outcome.error) throw outcome.error;
    return outcome;
  };
  const started = Date.now();
  let result = 'ok';
  let backupId = '';
  const logged = command.logged && flags.dir && !flags.dryRun;
  // A forced exit (a third Ctrl-C) does not reach the finally below: its line is written then.
  const forgetForcedExit = logged ? await logOnForcedExit(flags.dir!, started, () => backupId) : undefined;
  try {
    // A dry run touches nothing: no metrics file, no operations log.
    const outcome =
      command.writesMetrics && flags.metrics && !flags.dryRun ? await (await import('./commands/metrics-file.js')).withMetrics(flags.metrics, flags.dir ?? '', flags.project, once) : await once();
    backupId = outcome.backupId ?? '';
    const code = outcome.exitCode ?? ExitCode.ok;
    if (code !== ExitCode.ok) result = code === ExitCode.partial ? 'partial' : `exit ${code}`;
    process.exitCode = code;
  } catch (err) {
    result = `error: ${err instanceof Error ? err.message : String(err)}`;
    if ((err as { exitCode?: number }).exitCode === ExitCode.usage) result = ''; // usage errors attempted nothing
    throw err;
  } finally {
    forgetForcedExit?.();
    if (logged && result) await logOperation(flags.dir!, { backupId, result, durationMs: Date.now() - started });
  }
}

/**
 * A forced exit (a third Ctrl-C) does not unwind to the log line in execute's finally: this
 * writes it then, synchronously, naming what the run left as it was.
 */
async function logOnForcedExit(dir: string, started: number, backupId: () => string): Promise<() => void> {
  const [{ onForcedExit }, { appendOperationSync, operationNow }, { resolve }] = await Promise.all([import('./util/interrupt.js'), import('./core/oplog.js'), import('node:path')]);
  const path = resolve(dir);
  return onForcedExit((left) =>
    appendOperationSync(
      path,
      operationNow(loggedArgv(), {
        backupId: backupId(),
        result: `interrupted: exited at once on a repeated signal${left.length ? `, leaving: ${left.join('; ')}` : ''}`,
        durationMs: Date.now() - started,
      }),
    ),
  );
}

/** The command line as logged: values of --ping are never written. */
const loggedArgv = () =>
  process.argv
    .slice(2)
    .map((a, i, all) => (all[i - 1] === '--ping' ? '***' : a.replace(/^--ping=.*/, '--ping=***')))
    .join(' ');

/**
 * Appends one line per operation to <backup dir>/operations.log (time, user, command, backup
 * id, result, duration), whatever the outcome. Values of --ping are never written.
 */
async function logOperation(dir: string, what: { backupId: string; result: string; durationMs: number }): Promise<void> {
  const [{ appendOperation, operationNow }, { resolve }] = await Promise.all([import('./core/oplog.js'), import('node:path')]);
  await appendOperation(resolve(dir), operationNow(loggedArgv(), what)).catch((err: Error) => {
    // No directory (a run that failed before making it) is nothing to say; a log someone replaced
    // with a symlink or FIFO is: the write is refused, and the user should know why it is missing.
    if (err.name === 'UnsafeFileError') process.stderr.write(`stackvault: warning: the operations log was not written: ${err.message}\n`);
  });
}
