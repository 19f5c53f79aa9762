import { Option } from 'commander';

/** Flags that several commands take, declared once; a command lists the ones it takes by name. */
export const SHARED_FLAGS = {
  dir: () => new Option('--dir <path>', 'backup directory').env('BACKUP_DIR').default('./backups'),
  // Several engines: each NAME=URL (or docker context) once; STACKVAULT_HOSTS holds the same, space-separated.
  host: () =>
    new Option('--host <name=url...>', 'the Docker engines to use, each named (unix://, tcp:// with TLS from DOCKER_CERT_PATH, ssh://, or a docker context name)')
      .env('STACKVAULT_HOSTS')
      .argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]),
  json: () => new Option('--json', 'print the result as JSON on stdout and nothing else there (lines for people go to stderr)'),
  metrics: () => new Option('--metrics <file>', "after the run, write Prometheus metrics (node_exporter's textfile collector) to this file, atomically").env('STACKVAULT_METRICS'),
  identity: () => new Option('--identity <file>', 'age identity (private key) file, for encrypted backups').env('STACKVAULT_AGE_IDENTITY'),
  yes: () => new Option('--yes', 'do not ask for confirmation'),
  project: () => new Option('--project <name>', 'only containers of this Compose project'),
  stopTimeout: () => new Option('--stop-timeout <seconds>', 'seconds a container stackvault stops gets to exit before Docker kills it (default: its own stop_grace_period, else 10)'),
  encryptTo: () => new Option('--encrypt-to <recipient...>', 'encrypt every artifact to these age recipients (public keys) while it streams'),
} as const;

export type SharedFlag = keyof typeof SHARED_FLAGS;

/** The values of the shared flags, as commander hands them over. */
export interface SharedFlagValues {
  dir: string;
  host?: string[];
  json?: boolean;
  metrics?: string;
  identity?: string;
  yes?: boolean;
  project?: string;
  stopTimeout?: string;
  encryptTo?: string[];
}
