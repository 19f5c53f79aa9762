import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errorMessage, ExitCode, integrityError, notFound, StackvaultError } from '../errors.js';
import { offsiteConfigured, openRepository, restic, type ResticSnapshot, shownRepository, snapshots } from '../offsite/restic.js';
import { fsyncPath } from '../util/fsync.js';
import { removeTree } from '../util/safe-remove.js';
import { COMPRESSION_EXTENSION, decompressor, Sha256Tap } from './artifact.js';
import { artifactBytes } from './artifact-check.js';
import { ensureBackupDir, restoreUse, TMP_PREFIX } from './backup-dir.js';
import { aheadBackups, type BackupRecord, readCatalog, resolveBackup } from './catalog.js';
import { acquireLock } from './lock.js';
import { updateManifest } from './manifest-update.js';
import { aheadOfClock, type BackupType, isoInstant, MANIFEST_FILE, type Manifest, parseManifest, type ServiceEntry } from './manifest.js';
import { parseBackupId } from './naming.js';
import { applyRetention, type Decision, type RetentionItem, type RetentionPolicy } from './retention.js';

/**
 * Offsite copies in a restic repository. Each artifact goes in as its own snapshot of the
 * **uncompressed** stream (`restic backup --stdin`): restic cuts it into content-defined chunks,
 * so the unchanged parts of tonight's dump are the chunks of last night's and are stored once,
 * while a compressed stream changes from its first changed byte on (and pg_dumpall's
 * `\restrict` line and the RDB header differ on every run). restic compresses and encrypts
 * the chunks itself. Encrypted artifacts (age) go in as they are: only their owner can open them.
 *
 * A backup is in the repository once its *meta* snapshot is: written last, it holds the
 * manifest and, per artifact, the name, SHA-256 and size of what was stored, so a backup whose
 * upload broke off is never listed, and a fetched one is checked byte for byte.
 */
const TAG = 'stackvault';
const tag = {
  id: (id: string) => `sv-id:${id}`,
  type: (t: string) => `sv-type:${t}`,
  part: (p: 'meta' | 'artifact') => `sv-part:${p}`,
  service: (s: string) => `sv-service:${s}`,
  project: (p: string) => `sv-project:${p}`,
  status: (st: string) => `sv-status:${st}`,
  /** When the backup was made (its manifest's createdAt): a snapshot's own time is when it was stored, which a retried copy makes later. */
  created: (at: string) => `sv-created:${at}`,
};
const META_FILE = 'stackvault-offsite.json';

interface StoredFile {
  /** The file name inside its snapshot, and of the artifact once fetched. */
  name: string;
  compression: ServiceEntry['compression'];
  sha256: string;
  bytes: number;
  snapshot: string;
}
interface Meta {
  format: 1;
  manifest: Manifest;
  files: Record<string, StoredFile>;
}

export interface OffsiteStored {
  id: string;
  snapshot: string;
  /** Bytes handed to restic, and how many of them were new to the repository (after deduplication, before restic compresses them). */
  bytesIn: number;
  bytesAdded: number;
  repository: string;
  created: boolean;
}

/** Stores one local backup in the (opened) repository; `created`: whether opening it created it. */
async function storeOffsite(record: BackupRecord, created: boolean, signal?: AbortSignal): Promise<OffsiteStored> {
  const m = record.manifest;
  const common = [TAG, tag.id(m.id), tag.type(m.type), ...new Set(m.services.flatMap((s) => (s.project ? [tag.project(s.project)] : [])))];
  const files: Record<string, StoredFile> = {};
  let bytesIn = 0;
  let bytesAdded = 0;
  for (const s of m.services) {
    if (s.status !== 'ok' || !s.artifact) continue;
    const opened = openForUpload(await artifactBytes(record.path, s), s);
    const summary = await backupStdin(opened.name, opened.stream, [...common, tag.part('artifact'), tag.service(s.name)], signal);
    // The local file was checked against the manifest on the way: only now is the upload trusted.
    const check = opened.check();
    if (check) throw integrityError(`${m.id}/${s.artifact} ${check}; it was not stored offsite.`, `Run ./bot.sh backup verify ${m.id}`);
    files[s.name] = { name: opened.name, compression: opened.compression, sha256: opened.stored.digest, bytes: opened.stored.bytes, snapshot: summary.snapshot_id };
    bytesIn += opened.stored.bytes;
    bytesAdded += summary.data_added;
  }
  const meta: Meta = { format: 1, manifest: m, files };
  const summary = await backupStdin(META_FILE, Readable.from([Buffer.from(JSON.stringify(meta))]), [...common, tag.part('meta'), tag.status(m.status), tag.created(m.createdAt)], signal);
  return { id: m.id, snapshot: summary.snapshot_id, bytesIn, bytesAdded: bytesAdded + summary.data_added, repository: shownRepository(), created };
}

/** The artifact (its file's bytes, opened by artifactBytes) as it goes to restic: decompressed (hashed on both sides), or as it is. */
function openForUpload(file: Readable, s: ServiceEntry) {
  const onDisk = new Sha256Tap();
  const stored = new Sha256Tap();
  const asIs = s.encryption !== undefined || !s.compression || s.compression === 'none';
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const stages: NodeJS.ReadWriteStream[] = asIs ? [onDisk, stored, out] : [onDisk, decompressor(s.compression!), stored, out];
  pipeline(file, ...(stages as [NodeJS.ReadWriteStream])).catch((err: Error) => out.destroy(err));
  const extension = COMPRESSION_EXTENSION[s.compression ?? 'none'];
  return {
    name: asIs ? s.artifact! : s.artifact!.slice(0, s.artifact!.length - extension.length),
    compression: asIs ? s.compression : ('none' as const),
    stream: out as Readable,
    stored,
    check: () => (onDisk.digest !== s.sha256 ? 'does not match its checksum in the manifest' : undefined),
  };
}

async function backupStdin(name: string, input: Readable, tags: string[], signal?: AbortSignal): Promise<{ snapshot_id: string; data_added: number }> {
  const out = await restic(['backup', '--json', '--stdin', '--stdin-filename', name, ...tags.flatMap((t) => ['--tag', t])], { input, signal });
  const summary = out
    .split('\n')
    .map((l) => (l.startsWith('{') ? (JSON.parse(l) as { message_type?: string; snapshot_id?: string; data_added?: number }) : undefined))
    .find((j) => j?.message_type === 'summary');
  if (!summary?.snapshot_id) throw new Error(`restic did not report a snapshot for ${name}`);
  return { snapshot_id: summary.snapshot_id, data_added: summary.data_added ?? 0 };
}

export interface RemoteBackup {
  id: string;
  type: string;
  status: string;
  /**
   * When the backup was made (its manifest's createdAt, recorded on its meta snapshot), so that
   * a backup stored after a newer one (its offsite copy had failed, the next run stored it) is
   * not taken for the newest; for a record of an earlier version, which lacks it, when it was stored.
   */
  time: string;
  snapshot: string;
  hostname: string;
  projects: string[];
}

/** Backups whose meta snapshot is in the repository, newest first. */
export async function listOffsite(signal?: AbortSignal): Promise<RemoteBackup[]> {
  const metas = await snapshots([TAG, tag.part('meta')], signal);
  const value = (s: ResticSnapshot, prefix: string) => (s.tags ?? []).filter((t) => t.startsWith(prefix)).map((t) => t.slice(prefix.length));
  return metas
    .map((s) => ({
      id: value(s, 'sv-id:')[0] ?? '?',
      type: value(s, 'sv-type:')[0] ?? '?',
      status: value(s, 'sv-status:')[0] ?? 'ok',
      time: value(s, 'sv-created:').find((t) => isoInstant(t) !== undefined) ?? s.time,
      snapshot: s.short_id,
      hostname: s.hostname,
      projects: value(s, 'sv-project:'),
    }))
    .sort(newestFirst);
}

/**
 * restic writes each snapshot's time with the offset of the host and season it was taken in
 * (`…T04:30:00-05:00` is after `…T08:00:00Z`, and at the end of summer time an hour repeats):
 * ordered by the instant, never as text.
 */
const newestFirst = (a: { time: string }, b: { time: string }) => (Date.parse(b.time) || 0) - (Date.parse(a.time) || 0);

/**
 * A backup ID becomes a directory name in the backup directory: only a plain one
 * (`<prefix>_backup_YYYYMMDD_HHMMSS[_N]`) may, never a path like `../../etc/x`. The repository
 * may be less trusted than this host, so its tags and records are held to that too (exit 5).
 */
export function plainBackupId(id: string, source: string): string {
  if (!parseBackupId(id)) throw integrityError(`${source} names a backup ${JSON.stringify(id.slice(0, 120))} that is not a backup ID; refusing to use it.`);
  return id;
}

/**
 * The one check of a backup ID asked of the repository, where it comes in (fetchOffsite,
 * withFetchedCopy), before any lock, directory or lookup. Only full backup IDs are stored, so
 * one typed in that is not plain is simply not there (exit 4) and is never joined to a path;
 * "latest" is the newest backup's sv-id tag, the repository's word, refused (exit 5) if not plain.
 */
async function wantedId(id: string, signal?: AbortSignal): Promise<string> {
  if (id === 'latest') {
    // As locally: never one dated ahead of this clock (made while a clock ran ahead, and stored).
    const now = new Date();
    const newest = (await listOffsite(signal)).find((r) => r.type !== 'restore-point' && !aheadOfClock(r.time, now))?.id;
    if (!newest) throw notFound(`There are no backups in the restic repository ${shownRepository()}.`);
    return plainBackupId(newest, "The restic repository's newest backup");
  }
  if (!parseBackupId(id)) throw notFound(`No backup '${id}' in the restic repository ${shownRepository()} (it is looked up by full backup ID).`, 'See ./bot.sh backup list --remote');
  return id;
}

/**
 * Fetches a backup from the repository into the backup directory: every file is checked
 * against the SHA-256 recorded when it was stored, in a temporary directory published only
 * when all are. Artifacts stored uncompressed come back uncompressed (the manifest says so).
 * Under the directory's lock, so a cleanup meanwhile does not take the unfinished directory for a leftover.
 */
export async function fetchOffsite(dir: string, id: string, signal?: AbortSignal): Promise<string> {
  const wanted = await wantedId(id, signal);
  const release = await acquireLock(dir, `fetch ${wanted} from the restic repository`, 60_000);
  try {
    return await fetchInto(dir, wanted, signal);
  } finally {
    await release();
  }
}

/** fetchOffsite's work, for a caller that holds the lock (or owns `dir`); `id` has passed wantedId. */
async function fetchInto(dir: string, id: string, signal?: AbortSignal): Promise<string> {
  const metas = await snapshots([TAG, tag.part('meta'), tag.id(id)], signal);
  const newest = metas.sort(newestFirst)[0];
  if (!newest) throw notFound(`No backup '${id}' in the restic repository ${shownRepository()} either.`, 'See ./bot.sh backup list --remote');
  const meta = JSON.parse(await restic(['dump', '--quiet', newest.id, `/${META_FILE}`], { signal })) as Meta;
  if (meta.format !== 1 || meta.manifest?.id !== id) throw integrityError(`The repository's record of ${id} is not one stackvault wrote.`);
  const tmp = join(dir, `${TMP_PREFIX}fetch-${id}`);
  await removeTree(tmp);
  await mkdir(tmp, { mode: 0o700 });
  try {
    const services: ServiceEntry[] = [];
    for (const s of meta.manifest.services) {
      const f = meta.files[s.name];
      if (s.status !== 'ok' || !f) {
        services.push(s);
        continue;
      }
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(f.name)) throw integrityError(`The repository's record of ${id} names a file '${f.name}' that is not a plain name.`);
      // It goes into restic's argv: anything but a snapshot ID (say "--password-command=…") is refused.
      if (!/^[0-9a-f]{8,64}$/.test(String(f.snapshot))) throw integrityError(`The repository's record of ${id} names a snapshot that is not a snapshot ID.`);
      const target = join(tmp, f.name);
      const sink = hashingFile(target);
      await restic(['dump', '--quiet', f.snapshot, `/${f.name}`], { stdout: sink, signal });
      await sink.done;
      if (sink.tap.digest !== f.sha256 || sink.tap.bytes !== f.bytes) throw integrityError(`${s.name}: what the repository returned for ${id} does not match the SHA-256 recorded when it was stored.`);
      await fsyncPath(target);
      services.push({ ...s, artifact: f.name, compression: f.compression, sha256: f.sha256, bytes: f.bytes });
    }
    const manifest: Manifest = { ...meta.manifest, services, fetchedFrom: { repository: shownRepository(), snapshot: newest.short_id, at: new Date().toISOString() } };
    const text = `${JSON.stringify(manifest, null, 2)}\n`;
    parseManifest(text, `the repository's manifest of ${id}`);
    await writeFile(join(tmp, MANIFEST_FILE), text, { mode: 0o600 });
    await fsyncPath(join(tmp, MANIFEST_FILE));
    await rename(tmp, join(dir, id));
    return join(dir, id);
  } catch (err) {
    await removeTree(tmp);
    throw err;
  }
}

/** A Writable that hashes what goes by into a new file; `done` settles once the file is written. */
function hashingFile(target: string) {
  const input = new PassThrough({ highWaterMark: 1 << 20 });
  const tap = new Sha256Tap();
  const done = pipeline(input, tap, createWriteStream(target, { mode: 0o600, flags: 'wx' }));
  done.catch(() => undefined); // awaited by the caller
  return Object.assign(input, { tap, done });
}

export interface OffsiteOutcome {
  id: string;
  ok: boolean;
  stored?: OffsiteStored;
  error?: string;
  exitCode?: number;
}

/**
 * After `create --offsite`: stores the new backup, then every earlier one whose offsite copy
 * failed (the server was down last night), oldest first, and last those dated ahead of this
 * clock (as much backups as the others, only not placed in time). Each result goes into its manifest.
 */
export async function storeNewAndPending(dir: string, newId: string, signal?: AbortSignal): Promise<OffsiteOutcome[]> {
  const catalog = await readCatalog(dir);
  const pending = [...[...catalog.backups].reverse(), ...[...catalog.ahead].reverse()].filter((b) => b.manifest.offsite && !b.manifest.offsite.ok && b.manifest.id !== newId);
  const fresh = catalog.backups.find((b) => b.manifest.id === newId);
  const outcomes: OffsiteOutcome[] = [];
  // Opened (or created) once; a repository that cannot be opened fails the first backup below.
  let opened: Promise<'opened' | 'created'> | undefined;
  for (const b of [...(fresh ? [fresh] : []), ...pending]) {
    let outcome: OffsiteOutcome;
    try {
      opened ??= openRepository(signal);
      outcome = { id: b.manifest.id, ok: true, stored: await storeOffsite(b, (await opened) === 'created' && outcomes.length === 0, signal) };
    } catch (err) {
      if (err instanceof StackvaultError && err.exitCode === ExitCode.interrupted) throw err;
      outcome = { id: b.manifest.id, ok: false, error: errorMessage(err), exitCode: err instanceof StackvaultError ? err.exitCode : ExitCode.offsite };
    }
    outcomes.push(outcome);
    await updateManifest(catalog.dir, b.path, `offsite record ${b.manifest.id}`, (m) => ({
      ...m,
      offsite: { at: new Date().toISOString(), ok: outcome.ok, ...(outcome.stored ? { snapshot: outcome.stored.snapshot } : {}), ...(outcome.error ? { error: outcome.error } : {}) },
    }));
    // The repository is down or refuses us: the others would fail the same way; they stay pending.
    if (!outcome.ok) break;
  }
  return outcomes;
}

/** For restore: a backup that is not on local disk is fetched from the repository, if there is one. */
export async function localOrFetched(dir: string, id: string, onFetch: (message: string) => void, signal?: AbortSignal): Promise<void> {
  // After the disk was lost the backup directory is gone too: with a repository, make it anew.
  if (offsiteConfigured()) await ensureBackupDir(dir, restoreUse(dir));
  const catalog = await readCatalog(dir);
  try {
    resolveBackup(catalog, id);
    return;
  } catch (err) {
    if (!(err instanceof StackvaultError) || err.exitCode !== ExitCode.notFound || !offsiteConfigured()) throw err;
    // A backup here dated ahead of this clock is a backup here: "latest" is not fetched past it.
    if (id === 'latest' && aheadBackups(catalog).length) throw err;
  }
  // "latest" with no backup here (a new host, the disk lost): the repository's newest. With
  // any backup here, "latest" stays the local one, as without a repository.
  if (id !== 'latest') {
    onFetch(`${id} is not in ${catalog.dir}: fetching it from the restic repository ${shownRepository()} ...`);
    await fetchOffsite(catalog.dir, id, signal);
    return;
  }
  const newest = await wantedId(id, signal);
  // A directory of that name here (a copy that stopped, with no manifest yet) is said as for that
  // backup by name (exit 5), never fetched over: the fetch could not put it there.
  if (catalog.incomplete.some((d) => d.name === newest)) resolveBackup(catalog, newest);
  onFetch(`There is no backup in ${catalog.dir}: fetching the newest one from the restic repository ${shownRepository()}, ${newest} ...`);
  await fetchOffsite(catalog.dir, newest, signal);
}

export interface OffsitePrune {
  decisions: Decision[];
  /** Artifact snapshots of uploads that broke off, forgotten (or, with dryRun, to be). */
  brokenUploads: number;
  /** Bytes the repository shrank by (restic prune), when anything was removed. */
  freedBytes?: number;
}

/**
 * Retention in the repository, by the same rules as on disk (manual backups and restore points
 * never, the newest successful one never): `restic forget` of every snapshot of each backup
 * the policy drops, then one `restic prune`. Callers run it only after a fully successful run.
 */
export async function pruneOffsite(policy: RetentionPolicy, now: Date, dryRun: boolean, signal?: AbortSignal): Promise<OffsitePrune> {
  const remote = await listOffsite(signal);
  const items: RetentionItem[] = remote.map((r) => ({ id: r.id, type: r.type as BackupType, createdAt: new Date(r.time), status: r.status === 'partial' ? 'partial' : 'ok' }));
  const decisions = byBackup(applyRetention(items, policy, now));
  const drop = decisions.filter((d) => !d.keep);
  const all = await snapshots([TAG], signal);
  const orphans = await brokenUploads(all, now, signal);
  if (dryRun || drop.length + orphans.length === 0) return { decisions, brokenUploads: orphans.length };
  const before = await repositorySize(signal);
  // Every snapshot of a dropped backup, its artifacts and its meta (restic forget takes IDs, or a policy).
  const dropped = new Set(drop.map((d) => tag.id(d.id)));
  const ids = all.filter((x) => (x.tags ?? []).some((t) => dropped.has(t))).map((x) => x.id);
  await restic(['forget', ...new Set([...ids, ...orphans])], { signal });
  await restic(['prune'], { signal });
  return { decisions, brokenUploads: orphans.length, freedBytes: Math.max(0, before - (await repositorySize(signal))) };
}

/**
 * One decision per backup ID. Forgetting goes by ID (every snapshot tagged `sv-id:ID`), and the
 * repository can hold several records of one backup: an upload retried after restic failed
 * past its meta snapshot, or a record someone with append-only access planted (an old
 * `--time`, `sv-type:daily`) beside a manual backup or the newest one. A backup is dropped
 * only when every record of it is, so no record can take a backup down with it.
 */
export function byBackup(decisions: readonly Decision[]): Decision[] {
  const one = new Map<string, Decision>();
  for (const d of decisions) {
    const seen = one.get(d.id);
    if (!seen || (d.keep && !seen.keep)) one.set(d.id, d);
  }
  return [...one.values()];
}

/**
 * Artifact snapshots that no meta snapshot names: left by an upload that broke off. Those of a
 * backup stored since (a retry) go at once; those of a backup never stored wait a day, since
 * an upload may still be running.
 */
async function brokenUploads(all: ResticSnapshot[], now: Date, signal?: AbortSignal): Promise<string[]> {
  const idOf = (x: ResticSnapshot) => (x.tags ?? []).find((t) => t.startsWith('sv-id:'));
  const metas = all.filter((x) => x.tags?.includes(tag.part('meta')));
  const named = new Set<string>();
  for (const m of metas) {
    let meta: Partial<Meta> = {};
    try {
      meta = JSON.parse(await restic(['dump', '--quiet', m.id, `/${META_FILE}`], { signal })) as Meta;
    } catch (err) {
      if (err instanceof StackvaultError) throw err; // the repository, not this record
      // a record that is not JSON names nothing
    }
    for (const f of Object.values(meta.files ?? {})) named.add(String(f?.snapshot));
  }
  const stored = new Set(metas.map(idOf));
  return all
    .filter((x) => x.tags?.includes(tag.part('artifact')) && !named.has(x.short_id) && !named.has(x.id))
    .filter((x) => stored.has(idOf(x)) || now.getTime() - Date.parse(x.time) > 86_400_000)
    .map((x) => x.id);
}

async function repositorySize(signal?: AbortSignal): Promise<number> {
  const stats = JSON.parse(await restic(['stats', '--json', '--mode', 'raw-data', '--no-lock'], { signal })) as { total_size?: number };
  return stats.total_size ?? 0;
}

/** `restic check --read-data-subset`: the repository's structure, and that share of its data read back. */
export async function checkRepository(subset: string, signal?: AbortSignal): Promise<string> {
  try {
    const out = await restic(['check', `--read-data-subset=${subset}`], { signal });
    return out.trim().split('\n').pop() ?? 'no errors were found';
  } catch (err) {
    // Unreachable or locked stays a repository error (exit 10); damage found is an integrity error (exit 5).
    if (err instanceof StackvaultError && /^restic failed/.test(err.message))
      throw integrityError(`The restic repository ${shownRepository()} failed its check: ${err.message.replace(/^restic failed \(exit \d+\): /, '')}`);
    throw err;
  }
}

/**
 * For `verify --remote`: fetches the backup (every file checked against its recorded SHA-256)
 * into a scratch directory beside the backups, hands it to `work`, and removes it again.
 * "latest" is the newest backup in the repository.
 */
export async function withFetchedCopy<T>(dir: string, id: string, work: (scratchDir: string, id: string) => Promise<T>, signal?: AbortSignal): Promise<T> {
  const root = await ensureBackupDir(dir);
  const wanted = await wantedId(id, signal);
  // The scratch directory is a .tmp- one, which cleanup removes as a leftover when it holds the
  // lock: held for the whole check, as a restore or drill holds it.
  const release = await acquireLock(root, `backup verify --remote ${wanted}`, 60_000);
  try {
    const scratch = await mkdtemp(join(root, `${TMP_PREFIX}remote-verify-`));
    try {
      await fetchInto(scratch, wanted, signal);
      return await work(scratch, wanted);
    } finally {
      await removeTree(scratch);
    }
  } finally {
    await release();
  }
}
