import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ExitCode, notFound, StackvaultError, storageError, usageError } from '../errors.js';
import { existingBackupDir, isDenied, ownerNote, TMP_PREFIX } from './backup-dir.js';
import { aheadOfClock, MANIFEST_FILE, readManifestIfPresent, type Manifest } from './manifest.js';
import { parseBackupId } from './naming.js';

export interface BackupRecord {
  manifest: Manifest;
  path: string;
  /** Bytes of all artifacts, from the manifest. */
  bytes: number;
}

export interface IncompleteDir {
  name: string;
  path: string;
  /**
   * Why it is not a backup, as it came (a crafted manifest's text may be in it): `--json`
   * carries it raw, and whatever prints it for people escapes it (util/terminal.ts `shown`).
   */
  reason: string;
  /**
   * A backup this user may not read (permission denied): often a whole backup, copied in by
   * another user (the files are 0600, the directories 0700), by its backup-ID name. Never "not a
   * backup", never hidden.
   */
  unreadable?: true;
}

export interface Catalog {
  dir: string;
  /** Newest first. */
  backups: BackupRecord[];
  /**
   * Backups dated more than FUTURE_SKEW_MS ahead of this clock, newest first: made while this
   * host's clock ran ahead (and it was set back since), or on a host whose clock does. Whole
   * backups, restored, verified and deleted by their ID; but their dates say nothing about how
   * they stand to the others, so none is "latest", the newest successful backup, or removed by
   * cleanup or prune (which go by age, and a backup ahead of the clock has none).
   */
  ahead: BackupRecord[];
  incomplete: IncompleteDir[];
}

/**
 * Reads the backup directory. Only directories with a valid manifest are backups; temporary
 * directories (a run in progress or killed) and directories without a readable manifest are
 * reported as incomplete, never as backups. Backups dated ahead of `now` are set apart (`ahead`).
 */
export async function readCatalog(dirOption: string, now: Date = new Date()): Promise<Catalog> {
  const dir = await existingBackupDir(dirOption);
  const entries = await readdir(dir, { withFileTypes: true }).catch(async (err: unknown) => {
    if (!isDenied(err)) throw err;
    throw storageError(`The backup directory ${dir} cannot be read by this user${await ownerNote(dir)}.`, ownersHint(dir));
  });
  const backups: BackupRecord[] = [];
  const ahead: BackupRecord[] = [];
  const incomplete: IncompleteDir[] = [];
  for (const e of entries) {
    // A backup moved to another disk and linked back is not followed (whatever is found through
    // a link is not the backup directory's), but it is named, rather than vanishing from the list.
    if (e.isSymbolicLink() && parseBackupId(e.name)) {
      incomplete.push({ name: e.name, path: join(dir, e.name), reason: 'a symbolic link: backups are read only as directories of their own, never through a link (move or copy it in)' });
      continue;
    }
    if (!e.isDirectory()) continue;
    const path = join(dir, e.name);
    if (e.name.startsWith(TMP_PREFIX)) {
      incomplete.push({ name: e.name, path, reason: 'unfinished: a run is in progress or was interrupted' });
      continue;
    }
    if (e.name.startsWith('.')) continue; // our own state directories
    try {
      // One look: a symlink, FIFO or device named manifest.json is there, and the read says what it is.
      const manifest = await readManifestIfPresent(join(path, MANIFEST_FILE));
      if (!manifest) {
        incomplete.push({ name: e.name, path, reason: 'no manifest.json' });
        continue;
      }
      if (manifest.id !== e.name) {
        incomplete.push({ name: e.name, path, reason: `manifest names another backup (${manifest.id})` });
        continue;
      }
      const record = { manifest, path, bytes: manifest.services.reduce((t, s) => t + (s.bytes ?? 0), 0) };
      (aheadOfClock(manifest.createdAt, now) ? ahead : backups).push(record);
    } catch (err) {
      if (err instanceof StackvaultError && err.exitCode === ExitCode.storage) {
        // Only a backup's name makes it an unreadable backup: a disk of its own has root's
        // lost+found (0700), which is not one and must not stop "latest" or its fetch.
        incomplete.push({ name: e.name, path, reason: `not readable by this user${await ownerNote(path)}`, ...(parseBackupId(e.name) ? { unreadable: true as const } : {}) });
        continue;
      }
      incomplete.push({ name: e.name, path, reason: err instanceof StackvaultError ? err.message.replace(`${join(path, MANIFEST_FILE)} `, 'manifest.json ') : String(err) });
    }
  }
  backups.sort(newestFirst);
  ahead.sort(newestFirst);
  incomplete.sort((a, b) => a.name.localeCompare(b.name));
  return { dir, backups, ahead, incomplete };
}

/**
 * The one order of backups, newest first: by the instant of createdAt (a validated manifest's is
 * `YYYY-MM-DDTHH:MM:SS(.sss)Z`, never compared as text), then by the id's `_N` suffix (two backups
 * of one second), then by id, so that "latest", `list` and retention's "newest" agree.
 */
export function newestFirst(a: BackupRecord, b: BackupRecord): number {
  // The catalog's manifests are validated (createdAt is YYYY-MM-DDTHH:MM:SS(.sss)Z), so a plain parse is the instant.
  const time = (r: BackupRecord) => Date.parse(r.manifest.createdAt) || Number.NEGATIVE_INFINITY;
  const seq = (r: BackupRecord) => parseBackupId(r.manifest.id)?.seq ?? 0;
  return time(b) - time(a) || seq(b) - seq(a) || (a.manifest.id < b.manifest.id ? 1 : a.manifest.id > b.manifest.id ? -1 : 0);
}

/**
 * Finds one backup by its directory name, its timestamp part (`20261121_020000`, optionally
 * with a `_N` suffix), or `latest` (the newest that is not a restore point, never one dated
 * ahead of this clock). Ambiguous and unknown IDs are errors that say what exists.
 */
/** Backups (not restore points) dated ahead of this clock: whole, usable by ID, never "latest". */
export const aheadBackups = (catalog: { ahead: readonly BackupRecord[] }): BackupRecord[] => catalog.ahead.filter((b) => b.manifest.type !== 'restore-point');

export function resolveBackup(catalog: Catalog, id: string): BackupRecord {
  const wanted = id.trim();
  if (!wanted) throw usageError('A backup ID is needed: a directory name, its timestamp part, or "latest".');
  if (wanted === 'latest') {
    // Restore points are safety nets, not what "latest" means: restoring latest twice must
    // not flip between the backup and the state it replaced.
    const latest = catalog.backups.find((b) => b.manifest.type !== 'restore-point');
    // Never an older backup because the newest cannot be read by this user (copied in by another).
    const stamp = (name: string) => parseBackupId(name)?.stamp ?? '';
    const denied = catalog.incomplete.filter((d) => d.unreadable && !d.name.startsWith('restore-point_') && (!latest || stamp(d.name) >= stamp(latest.manifest.id)));
    if (denied.length) {
      const names = `${denied.map((d) => d.name).join(', ')} ${denied.length > 1 ? 'are' : 'is'} ${denied[0]!.reason}`;
      throw storageError(
        latest ? `The newest backup in ${catalog.dir} cannot be read: ${names}, so "latest" would be the older ${latest.manifest.id}.` : `No backup in ${catalog.dir} can be read: ${names}.`,
        ownersHint(catalog.dir),
      );
    }
    if (!latest) {
      const ahead = aheadBackups(catalog);
      if (ahead.length) {
        throw notFound(
          `The only backups in ${catalog.dir} are dated ahead of this clock (${ahead.map((b) => b.manifest.id).join(', ')}), and "latest" is never one of them.`,
          `Restore one by its ID, e.g. ./bot.sh backup restore ${ahead[0]!.manifest.id}, or set this clock right.`,
        );
      }
      throw notFound(`There are no backups in ${catalog.dir}.`, 'Create one with: ./bot.sh backup create');
    }
    return latest;
  }
  // A backup dated ahead of this clock is as much a backup as any other when named.
  const named = [...catalog.backups, ...catalog.ahead];
  const exact = named.find((b) => b.manifest.id === wanted);
  if (exact) return exact;
  const byStamp = named.filter((b) => b.manifest.id.endsWith(`_backup_${wanted}`));
  if (byStamp.length === 1) return byStamp[0]!;
  if (byStamp.length > 1) {
    throw usageError(`Backup ID '${wanted}' is ambiguous: it matches ${byStamp.map((b) => b.manifest.id).join(', ')}.`, 'Use the full directory name.');
  }
  const broken = catalog.incomplete.find((d) => d.name === wanted || d.name.endsWith(`_backup_${wanted}`));
  if (broken?.unreadable) throw storageError(`${broken.name} in ${catalog.dir} is ${broken.reason}.`, ownersHint(catalog.dir));
  if (broken) throw new StackvaultError(`${broken.name} is not a usable backup: ${broken.reason.replace(/\.$/, '')}.`, ExitCode.integrity);
  const newest = catalog.backups.slice(0, 3).map((b) => b.manifest.id);
  throw notFound(`No backup '${wanted}' in ${catalog.dir}.`, newest.length ? `Newest: ${newest.join(', ')} (see ./bot.sh backup list).` : 'There are no backups yet.');
}

/** What to do about backups this user may not read: they are kept readable by their owner only. */
export function ownersHint(dir: string): string {
  const me = process.getuid && process.getgid ? `${process.getuid()}:${process.getgid()}` : 'USER:GROUP';
  return `Backups are readable by their owner only (0700/0600). Run stackvault as that user, or make them this user's: chown -R ${me} ${dir}`;
}
