import { resolve } from 'node:path';
import { storageError, usageError } from '../errors.js';

/** The longest name a Linux file system takes (NAME_MAX), in bytes. */
const NAME_MAX = 255;
/** PATH_MAX is 4096; a backup adds its own directory and file names below the backup directory. */
const DIR_MAX = 3800;

/**
 * The backup directory as given (--dir or BACKUP_DIR), checked before anything uses it. Node
 * decodes argv as UTF-8 and turns bytes that are not into U+FFFD: the directory it would use is
 * then another than the one named, so it is refused (exit 2). A path no file system can hold is
 * a storage problem (exit 7), said in one sentence instead of a system error from deep inside.
 */
export function checkDirFlag(dir: string): void {
  if (dir.includes('\uFFFD')) {
    throw usageError('The backup directory (--dir or BACKUP_DIR) holds bytes that are not UTF-8, so stackvault would use a directory of another name.', 'Choose a directory whose name is UTF-8.');
  }
  const path = resolve(dir);
  const long = path.split('/').find((part) => Buffer.byteLength(part) > NAME_MAX);
  if (long !== undefined) {
    throw storageError(
      `The backup directory cannot exist: its name ${long.slice(0, 24)}… has ${Buffer.byteLength(long)} bytes, more than the ${NAME_MAX} a file system allows.`,
      'Choose another with --dir or BACKUP_DIR.',
    );
  }
  if (Buffer.byteLength(path) > DIR_MAX) {
    throw storageError(`The backup directory path has ${Buffer.byteLength(path)} bytes, too long for the backups stored under it (at most ${DIR_MAX}).`, 'Choose another with --dir or BACKUP_DIR.');
  }
}
