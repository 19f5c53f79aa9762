import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncPath } from '../util/fsync.js';
import { acquireLock } from './lock.js';
import { MANIFEST_FILE, type Manifest, readManifest } from './manifest.js';

/**
 * Records something about a finished backup in its manifest (a verification, an offsite copy):
 * re-read under the directory's lock, changed, written beside it, fsynced, renamed over it.
 */
export async function updateManifest(dir: string, backupPath: string, why: string, change: (m: Manifest) => Manifest): Promise<Manifest> {
  const release = await acquireLock(dir, why, 60_000);
  try {
    const updated = change(await readManifest(join(backupPath, MANIFEST_FILE)));
    const tmp = join(backupPath, `.${MANIFEST_FILE}.tmp`);
    await writeFile(tmp, `${JSON.stringify(updated, null, 2)}\n`, { mode: 0o600 });
    await fsyncPath(tmp);
    await rename(tmp, join(backupPath, MANIFEST_FILE));
    return updated;
  } finally {
    await release();
  }
}
