import { access, constants, lstat, mkdir, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { storageError } from '../errors.js';

/** Temporary directories start with a dot so that nothing lists them as backups. */
export const TMP_PREFIX = '.tmp-';

/**
 * What a command that writes into the backup directory needs it for, and what to do when it
 * cannot: said when the directory is read-only or another user's (a restore writes its restore
 * point there, so a backup directory copied in read-only cannot be restored from as it is).
 */
export interface DirUse {
  why: string;
  hint: string;
}

/** A restore's use of the backup directory (restore, and fetching the backup it restores). */
export const restoreUse = (dir: string): DirUse => ({
  why: 'a restore first writes its restore point there (the current data, put back if the restore fails), under a lock',
  hint: `Restore from a writable copy: cp -a ${dir} NEWDIR, then the same command with --dir NEWDIR (or mount it read-write, or make it writable for this user).`,
});

/** Creates the backup directory (0700) when missing and proves it is writable. */
export async function ensureBackupDir(dir: string, use?: DirUse): Promise<string> {
  const path = resolve(dir);
  const existing = await stat(path).catch(() => undefined);
  if (existing && !existing.isDirectory()) throw storageError(`The backup directory ${path} is not a directory.`);
  if (!existing) {
    try {
      await mkdir(path, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw storageError(`Cannot create the backup directory ${path}: ${describeFsError(err)}.`, 'Choose another with --dir or BACKUP_DIR.');
    }
  }
  try {
    await access(path, constants.W_OK | constants.X_OK);
  } catch (err) {
    const what = (err as NodeJS.ErrnoException).code === 'EROFS' ? 'is on a read-only file system' : `is not writable by this user${await ownerNote(path)}`;
    throw storageError(`The backup directory ${path} ${what}${use ? `: ${use.why}` : ''}.`, use?.hint ?? 'Fix its permissions or choose another with --dir or BACKUP_DIR.');
  }
  return path;
}

/**
 * Whose a path is, as " (uid 4242; it belongs to uid 0, mode 0700)", for a sentence about a
 * path this user may not read or write; '' where it cannot be seen.
 */
export async function ownerNote(path: string): Promise<string> {
  const st = await lstat(path).catch(() => undefined);
  const me = process.getuid?.();
  if (!st) return me === undefined ? '' : ` (uid ${me})`;
  return ` (${me === undefined ? '' : `uid ${me}; `}it belongs to uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`;
}

/** Whether a file-system error says this user may not read or enter a path (not that it is missing or broken). */
export const isDenied = (err: unknown) => ['EACCES', 'EPERM'].includes((err as NodeJS.ErrnoException)?.code ?? '');

/** For read-only commands: the directory must exist. */
export async function existingBackupDir(dir: string): Promise<string> {
  const path = resolve(dir);
  try {
    if (!(await stat(path)).isDirectory()) throw new Error('not a directory');
  } catch {
    throw storageError(`The backup directory ${path} does not exist.`, 'Create a backup first, or point --dir / BACKUP_DIR at your backups.');
  }
  return path;
}

export function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOSPC':
      return 'no space left on the device';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOENT':
      return 'a parent directory does not exist';
    case 'EDQUOT':
      return 'disk quota exceeded';
    default:
      return code ?? String(err);
  }
}

export const isStorageFailure = (err: unknown) => ['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EIO'].includes((err as NodeJS.ErrnoException)?.code ?? '');
