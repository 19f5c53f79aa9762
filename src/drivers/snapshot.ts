import type { Writable } from 'node:stream';
import type { BackupOutcome, DriverDetails, Snapshot } from './types.js';

/**
 * A plain backup through a driver's Snapshot: the point is fixed, the artifact written, and
 * what held the point released on every path. Drivers whose `backup` is their consistent
 * snapshot taken on its own use this, so both kinds of backup run the same code.
 */
export async function backupThrough<D extends DriverDetails>(snapshot: Snapshot<D>, output: Writable): Promise<BackupOutcome<D>> {
  try {
    await snapshot.fix();
    return await snapshot.backup(output);
  } finally {
    await snapshot.release();
  }
}
