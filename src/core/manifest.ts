import type { Compression } from './artifact.js';
import type { ArtifactFormat, DriverName } from '../drivers/types.js';
import type { Fingerprint } from '../drivers/fingerprint.js';
import { integrityError, storageError } from '../errors.js';
import { isDenied } from './backup-dir.js';
import { MiB, readRegularFile, UnsafeFileError } from '../util/safe-file.js';
import { parseBackupId, timestampPart } from './naming.js';

/** Bumped when a reader of the old version could misread the new one. */
export const SCHEMA_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';
export const INFO_FILE = 'backup_info.txt';
/** Far more than any manifest stackvault writes; a bigger file is not read into memory. */
const MANIFEST_MAX_BYTES = 64 * MiB;

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
  /**
   * Why stackvault's restore would refuse this artifact, found while it was written (the same
   * rule the restore applies): its bytes are kept and complete, but the service did not get a
   * backup it can restore, so the backup is partial.
   */
  restoreRefuses?: string;
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
  const manifest = await readManifestIfPresent(path);
  if (!manifest) throw integrityError(`Cannot read ${path}: ENOENT.`);
  return manifest;
}

/**
 * As readManifest, but no file at `path` (ENOENT) is undefined rather than an error: the catalog
 * tells "no manifest.json" from a bad one with this one look (no lstat of its own beforehand).
 */
export async function readManifestIfPresent(path: string): Promise<Manifest | undefined> {
  let text: string;
  try {
    // A regular file only (never a symlink out of the backup directory, a FIFO or a device),
    // and of a sane size: the largest stackvault writes are a few hundred KiB.
    text = await readRegularFile(path, MANIFEST_MAX_BYTES);
  } catch (err) {
    if (err instanceof UnsafeFileError) throw integrityError(`${path} is ${err.what}, not a manifest stackvault wrote; refusing to read it.`);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    // Not a damaged backup: one this user may not read (another user's, copied in as it was).
    if (isDenied(err)) throw storageError(`Cannot read ${path}: permission denied for this user.`);
    throw integrityError(`Cannot read ${path}: ${code ?? String(err)}.`);
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

/** The types `backup create --type` writes; nothing else is a backup type. */
const BACKUP_TYPES: readonly BackupType[] = ['manual', 'daily', 'weekly', 'monthly', 'pre-update', 'restore-point'];
/**
 * How far ahead of this clock a backup's createdAt may lie and still count as made by it (clocks
 * of two hosts differ a little; NTP steps one back). Further ahead, the catalog sets it apart.
 */
export const FUTURE_SKEW_MS = 60 * 60 * 1000;

/** Whether a time (an ISO text stackvault wrote, or a Date) lies further ahead of `now` than FUTURE_SKEW_MS. */
export const aheadOfClock = (time: string | Date, now: Date): boolean => (typeof time === 'string' ? Date.parse(time) : time.getTime()) > now.getTime() + FUTURE_SKEW_MS;
/** Deeper than this, a manifest is refused: nothing stackvault writes comes near, and printing it must not overflow the stack. */
const MAX_DEPTH = 64;
/** The only time format stackvault writes (Date.toISOString), so the only one it reads. */
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z$/;

/** Milliseconds since the epoch of `YYYY-MM-DDTHH:MM:SS(.sss)Z` naming a real instant, else undefined. */
export function isoInstant(value: unknown): number | undefined {
  if (typeof value !== 'string' || !ISO_INSTANT.test(value)) return undefined;
  const t = Date.parse(value);
  // Date.parse takes 2026-02-30 as March 2: the text must name the instant it parses to.
  if (Number.isNaN(t) || new Date(t).toISOString().slice(0, 19) !== value.slice(0, 19)) return undefined;
  return t;
}

/** A backup counts as successful only by its services: at least one, and every one ok. */
export function succeeded(m: Pick<Manifest, 'services'>): boolean {
  return m.services.length > 0 && m.services.every((s) => s.status === 'ok' && s.restoreRefuses === undefined);
}

const isCount = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
/** A size in bytes: a whole number that sums exactly (1e308 is finite, and forty of them are Infinity). */
const isByteCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
const isStrings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
const optional = (v: unknown, ok: (v: unknown) => boolean) => v === undefined || ok(v);
const stringFields = (v: unknown, keys: readonly string[]) => isObj(v) && keys.every((k) => typeof v[k] === 'string');

/** True when `data` nests deeper than `max` objects and arrays. Iterative: the depth it checks is what recursion could not survive. */
function nestsDeeper(data: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[data, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
  }
  return false;
}

/** The manifest's rule for a service name: not empty, and not one of the names before it. */
export const usableServiceName = (name: string, before: ReadonlySet<string>): boolean => name !== '' && !before.has(name);

/** The index of the first name the manifest reader would refuse (usableServiceName), if any. */
export function firstBadServiceName(names: readonly string[]): number | undefined {
  const before = new Set<string>();
  for (const [i, name] of names.entries()) {
    if (!usableServiceName(name, before)) return i;
    before.add(name);
  }
  return undefined;
}

/**
 * The first thing wrong with a parsed manifest, or undefined. Pure, fuzz-tested.
 * Every documented field is checked for its type, since each reaches a sum, a sort, a page or
 * a terminal; unknown keys are allowed (a newer stackvault of the same schema may add some).
 * A date ahead of this clock is not wrong in the manifest (the clock that wrote it, or this one,
 * is): the catalog sets such a backup apart (catalog.ts `ahead`).
 */
export function manifestProblem(data: unknown): string | undefined {
  if (!isObj(data)) return 'not an object';
  if (!Number.isInteger(data.schemaVersion) || (data.schemaVersion as number) < 1) return 'schemaVersion missing';
  for (const key of ['id', 'createdAt', 'type', 'comment'] as const) if (typeof data[key] !== 'string') return `${key} missing`;
  if (nestsDeeper(data, MAX_DEPTH)) return `nested deeper than ${MAX_DEPTH} levels`;
  const parsedId = parseBackupId(data.id as string);
  if (!parsedId) return 'id is not a backup name (<prefix>_backup_YYYYMMDD_HHMMSS)';
  const created = isoInstant(data.createdAt);
  if (created === undefined) return 'createdAt is not a date (YYYY-MM-DDTHH:MM:SSZ)';
  if (timestampPart(new Date(created)) !== parsedId.stamp) return 'createdAt does not match the time in the id';
  if (!BACKUP_TYPES.includes(data.type as BackupType)) return 'type is not a backup type';
  if (data.status !== 'ok' && data.status !== 'partial') return "status is not 'ok' or 'partial'";
  if (isoInstant(data.completedAt) === undefined) return 'completedAt is not a date';
  if (!stringFields(data.tool, ['name', 'version'])) return 'tool is not a name and a version';
  if (!stringFields(data.docker, ['version', 'apiVersion'])) return 'docker is not a version and an API version';
  if (typeof data.host !== 'string') return 'host missing';
  if (!Array.isArray(data.services)) return 'services missing';
  if (data.services.length === 0) return 'services is empty';
  const names = new Set<string>();
  for (const [i, s] of data.services.entries()) {
    if (!isObj(s)) return `services[${i}] is not an object`;
    if (typeof s.name !== 'string' || typeof s.driver !== 'string' || typeof s.status !== 'string') return `services[${i}] lacks name, driver or status`;
    if (!['ok', 'failed', 'skipped'].includes(s.status as string)) return `services[${i}].status is '${String(s.status)}'`;
    if (!usableServiceName(s.name, names)) return `services[${i}].name is empty or used twice`;
    names.add(s.name);
    if (typeof s.container !== 'string' || typeof s.containerId !== 'string' || typeof s.image !== 'string') return `services[${i}] lacks container, containerId or image`;
    if (s.engine !== undefined && (typeof s.engine !== 'string' || !ENGINE_NAME.test(s.engine))) return `services[${i}].engine is not a plain name`;
    if (s.status === 'ok') {
      // The artifact name is joined to the backup directory: it must not be a path.
      if (typeof s.artifact !== 'string' || !SAFE_ARTIFACT.test(s.artifact)) return `services[${i}].artifact is not a plain file name`;
      if (typeof s.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(s.sha256)) return `services[${i}].sha256 is not a SHA-256`;
      if (!isByteCount(s.bytes)) return `services[${i}].bytes missing or not a whole number of bytes`;
    }
    if (!isCount(s.durationMs)) return `services[${i}].durationMs is not a number of 0 or more`;
    for (const key of ['bytes', 'rawBytes'] as const) if (!optional(s[key], isByteCount)) return `services[${i}].${key} is not a whole number of bytes`;
    for (const key of ['downtimeMs', 'stopTimeoutSeconds'] as const) if (!optional(s[key], isCount)) return `services[${i}].${key} is not a number of 0 or more`;
    for (const key of ['project', 'error', 'artifact', 'sha256', 'compression', 'restoreRefuses'] as const)
      if (!optional(s[key], (v) => typeof v === 'string')) return `services[${i}].${key} is not text`;
    if (!optional(s.format, (v) => v === 'sql' || v === 'tar')) return `services[${i}].format is not sql or tar`;
    if (!optional(s.hot, (v) => typeof v === 'boolean')) return `services[${i}].hot is not true or false`;
    if (!optional(s.warnings, isStrings)) return `services[${i}].warnings is not a list of text`;
    if (!optional(s.encryption, (v) => isObj(v) && v.tool === 'age' && isStrings(v.recipients))) return `services[${i}].encryption is not age recipients`;
    if (!optional(s.fingerprint, (v) => isObj(v) && typeof v.method === 'string' && isObj(v.parts) && Object.values(v.parts).every((p) => typeof p === 'string')))
      return `services[${i}].fingerprint is not a method and its parts`;
    if (s.details !== undefined && !isObj(s.details)) return `services[${i}].details is not an object`;
    if (s.skipped !== undefined && !(Array.isArray(s.skipped) && s.skipped.every((k) => isObj(k) && typeof k.path === 'string' && typeof k.why === 'string')))
      return `services[${i}].skipped is not a list of paths and reasons`;
    if (s.archive !== undefined && !(isObj(s.archive) && Number.isSafeInteger(s.archive.entries) && Number.isSafeInteger(s.archive.files))) return `services[${i}].archive is not two counts`;
  }
  // A run in which nothing succeeded keeps nothing; `ok` means every service succeeded.
  const services = data.services as ServiceEntry[];
  if (!services.some((s) => s.status === 'ok')) return 'no service succeeded';
  if ((data.status === 'ok') !== succeeded({ services })) return `status '${data.status}' contradicts its services`;
  return extrasProblem(data);
}

/** The optional records: what verify, drill, offsite and a consistent backup add. */
function extrasProblem(data: Record<string, unknown>): string | undefined {
  if (!optional(data.engines, (v) => isObj(v) && Object.values(v).every((e) => stringFields(e, ['url', 'version', 'apiVersion'])))) return 'engines is not a record of engines';
  if (
    !optional(
      data.leftOut,
      (v) => Array.isArray(v) && v.every((l) => stringFields(l, ['container', 'reason']) && optional(l.project, (x) => typeof x === 'string') && optional(l.service, (x) => typeof x === 'string')),
    )
  )
    return 'leftOut is not a list of containers and reasons';
  if (
    !optional(
      data.offsite,
      (v) => isObj(v) && isoInstant(v.at) !== undefined && typeof v.ok === 'boolean' && optional(v.snapshot, (x) => typeof x === 'string') && optional(v.error, (x) => typeof x === 'string'),
    )
  )
    return 'offsite is not a dated result';
  if (!optional(data.fetchedFrom, (v) => stringFields(v, ['repository', 'snapshot']) && isoInstant((v as Record<string, unknown>).at) !== undefined))
    return 'fetchedFrom is not a repository, snapshot and date';
  const verification = (v: unknown) =>
    isObj(v) &&
    isoInstant(v.at) !== undefined &&
    typeof v.deep === 'boolean' &&
    typeof v.ok === 'boolean' &&
    isObj(v.services) &&
    Object.values(v.services).every((r) => isObj(r) && typeof r.ok === 'boolean' && optional(r.error, (x) => typeof x === 'string') && optional(r.facts, isObj));
  if (!optional(data.verifications, (v) => Array.isArray(v) && v.every(verification))) return 'verifications is not a list of dated results';
  const drill = (v: unknown) =>
    isObj(v) &&
    isoInstant(v.at) !== undefined &&
    typeof v.ok === 'boolean' &&
    isCount(v.durationMs) &&
    isObj(v.services) &&
    Object.values(v.services).every((r) => isObj(r) && typeof r.ok === 'boolean' && typeof r.check === 'string');
  if (!optional(data.drills, (v) => Array.isArray(v) && v.every(drill))) return 'drills is not a list of dated results';
  if (!optional(data.consistency, (v) => isObj(v) && isoInstant(v.at) !== undefined && isCount(v.pausedMs) && isStrings(v.paused) && optional(v.copiedInWindow, isStrings)))
    return 'consistency is not a dated window';
  return undefined;
}
