import { constants } from 'node:fs';
import { type FileHandle, mkdtemp, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { clause, ExitCode, integrityError, StackvaultError } from '../errors.js';
import { Sha256Tap } from './artifact.js';
import { artifactBytes } from './artifact-check.js';
import { TMP_PREFIX } from './backup-dir.js';
import { removeTree } from '../util/safe-remove.js';
import type { ServiceEntry } from './manifest.js';

/**
 * One artifact's file, copied once for a restore and proven to be the manifest's (size and
 * SHA-256) while it was copied. Only this descriptor reaches the copy: its name was removed as
 * soon as it was opened, so nothing can rename another file over it, and it is gone when the
 * run ends, however it ends (even killed).
 */
export interface StagedArtifact {
  handle: FileHandle;
  size: number;
}

/**
 * Private copies of the artifacts a restore reads more than once (a driver's check, then its
 * restore): what was checked is then exactly what is written, whatever happens to the backup
 * directory meanwhile (a file swapped in after the check). Copies are made in a 0700 directory
 * beside the backups (a .tmp- one, which `backup cleanup` lists as a leftover if a kill leaves
 * it), as 0600 files unlinked at once; `remove` closes them and removes the directory.
 */
export class ArtifactStaging {
  /** Made at the first copy (a promise: copies are made in parallel). */
  private dir?: Promise<string>;
  private readonly copies: FileHandle[] = [];
  private count = 0;

  constructor(private readonly root: string) {}

  async stage(backupPath: string, entry: ServiceEntry, signal: AbortSignal): Promise<StagedArtifact> {
    this.dir ??= mkdtemp(join(this.root, `${TMP_PREFIX}restore-staging-`)); // mkdtemp: 0700
    const dir = await this.dir;
    const path = join(dir, `artifact-${this.count++}`);
    const handle = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    this.copies.push(handle); // closed by remove, on every path
    await unlink(path);
    const hasher = new Sha256Tap();
    const what = `${entry.name} (${entry.artifact})`;
    try {
      // artifactBytes: a regular file of the backup's own, of the manifest's size, read once.
      await pipeline([await artifactBytes(backupPath, entry), hasher, writeTo(handle)], { signal });
    } catch (err) {
      if (err instanceof StackvaultError) throw err;
      if (signal.aborted) throw new StackvaultError(`Copying the artifact of ${what} for the restore was interrupted.`, ExitCode.interrupted);
      throw new StackvaultError(
        `The artifact of ${what} could not be copied for the restore into ${dir}: ${clause((err as Error).message)}.`,
        ExitCode.failure,
        'Is there room for it beside the backups?',
      );
    }
    if (hasher.digest !== entry.sha256 || hasher.bytes !== entry.bytes) {
      throw integrityError(`The SHA-256 of ${what} does not match the manifest: the file was changed or corrupted.`);
    }
    return { handle, size: hasher.bytes };
  }

  async remove(): Promise<void> {
    await Promise.all(this.copies.splice(0).map((h) => h.close().catch(() => undefined)));
    const dir = await this.dir?.catch(() => undefined);
    if (dir) await removeTree(dir);
  }
}

/**
 * Writes at positions through the handle itself, not a stream of it: a FileHandle's write
 * stream, even with autoClose off, left the handle's close waiting forever.
 */
function writeTo(handle: FileHandle): Writable {
  let position = 0;
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      const rest = async (from: number): Promise<void> => {
        if (from >= chunk.length) return;
        const { bytesWritten } = await handle.write(chunk, from, chunk.length - from, position);
        if (bytesWritten === 0) throw new Error('the staged copy could not be written (no space?)');
        position += bytesWritten;
        await rest(from + bytesWritten);
      };
      rest(0).then(() => cb(), cb);
    },
  });
}
