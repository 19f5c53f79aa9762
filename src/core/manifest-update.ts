import { join } from 'node:path';
import { writeFileAtomic } from '../util/safe-file.js';
import { acquireLock } from './lock.js';
import { MANIFEST_FILE, type Manifest, readManifest } from './manifest.js';

/**
 * Records something about a finished backup in its manifest (a verification, an offsite copy):
 * re-read under the directory's lock, changed, written beside it, fsynced, renamed over it.
 * readManifest refuses (exit 5) a manifest.json that is not a regular file, and the temporary file
 * has a random name created with O_EXCL: a symlink planted in the backup never redirects the write.
 */
export async function updateManifest(dir: string, backupPath: string, why: string, change: (m: Manifest) => Manifest): Promise<Manifest> {
  const release = await acquireLock(dir, why, 60_000);
  try {
    const file = join(backupPath, MANIFEST_FILE);
    const updated = change(await readManifest(file));
    await writeFileAtomic(file, `${JSON.stringify(updated, null, 2)}\n`, { mode: 0o600, fsync: true });
    return updated;
  } finally {
    await release();
  }
}
