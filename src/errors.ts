/**
 * Exit codes are part of the CLI's contract (documented in --help and the README).
 * Only src/cli.ts turns them into a process exit.
 */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  partial: 3,
  notFound: 4,
  integrity: 5,
  dockerUnreachable: 6,
  storage: 7,
  locked: 8,
  aborted: 9,
  offsite: 10,
  interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * A message set inside a sentence of our own: its final full stop goes, so a sentence that
 * quotes it ends with one full stop, not `..`.
 */
export const clause = (message: string | undefined): string => (message ?? '').trimEnd().replace(/(?<!\.)\.$/, '');

/**
 * What each exit code means, in the words of `--help` (README "Exit codes" has a row for each,
 * beginning with its title; test/unit/cli-help.test.ts keeps the three equal).
 */
export const EXIT_CODES: ReadonlyArray<{ code: ExitCodeValue; title: string; detail?: string }> = [
  { code: ExitCode.ok, title: 'success' },
  { code: ExitCode.failure, title: 'failure', detail: 'nothing usable was produced' },
  { code: ExitCode.usage, title: 'usage error', detail: 'unknown command, bad flag or value' },
  { code: ExitCode.partial, title: 'partial', detail: 'some services succeeded, others failed, were skipped, or hold what a restore would refuse' },
  { code: ExitCode.notFound, title: 'not found', detail: 'unknown backup ID, no datastore containers, no such service' },
  { code: ExitCode.integrity, title: 'integrity error', detail: 'checksum mismatch, corrupt or hostile artifact, bad manifest, content that did not come back equal' },
  { code: ExitCode.dockerUnreachable, title: 'a Docker engine is unreachable' },
  { code: ExitCode.storage, title: 'storage error', detail: 'backup directory missing, not writable, disk full' },
  { code: ExitCode.locked, title: 'another stackvault run holds the lock' },
  { code: ExitCode.aborted, title: 'aborted', detail: 'confirmation declined or impossible' },
  { code: ExitCode.offsite, title: 'offsite repository error', detail: 'restic: unreachable, wrong password, refused' },
  { code: ExitCode.interrupted, title: 'interrupted', detail: 'Ctrl-C, SIGTERM, SIGHUP; a second Ctrl-C while a store is down waits for it, a third exits' },
];

/** The `Exit codes:` section of a help text, for these codes (all of them by default). */
export function exitCodeHelpFor(codes: readonly ExitCodeValue[] = Object.values(ExitCode)): string {
  const lines = EXIT_CODES.filter((e) => codes.includes(e.code)).map((e) => `  ${String(e.code).padEnd(5)}${e.title}${e.detail ? ` (${e.detail})` : ''}`);
  return `Exit codes:\n${lines.join('\n')}`;
}

export const exitCodeHelp = exitCodeHelpFor();

/**
 * What every command can return: success, a failure nothing foresaw, a flag or value commander or
 * the command refuses, and a second Ctrl-C (util/interrupt.ts exits at once whatever runs).
 */
export const ALWAYS_POSSIBLE: readonly ExitCodeValue[] = [ExitCode.ok, ExitCode.failure, ExitCode.usage, ExitCode.interrupted];

/** An error meant for the user: one clear sentence, an exit code, optionally a hint. */
export class StackvaultError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue = ExitCode.failure,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'StackvaultError';
  }
}

export const usageError = (message: string, hint?: string) => new StackvaultError(message, ExitCode.usage, hint);
export const notFound = (message: string, hint?: string) => new StackvaultError(message, ExitCode.notFound, hint);
export const integrityError = (message: string, hint?: string) => new StackvaultError(message, ExitCode.integrity, hint);
export const storageError = (message: string, hint?: string) => new StackvaultError(message, ExitCode.storage, hint);

/**
 * A store that refuses every request for now (Redis answering BUSY while another client's
 * script runs, or LOADING): no fault of the backup, so a restore it stops is not an integrity error.
 */
export class StoreRefusedError extends Error {}

/** Whether an error is the Docker engine gone (exit 6): the run cannot go on, and nothing is to blame but that. */
export const isEngineLost = (err: unknown): err is StackvaultError => err instanceof StackvaultError && err.exitCode === ExitCode.dockerUnreachable;

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
