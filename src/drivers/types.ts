import type { Readable, Writable } from 'node:stream';
import type { ServiceEntry } from '../core/manifest.js';
import type { ContainerDetails, DockerEngine } from '../docker/engine.js';

export type DriverName = 'postgres' | 'redis' | 'chroma' | 'neo4j' | 'sqlite';

/** What the raw (uncompressed) artifact is; decides the file extension and how it is checked. */
export type ArtifactFormat = 'sql' | 'tar';

export interface BackupContext {
  engine: DockerEngine;
  container: ContainerDetails;
  /** Raw artifact bytes go here; the core compresses, hashes and writes them. */
  output: Writable;
  signal: AbortSignal;
  /** Stops the container and guarantees it is started again, even on errors and Ctrl-C. */
  withStopped<T>(work: () => Promise<T>): Promise<T>;
  /** Pauses the container (cgroup freezer), with the same marker and guarantees as a stop. */
  withPaused<T>(work: () => Promise<T>): Promise<T>;
  log(message: string): void;
}

export interface BackupOutcome {
  /** True when a store that is normally stopped was copied while running (label stackvault.stop=false). */
  hot?: boolean;
  /** Driver facts worth keeping in the manifest (never secrets): databases, key counts, paths. */
  details?: Record<string, unknown>;
}

export interface RestoreContext {
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
  inThrowaway(spec: ThrowawaySpec, check: (container: ContainerDetails) => Promise<Record<string, unknown>>): Promise<Record<string, unknown>>;
}

export interface ThrowawaySpec {
  env?: Record<string, string>;
  cmd?: string[];
  labels?: Record<string, string>;
  volumes?: string[];
}

/**
 * One datastore kind. Adding a datastore = one file implementing this, its test, and one line
 * in registry.ts.
 */
export interface Driver {
  readonly name: DriverName;
  readonly format: ArtifactFormat;
  /** Image repository names this driver recognises (`postgres` matches `postgres`, `postgres-foo`). */
  readonly imageNames: readonly string[];
  /** Secret values found in the container's environment or command; redacted from all output. */
  secrets(container: ContainerDetails): string[];
  backup(ctx: BackupContext): Promise<BackupOutcome>;
  /** Makes the service's data equal the artifact (not artifact plus current data). */
  restore(ctx: RestoreContext): Promise<void>;
  /**
   * Proves the artifact restores: restore it somewhere disposable and look at the data.
   * Returns what was seen (counts), which verify records in the manifest; throws on a mismatch.
   */
  deepVerify(ctx: DeepVerifyContext): Promise<Record<string, unknown>>;
  /** Whether the service answers; used after a restore when the image has no healthcheck. */
  ready(engine: DockerEngine, container: ContainerDetails): Promise<boolean>;
}
