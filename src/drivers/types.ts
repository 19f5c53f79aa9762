import type { Readable, Writable } from 'node:stream';
import type { ReadEntry } from 'tar';
import type { ServiceEntry } from '../core/manifest.js';
import type { ContainerDetails, DockerEngine } from '../docker/engine.js';
import type { Fingerprint } from './fingerprint.js';
import type { Recognisable } from './recognise.js';
import type { Schema } from '../util/schema.js';

/** Open: a driver's name is whatever its file declares (see registry.ts). */
export type DriverName = string;

/** What the raw (uncompressed) artifact is; decides the file extension and how it is checked. */
export type ArtifactFormat = 'sql' | 'tar';

/** Another container of the same Compose project, and the driver that backs it up ('' for none). */
export interface Peer {
  container: ContainerDetails;
  driver: string;
}

export interface BackupContext {
  engine: DockerEngine;
  container: ContainerDetails;
  /** The other containers of its Compose project (to tell mounts it shares with them). */
  peers: readonly Peer[];
  /** Raw artifact bytes go here; the core compresses, hashes and writes them. */
  output: Writable;
  signal: AbortSignal;
  /** Stops the container and guarantees it is started again, even on errors and Ctrl-C. */
  withStopped<T>(work: () => Promise<T>): Promise<T>;
  /** Pauses the container (cgroup freezer), with the same marker and guarantees as a stop. */
  withPaused<T>(work: () => Promise<T>): Promise<T>;
  /**
   * A private directory for staging raw bytes, removed when the service's backup ends; none
   * when artifacts are encrypted (raw bytes are then never written to disk).
   */
  scratchDir?: string;
  /**
   * false: leave the content fingerprint out (a restore point's; it is computed from the
   * artifact in the rare case the point is put back). Checks of the copy itself still run.
   */
  recordFingerprint?: boolean;
  /**
   * true: this backup is a restore point, taken just before a restore so that a failed one can
   * be put back. Data a store does not hold yet (an app on a new volume that has not created its
   * database file) may then be recorded as absent, and putting the point back removes what the
   * restore created there. A regular backup refuses a missing path: it may be a typo in a label.
   */
  restorePoint?: boolean;
  log(message: string): void;
}

/** Driver facts worth keeping in the manifest (never secrets): databases, key counts, paths. */
export type DriverDetails = Record<string, unknown>;

/**
 * A store's snapshot point in a consistent backup (`backup create --consistent`). It is set up
 * before the window (sessions opened, settings read, files checked), fixed inside it while the
 * project's writers are paused, and streamed after they run again.
 */
export interface Snapshot<D extends DriverDetails = DriverDetails> {
  /**
   * Inside the window, with the writers paused: fixes the point, quickly, and returns as soon
   * as it is fixed. Work that can no longer change the point may go on after it returns (a
   * stopped store's copy, which ends by starting it); `backup` waits for it. A store without a
   * quick point may copy itself whole here, into the context's output (it lengthens the window).
   */
  fix(): Promise<void>;
  /**
   * Told once the writers run again, before the service waits for its turn to stream: work
   * that must follow the window closely, but must not lengthen it, starts here.
   */
  afterWindow?(): void;
  /** After the window: writes the artifact as of the fixed point (as `backup` would). */
  backup(output: Writable): Promise<BackupOutcome<D>>;
  /** Ends what holds the point (sessions, staged copies); called once on every path, also when `fix` or `backup` never ran. */
  release(): Promise<void>;
}

export interface BackupOutcome<D extends DriverDetails = DriverDetails> {
  /** True when a store that is normally stopped was copied while running (label stackvault.stop=false). */
  hot?: boolean;
  /** As the driver's `details` schema says; read back with `recorded` (details.ts). */
  details?: D;
  /** Paths of the container it did not back up, and why (bind mounts of source trees, sockets). */
  skipped?: Array<{ path: string; why: string }>;
  /** The content fingerprint of what was written, when the driver can compute it on the way. */
  fingerprint?: Fingerprint;
  /** Things the user should know that did not stop the backup (data outside volumes, kills). */
  warnings?: string[];
  /** Why this driver's restore would refuse what was written (its own rule, applied on the way): the backup is then partial. */
  restoreRefuses?: string;
}

export interface RestoreContext<Checked = unknown> {
  engine: DockerEngine;
  /** The container being restored, inspected just before. */
  container: ContainerDetails;
  /** The service as recorded in the backup's manifest (details included). */
  entry: ServiceEntry;
  /** The artifact's decompressed content; may be called more than once. */
  open(): Readable;
  signal: AbortSignal;
  withStopped<T>(work: () => Promise<T>): Promise<T>;
  log(message: string): void;
  /**
   * What this driver's checkRestore returned for this container earlier in the same restore
   * (so it is not asked again); undefined where no check ran (deep verify's throwaway server).
   */
  checked?: Checked;
}

export interface BackupPlan {
  /** How the store is copied, in a few words. */
  method: string;
  /** Whether the container is stopped or paused for the copy, or stays online. */
  interrupts: 'stopped' | 'paused' | 'online';
  paths?: string[];
  /** A rough size of what would be read, when it can be told without copying. */
  estimatedBytes?: number;
  skipped?: Array<{ path: string; why: string }>;
  warnings?: string[];
}

export interface RestoreCheckContext {
  engine: DockerEngine;
  container: ContainerDetails;
  entry: ServiceEntry;
  open(): Readable;
  /**
   * false when the restored content will not be compared with the backup's (--no-check): a
   * refusal that only foresees a difference (Postgres: a superuser the backup lacks) then gives way.
   */
  check?: boolean;
}

export interface FingerprintContext {
  engine: DockerEngine;
  /** The service as recorded in the manifest. */
  entry: ServiceEntry;
  signal: AbortSignal;
}

export interface ArtifactFingerprintContext extends FingerprintContext {
  /** The artifact's decompressed content; may be called more than once. */
  open(): Readable;
  /**
   * During a restore: settles once the store being restored runs again. Work on the host that
   * would take CPU from the restore while the store is down (reading an RDB: Redis was down 6.8 s
   * instead of 1.1 s) waits for it and runs beside the read of the live store instead.
   * Undefined outside a restore.
   */
  storeRunning?: Promise<void>;
  /**
   * During a restore: the container being restored. Its environment holds what opens the
   * backup's accounts once a throwaway has loaded them (MariaDB: a root that logs in only by
   * password, checked against this container's root password before anything changed).
   */
  target?: ContainerDetails;
  /** As for deep verify: a throwaway container for drivers that need the server to read it. */
  inThrowaway: DeepVerifyContext['inThrowaway'];
}

export interface LiveFingerprintContext extends FingerprintContext {
  container: ContainerDetails;
  /** The fingerprint this store should have; drivers may use it to read in the same shape. */
  expected?: Fingerprint;
}

export interface DeepVerifyContext {
  engine: DockerEngine;
  entry: ServiceEntry;
  open(): Readable;
  signal: AbortSignal;
  /**
   * Starts a throwaway container of the backup's image, restores the artifact into it with
   * this driver's own restore, waits until it serves, runs `check`, and removes it.
   */
  inThrowaway<T>(spec: ThrowawaySpec, check: (container: ContainerDetails) => Promise<T>): Promise<T>;
  /**
   * Takes the artifact's content fingerprint (as artifactFingerprint gives it) when the check
   * read it anyway, so verify records it without starting a second throwaway.
   */
  fingerprinted?(fp: Fingerprint): void;
}

export interface ThrowawaySpec {
  env?: Record<string, string>;
  cmd?: string[];
  entrypoint?: string[];
  /** No healthcheck, whatever the image declares (it checks the app, which does not run here). */
  noHealthcheck?: boolean;
  /** Run as this user instead of the image's (e.g. '0' to write into a fresh volume). */
  user?: string;
  labels?: Record<string, string>;
  volumes?: string[];
  /**
   * The driver reads it over the network from this host (Chroma's HTTP API): it gets an
   * internal network of its own. Otherwise a throwaway has no network at all: it holds a
   * backup's data, often without the production's password, and no other container may reach it.
   */
  readOverNetwork?: boolean;
}

/**
 * One datastore kind. Adding a datastore = one file implementing this, its test, and one line
 * in registry.ts.
 */
export interface Driver<D extends DriverDetails = DriverDetails, Checked = unknown> {
  readonly name: DriverName;
  /**
   * What `backup` records in the manifest's `details`, as a schema: the core checks a backup's
   * details against it before restoring or verifying anything (a crafted manifest is refused
   * with exit 5), and the driver reads them typed through it.
   */
  readonly details: Schema<D>;
  readonly format: ArtifactFormat;
  /** Image repository names of this server, for messages (recognition is `recognise`). */
  readonly imageNames: readonly string[];
  /** Text a complete raw artifact ends with (within its last 256 bytes), and what to call it. */
  readonly artifactEnd?: { text: string; what: string };
  /**
   * For a tar artifact: a reader of its entries, in order, that says why the restore would
   * refuse one (by what the entry records, not by any container), so that `verify` and the
   * checks before a restore judge the archive by the restore's own rules and never vouch for
   * an archive the restore refuses. Without it, only the rules that need no earlier entries.
   */
  entryRule?(entry: ServiceEntry): (e: Pick<ReadEntry, 'path' | 'type' | 'linkpath' | 'mode' | 'size'>) => string | undefined;
  /**
   * true: the restore reads the artifact more than once (checkRestore, then restore, or restore
   * itself several times), so the core copies the artifact's file once into a private file,
   * proven against the manifest's SHA-256 while copied, and every `open()` of that restore (its
   * check, restore, fingerprint and any rollback) reads that copy: what was checked is exactly
   * what is written, whatever is swapped into the backup directory meanwhile. It costs the
   * artifact's (compressed) size on disk and one more read, so drivers whose check happens in the
   * same read as the replay (Postgres, MariaDB: psql's guard runs while the dump is replayed, and
   * their dumps can be GBs) or again entry by entry as the archive is written (volume archives)
   * leave it out; their reads are still checked against the SHA-256 (a mismatch fails the
   * stream before its end, and the restore point is put back).
   */
  readonly stageArtifact?: boolean;
  /** A label whose presence makes a container this driver's (e.g. the SQLite paths label). */
  readonly claimedByLabel?: string;
  /** Whether a container is this store's server (see recognise.ts); label-only drivers omit it. */
  recognise?(container: Recognisable): boolean;
  /**
   * Takes the containers of a backed-up Compose project that no other driver recognises
   * (app containers and their data). Returns why it leaves one out, or undefined to take it.
   */
  leftover?(container: ContainerDetails, peers: readonly Peer[]): string | undefined;
  /** Secret values found in the container's environment or command; redacted from all output. */
  secrets(container: ContainerDetails): string[];
  backup(ctx: BackupContext): Promise<BackupOutcome<D>>;
  /**
   * For consistent backups: sets up this store's snapshot point (see Snapshot). A driver
   * without it is copied whole inside the window, with the project's writers paused.
   */
  prepareSnapshot?(ctx: BackupContext): Promise<Snapshot<D>>;
  /**
   * Makes the service's data equal the artifact (not artifact plus current data). May return
   * the fingerprint of what it put back, read while the container was still stopped (for
   * stores whose files change once they run); otherwise the live store is read afterwards.
   */
  restore(ctx: RestoreContext<Checked>): Promise<Fingerprint | undefined | void>;
  /** What a backup of this container would do, touching nothing (`backup create --dry-run`). */
  plan?(engine: DockerEngine, container: ContainerDetails, peers: readonly Peer[]): Promise<BackupPlan>;
  /**
   * Refuses (throws) a restore this driver must not run into this container, before anything
   * changes (no restore point yet): paths outside the store's data, hostile archive entries.
   * What it returns (what it learned of the container) comes back to `restore` as `checked`.
   */
  checkRestore?(ctx: RestoreCheckContext): Promise<Checked | void>;
  /** The content fingerprint of an artifact (on the host, or from a throwaway server). */
  artifactFingerprint?(ctx: ArtifactFingerprintContext): Promise<Fingerprint>;
  /** The content fingerprint of the running store, comparable with `artifactFingerprint`. */
  liveFingerprint?(ctx: LiveFingerprintContext): Promise<Fingerprint>;
  /**
   * For stores whose content changes by itself (keys that expire): what of a fingerprint must
   * still hold at `at`, so one recorded long ago compares with one read now; `other`, when
   * given, is the fingerprint it is about to be compared with. undefined when it cannot tell
   * (an older method): the backup's side is then computed again from its artifact.
   */
  fingerprintAt?(fp: Fingerprint, at: Date, other?: Fingerprint): Fingerprint | undefined;
  /**
   * Proves the artifact restores: restore it somewhere disposable and look at the data.
   * Returns what was seen (counts), which verify records in the manifest; throws on a mismatch.
   */
  deepVerify(ctx: DeepVerifyContext): Promise<Record<string, unknown>>;
  /**
   * An empty server of this store, to start from the backup's image and restore into (deep
   * verify, `backup drill`). Drivers that cannot start one alone leave it out.
   */
  throwaway?(entry: ServiceEntry): ThrowawaySpec;
  /** Whether the service answers; used after a restore when the image has no healthcheck. */
  ready(engine: DockerEngine, container: ContainerDetails): Promise<boolean>;
}
