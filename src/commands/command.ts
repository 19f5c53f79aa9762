import type { Option } from 'commander';
import type { ExitCodeValue, StackvaultError } from '../errors.js';
import type { SharedFlag } from './shared-flags.js';

/**
 * One command, in one file (restic's cmd_<name>.go): its flags, and a `run` that returns data
 * and an exit code. The runner (src/program.ts) declares it, prints the data as JSON under
 * --json or hands it to `render`, writes the operations log and the metrics file, and sets
 * the exit code. Command files import only light modules at the top (test/unit/architecture):
 * the core is loaded inside `run`, so `--help` and the scheduler's status stay quick.
 */
export interface CommandModule<Flags = Record<string, unknown>, Data = unknown> {
  /** Its words under the program: 'backup create', 'scheduler install', 'demo'. */
  readonly path: string;
  readonly description: string;
  readonly arguments?: ReadonlyArray<{ name: string; description: string; default?: string }>;
  /** Flags several commands take, declared once in shared-flags.ts. */
  readonly shared?: readonly SharedFlag[];
  /** This command's own flags. */
  options?(): Option[];
  readonly examples?: readonly string[];
  /**
   * Every exit code it can return (README "Exit codes"), listed in its --help: ALWAYS_POSSIBLE
   * and its own. A command with --dir can return 7 (the directory is checked first).
   */
  readonly exitCodes: readonly ExitCodeValue[];
  /** More help, after the examples. */
  readonly help?: string;
  readonly hidden?: boolean;
  /** Recorded in <dir>/operations.log (commands that change or check backups). */
  readonly logged?: boolean;
  /** A backup run: --metrics FILE gets its outcome (other commands may only pass the flag on). */
  readonly writesMetrics?: boolean;
  run(input: RunInput<Flags>): Promise<Outcome<Data>>;
  /** The data for people (never called under --json). */
  render?(data: Data, io: CommandIO, flags: Flags): void | Promise<void>;
}

export interface RunInput<Flags> {
  /** The positional arguments, in the declared order. */
  args: string[];
  flags: Flags;
  io: CommandIO;
}

/** What a run hands back; the runner turns it into output and an exit code. */
export interface Outcome<Data = unknown> {
  /** Printed as JSON on stdout under --json, else given to `render`. */
  data?: Data;
  /** From the ExitCode table; ok when absent. */
  exitCode?: ExitCodeValue;
  /** The backup it made or acted on, for the operations log and the metrics file. */
  backupId?: string;
  /** Ends the run after the data is printed: its sentence, hint and exit code. */
  error?: StackvaultError;
}

export interface CommandIO {
  /** Where lines for people go: stdout, or stderr under --json (stdout then holds the JSON alone). */
  readonly out: NodeJS.WriteStream;
  say(line: string): void;
  readonly json: boolean;
}

/** Keeps a command's flag type when it is listed with others. */
export const defineCommand = <Flags, Data>(command: CommandModule<Flags, Data>): CommandModule<Flags, Data> => command;
