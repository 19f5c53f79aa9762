import type { DockerEngine } from '../docker/engine.js';
import { sweepLeftovers } from './leftover-helpers.js';
import { halfRestoredWarnings, leftHalfRestored, type RestoreMarker } from './restore-journal.js';
import { leftStoppedWarning, resumeLeftByKilledRun } from './stopped-markers.js';

/**
 * What a run that holds the lock on `dir` does first about runs killed before it (their
 * process is gone, or they would hold the lock): containers they left paused, or stopped for a
 * copy or a restart, run again; stores they left half restored are warned of; their helper
 * containers and networks are removed. Returns what is left for the caller to judge: the
 * sentence naming containers still stopped (a restore stopped them, so only the user starts
 * them), and the half-restored stores.
 */
export async function afterKilledRuns(dir: string, engine: DockerEngine, warn: (message: string) => void): Promise<{ stillStopped?: string; halfRestored: RestoreMarker[] }> {
  const stillStopped = leftStoppedWarning(await resumeLeftByKilledRun(dir, engine, warn));
  const halfRestored = await leftHalfRestored(dir, engine, { clear: true });
  for (const w of halfRestoredWarnings(dir, halfRestored)) warn(w);
  await sweepLeftovers(engine, warn);
  return { ...(stillStopped ? { stillStopped } : {}), halfRestored };
}
