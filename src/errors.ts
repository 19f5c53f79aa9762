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

export const exitCodeHelp = `Exit codes:
  0    success
  1    failure (nothing usable was produced)
  2    usage error (unknown command, bad flag or value)
  3    partial: some services succeeded, others failed, were skipped, or hold what a restore would refuse
  4    not found (unknown backup ID, no datastore containers, no such service)
  5    integrity error (checksum mismatch, corrupt or hostile artifact, bad manifest)
  6    Docker engine unreachable
  7    storage error (backup directory missing, not writable, disk full)
  8    another stackvault run holds the lock
  9    aborted (confirmation declined or impossible)
  10   offsite repository error (restic: unreachable, wrong password, refused)
  130  interrupted (Ctrl-C, SIGTERM, SIGHUP; a second Ctrl-C while a store is down waits for it, a third exits)`;

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

/** Whether an error is the Docker engine gone (exit 6): the run cannot go on, and nothing is to blame but that. */
export const isEngineLost = (err: unknown): err is StackvaultError => err instanceof StackvaultError && err.exitCode === ExitCode.dockerUnreachable;

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
