import type { Compression } from './artifact.js';
import type { ArtifactFormat, DriverName } from '../drivers/types.js';
import type { Fingerprint } from '../drivers/fingerprint.js';
import { integrityError } from '../errors.js';
import { MiB, readRegularFile, UnsafeFileError } from '../util/safe-file.js';

/** Bumped when a reader of the old version could misread the new one. */
export const SCHEMA_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';
export const INFO_FILE = 'backup_info.txt';
/** Far more than any manifest stackvault writes; a bigger file is not read into memory. */
export const MANIFEST_MAX_BYTES = 64 * MiB;

export type BackupType = 'manual' | 'daily' | 'weekly' | 'monthly' | 'pre-update' | 'restore-point';

export type ServiceStatus = 'ok' | 'failed' | 'skipped';

export interface ServiceEntry {
  name: string;
  container: string;
  containerId: string;
  /** The Docker engine it ran on, when the backup spanned several (--host NAME=…). */
  engine?: string;
  image: string;
  driver: DriverName;
  project?: string;
  status: ServiceStatus;
  error?: string;
  artifact?: string;
  format?: ArtifactFormat;
  compression?: Compression;
  bytes?: number;
  rawBytes?: number;
  sha256?: string;
  durationMs: number;
  /** Set when the artifact is encrypted; recipients are public keys. */
  encryption?: { tool: 'age'; recipients: string[] };
  /** True when copied while running although the driver normally stops it. */
  hot?: boolean;
  /** How long the container was stopped or paused for its copy, until it ran again. */
  downtimeMs?: number;
  /** The stop timeout it was given (--stop-timeout, else its own, else Docker's 10 s). */
  stopTimeoutSeconds?: number;
  /** Things the user should know that did not fail the backup: data outside volumes, a kill on stop. */
  warnings?: string[];
  /** What the driver recorded, as its `details` schema says (checked before a restore or verify). */
  details?: Record<string, unknown>;
  /** For tar artifacts: how many entries, and of them regular files, the archive holds. */
  archive?: { entries: number; files: number };
  /** Paths of the container that were not backed up, and why. */
  skipped?: Array<{ path: string; why: string }>;
  /** The content of the artifact, summarised (see drivers/fingerprint.ts); restores are checked against it. */
  fingerprint?: Fingerprint;
}

export interface Manifest {
  schemaVersion: number;
  id: string;
  createdAt: string;
  completedAt: string;
  type: BackupType;
  comment: string;
  status: 'ok' | 'partial';
  tool: { name: string; version: string };
  docker: { version: string; apiVersion: string };
  /** With several engines: each one's address (never a password) and version, by name. */
  engines?: Record<string, { url: string; version: string; apiVersion: string }>;
  host: string;
  services: ServiceEntry[];
  /** Containers of the backed-up projects that were not backed up, and why. */
  leftOut?: Array<{ container: string; project?: string; service?: string; reason: string }>;
  /** The last attempt to store this backup in the restic repository (--offsite). */
  offsite?: { at: string; ok: boolean; snapshot?: string; error?: string };
  /** Set on a backup fetched back from the restic repository. */
  fetchedFrom?: { repository: string; snapshot: string; at: string };
  /** What `backup verify` checked, newest last (at most 10 kept). */
  verifications?: Verification[];
  /** Set on a consistent backup (--consistent): the window in which every store's point was fixed. */
  consistency?: ConsistencyRecord;
  /** `backup drill` runs, newest last (at most 10): restored into a throwaway copy of the stack. */
  drills?: Drill[];
}

/** A consistent backup's window (see core/consistency.ts). */
export interface ConsistencyRecord {
  /** When the window opened: every writer was paused from here. */
  at: string;
  /** From the first pause request until the last writer ran again. */
  pausedMs: number;
  /** The containers paused for the window. */
  paused: string[];
  /** Services without a quick snapshot point, copied whole inside the window (which it lengthens). */
  copiedInWindow?: string[];
}

export interface Drill {
  at: string;
  ok: boolean;
  durationMs: number;
  /** Per service: whether it came back equal, and the content check's word (or why not drilled). */
  services: Record<string, { ok: boolean; check: string }>;
}

export interface Verification {
  at: string;
  deep: boolean;
  ok: boolean;
  services: Record<string, { ok: boolean; error?: string; facts?: Record<string, unknown> }>;
}

/**
 * Reads and validates a manifest. Every problem is an integrity error naming the file, so a
 * hand-edited or truncated manifest is reported, never half-trusted.
 */
export async function readManifest(path: string): Promise<Manifest> {
  let text: string;
  try {
    // A regular file only (never a symlink out of the backup directory, a FIFO or a device),
    // and of a sane size: the largest stackvault writes are a few hundred KiB.
    text = await readRegularFile(path, MANIFEST_MAX_BYTES);
  } catch (err) {
    if (err instanceof UnsafeFileError) throw integrityError(`${path} is ${err.what}, not a manifest stackvault wrote; refusing to read it.`);
    throw integrityError(`Cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}.`);
  }
  return parseManifest(text, path);
}

export function parseManifest(text: string, source: string): Manifest {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw integrityError(`${source} is not valid JSON.`);
  }
  const problem = manifestProblem(data);
  if (problem) throw integrityError(`${source} is not a valid stackvault manifest: ${problem}.`);
  const m = data as Manifest;
  if (m.schemaVersion > SCHEMA_VERSION) {
    throw integrityError(`${source} has schemaVersion ${m.schemaVersion}, newer than this stackvault understands (${SCHEMA_VERSION}).`, 'Upgrade stackvault to read this backup.');
  }
  return m;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const ENGINE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const SAFE_ARTIFACT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** The first thing wrong with a parsed manifest, or undefined. Pure, fuzz-tested. */
export function manifestProblem(data: unknown): string | undefined {
  if (!isObj(data)) return 'not an object';
  if (!Number.isInteger(data.schemaVersion) || (data.schemaVersion as number) < 1) return 'schemaVersion missing';
  for (const key of ['id', 'createdAt', 'type', 'comment'] as const) if (typeof data[key] !== 'string') return `${key} missing`;
  if (Number.isNaN(Date.parse(data.createdAt as string))) return 'createdAt is not a date';
  if (!Array.isArray(data.services)) return 'services missing';
  for (const [i, s] of data.services.entries()) {
    if (!isObj(s)) return `services[${i}] is not an object`;
    if (typeof s.name !== 'string' || typeof s.driver !== 'string' || typeof s.status !== 'string') return `services[${i}] lacks name, driver or status`;
    if (!['ok', 'failed', 'skipped'].includes(s.status as string)) return `services[${i}].status is '${String(s.status)}'`;
    if (s.engine !== undefined && (typeof s.engine !== 'string' || !ENGINE_NAME.test(s.engine))) return `services[${i}].engine is not a plain name`;
    if (s.status === 'ok') {
      // The artifact name is joined to the backup directory: it must not be a path.
      if (typeof s.artifact !== 'string' || !SAFE_ARTIFACT.test(s.artifact)) return `services[${i}].artifact is not a plain file name`;
      if (typeof s.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(s.sha256)) return `services[${i}].sha256 is not a SHA-256`;
      if (typeof s.bytes !== 'number' || s.bytes < 0) return `services[${i}].bytes missing`;
    }
    if (s.details !== undefined && !isObj(s.details)) return `services[${i}].details is not an object`;
    if (s.skipped !== undefined && !(Array.isArray(s.skipped) && s.skipped.every((k) => isObj(k) && typeof k.path === 'string' && typeof k.why === 'string')))
      return `services[${i}].skipped is not a list of paths and reasons`;
    if (s.archive !== undefined && !(isObj(s.archive) && Number.isSafeInteger(s.archive.entries) && Number.isSafeInteger(s.archive.files))) return `services[${i}].archive is not two counts`;
  }
  return undefined;
}
