import { hostname } from 'node:os';
import { anyMarkerFile, clearMarkerFile, markerFile, readMarkerFiles, writeMarkerFile } from './marker-dir.js';
import { inspectIfPresent, type DockerEngine } from '../docker/engine.js';
import { processAlive } from './lock.js';
import { shellWord } from '../util/shell-word.js';

/**
 * A restore changes a store in many steps (psql drops and refills database after database, a
 * volume is emptied and then filled). A run that dies in between (SIGKILL, the OOM killer, a
 * power loss, the Docker engine gone so nothing can be put back) leaves the store holding
 * neither the backup's data nor its own, and running: before this journal nothing said so, and
 * the next `backup create` recorded that half-restored data as a good backup.
 *
 * So before a service's data is touched, a marker naming the backup, the restore point and the
 * container is written and fsynced here; it is removed once the service holds the backup's
 * data or its restore point's again. What is left names a store in an unknown state: `backup
 * list`, `create` and `restore` say so with the command that finishes it, and `backup create`
 * does not back that store up as if it were whole.
 */
const JOURNAL_DIR = '.stackvault-restoring';

export interface RestoreMarker {
  containerId: string;
  container: string;
  /** The service's name in the backup being restored. */
  service: string;
  backupId: string;
  restorePointId: string;
  /** The service's name in the restore point (restore points name services by container). */
  restorePointService: string;
  since: string;
  pid: number;
  host: string;
  /** Restoring the backup; putting the restore point back after a failure; or that failed too. */
  phase: 'restoring' | 'putting back' | 'failed';
}

/** Written and fsynced before the store is touched (marker-dir.ts). */
export const writeRestoreMarker = (dir: string, marker: RestoreMarker): Promise<void> => writeMarkerFile(dir, JOURNAL_DIR, marker);

export const clearRestoreMarker = (dir: string, containerId: string): Promise<void> => clearMarkerFile(dir, JOURNAL_DIR, containerId);

const isMarker = (m: unknown): m is RestoreMarker => {
  const r = m as Partial<RestoreMarker> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    ['containerId', 'container', 'service', 'backupId', 'restorePointId', 'restorePointService', 'since', 'host', 'phase'].every((k) => typeof r[k as keyof RestoreMarker] === 'string') &&
    typeof r.pid === 'number' &&
    /^[0-9a-f]{12,64}$/.test(r.containerId ?? '')
  );
};

/** Every readable marker (files that are not one, or not named after their container, are skipped: they name nothing to finish). */
const readMarkers = (dir: string): Promise<RestoreMarker[]> => readMarkerFiles(dir, JOURNAL_DIR, (m, name): m is RestoreMarker => isMarker(m) && name === `${m.containerId}.json`);

/** Whether any marker is there at all (read without asking Docker). */
export const anyRestoreMarker = (dir: string): Promise<boolean> => anyMarkerFile(dir, JOURNAL_DIR);

/**
 * Stores a restore left half done: markers of runs that are gone (or of this run, for a
 * service whose rollback failed), whose container still exists. A marker of a run still going
 * on this host is no leftover (`backup list` runs beside a restore), and one whose container is
 * gone names nothing any more: it is removed when `clear` (the caller holds the lock).
 * Without an engine (Docker down) every marker counts: the data's state does not depend on it.
 */
export async function leftHalfRestored(dir: string, engine: DockerEngine | undefined, options: { clear: boolean }): Promise<RestoreMarker[]> {
  const left: RestoreMarker[] = [];
  for (const m of await readMarkers(dir)) {
    if (m.pid !== process.pid && m.host === hostname() && processAlive(m.pid) && m.phase !== 'failed') continue;
    const present = engine ? await inspectIfPresent(engine, m.containerId).then(Boolean, () => true) : true;
    if (present) left.push(m);
    else if (options.clear) await clearRestoreMarker(dir, m.containerId);
  }
  return left;
}

/** The command that puts a service back on its restore point. */
export const putBackCommand = (m: Pick<RestoreMarker, 'restorePointId' | 'restorePointService'>) =>
  `./bot.sh backup restore ${shellWord(m.restorePointId)} --only ${shellWord(m.restorePointService)} --yes`;

/** One warning per store: what was going on, what its data may be, how to finish. */
export function halfRestoredWarnings(dir: string, markers: RestoreMarker[]): string[] {
  return markers.map((m) => {
    const who = `${m.service} (container ${m.container})`;
    const what =
      m.phase === 'failed'
        ? `A restore of ${m.backupId} into ${who} failed and putting back its restore point failed too`
        : m.phase === 'putting back'
          ? `An interrupted stackvault run (pid ${m.pid}) was putting ${who} back on its restore point, after its restore of ${m.backupId} failed or was interrupted, and did not finish`
          : `An interrupted stackvault run (pid ${m.pid}) was restoring ${m.backupId} into ${who}, and did not finish`;
    return `${what}: its data may be neither the backup's nor what it held before. Put it back as it was with: ${putBackCommand(m)} (or restore ${m.backupId} again); to keep its data as it is now, remove ${markerFile(dir, JOURNAL_DIR, m.containerId)}.`;
  });
}
