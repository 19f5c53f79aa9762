import { access, constants, mkdir, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { storageError } from '../errors.js';

/** Temporary directories start with a dot so that nothing lists them as backups. */
export const TMP_PREFIX = '.tmp-';

/** Creates the backup directory (0700) when missing and proves it is writable. */
export async function ensureBackupDir(dir: string): Promise<string> {
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
  } catch {
    throw storageError(`The backup directory ${path} is not writable by this user.`, 'Fix its permissions or choose another with --dir or BACKUP_DIR.');
  }
  return path;
}

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
