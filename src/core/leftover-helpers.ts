import { hostname } from 'node:os';
import type { DockerEngine } from '../docker/engine.js';
import { processAlive } from './lock.js';
import { HELPER_OWNER_LABELS } from '../docker/helper-owner.js';

/**
 * Removes helper containers (pre-copy listings) left by a run of this host that was killed:
 * they would otherwise hold the store's volumes mounted for up to 15 minutes. Only helpers whose
 * run is known to be gone (same host, process not alive) are touched; one of a run still going,
 * here or on another host, is left alone. Returns how many were removed.
 */
export async function removeLeftoverHelpers(engine: DockerEngine): Promise<number> {
  const here = hostname();
  const left = (await engine.listContainers({ all: true })).filter((c) => {
    const pid = Number(c.labels[HELPER_OWNER_LABELS.pid]);
    return (
      c.labels[HELPER_OWNER_LABELS.helper] === 'true' &&
      c.labels[HELPER_OWNER_LABELS.for] !== undefined &&
      c.labels[HELPER_OWNER_LABELS.host] === here &&
      Number.isInteger(pid) &&
      pid > 0 &&
      pid !== process.pid &&
      !processAlive(pid)
    );
  });
  const removed = await Promise.all(
    left.map((c) =>
      engine.remove(c.id, { keepVolumes: true }).then(
        () => true,
        () => false,
      ),
    ),
  );
  return removed.filter(Boolean).length;
}
