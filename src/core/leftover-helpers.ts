import { type ContainerSummary, type DockerEngine, isNotFound } from '../docker/engine.js';
import { processAlive } from './lock.js';
import { HELPER_OWNER_LABELS, type RunPlace, runPlace, THROWAWAY_LABELS, THROWAWAY_NAMES } from '../docker/helper-owner.js';

/** What a killed run may leave: a helper (pre-copy listing, which mounts a store's volumes) or a throwaway (verification target, drill copy). */
type Leftover = 'helper' | 'throwaway';

/** The kind of container `c` is when a run of this host that is gone started it; undefined for anything else. */
export function leftoverKind(c: Pick<ContainerSummary, 'labels' | 'name'>, here: RunPlace, alive: (pid: number) => boolean, self = process.pid): Leftover | undefined {
  if (!ownerGone(c.labels, here, alive, self)) return undefined;
  if (c.labels[HELPER_OWNER_LABELS.helper] === 'true' && c.labels[HELPER_OWNER_LABELS.for] !== undefined) return 'helper';
  // Also by the name stackvault gave it: labels alone pass to a container run from an image
  // someone committed of a throwaway, which is theirs (and would go with its volumes).
  if (c.labels[THROWAWAY_LABELS.check] !== undefined && c.name.startsWith(THROWAWAY_NAMES.check)) return 'throwaway';
  if (c.labels[THROWAWAY_LABELS.drill] !== undefined && c.name.startsWith(THROWAWAY_NAMES.drill)) return 'throwaway';
  return undefined;
}

/**
 * Whether `labels` name a stackvault run of this host (`here`) that is no longer alive, and not
 * this one. Labels of an older version carry no pid namespace: the host name decides alone.
 */
export function ownerGone(labels: Record<string, string>, here: RunPlace, alive: (pid: number) => boolean, self = process.pid): boolean {
  const pid = Number(labels[HELPER_OWNER_LABELS.pid]);
  const namespace = labels[HELPER_OWNER_LABELS.pidNamespace];
  if (labels[HELPER_OWNER_LABELS.host] !== here.host || (namespace !== undefined && namespace !== here.pidNamespace)) return false;
  return Number.isInteger(pid) && pid > 0 && pid !== self && !alive(pid);
}

/**
 * Removes helper and throwaway containers left by a run of this host that was killed: a helper
 * would hold the store's volumes mounted for up to 15 minutes, a throwaway server runs (and
 * holds memory and a volume) until someone removes it. Only containers whose run is known to be
 * gone (same host, process not alive) are touched; one of a run still going, here or on another
 * host, is left alone. A throwaway's anonymous volumes go with it; a helper's are the store's.
 * Then the internal networks such runs made for their throwaways and left without one (killed
 * between the two creations). Says how many were removed; run at the start of every command
 * that starts containers.
 */
export async function sweepLeftovers(engine: DockerEngine, warn: (message: string) => void): Promise<void> {
  const here = runPlace();
  const left = (await engine.listContainers({ all: true })).flatMap((c) => {
    const kind = leftoverKind(c, here, processAlive);
    return kind ? [{ id: c.id, kind }] : [];
  });
  const removed = await Promise.all(
    left.map((c) =>
      engine.remove(c.id, { keepVolumes: c.kind === 'helper' }).then(
        () => true,
        () => false,
      ),
    ),
  );
  const count = removed.filter(Boolean).length;
  if (count) warn(`Removed ${count} container${count > 1 ? 's' : ''} (helpers or throwaways) left by a stackvault run that was killed.`);
  const networks = await engine.removeOwnNetworks((labels) => ownerGone(labels, here, processAlive)).catch(() => 0);
  if (networks) warn(`Removed ${networks} network${networks > 1 ? 's' : ''} left by a stackvault run that was killed.`);
}

/**
 * Removes a container this run started, asking again when the engine fails (it does under
 * load: "removal already in progress", a timeout), and warns with a command to run when it
 * still stands, since it would otherwise run on unseen until a later run removes it.
 */
export async function removeOwnContainer(engine: DockerEngine, id: string, name: string, warn: (message: string) => void): Promise<void> {
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await engine.remove(id);
      return;
    } catch (err) {
      if (isNotFound(err)) return;
      last = err;
      await new Promise((r) => setTimeout(r, 1000 * (attempt + 1)));
    }
  }
  warn(`Could not remove the container ${name} that this run started (${last instanceof Error ? last.message : String(last)}); remove it with: docker rm -f -v ${name}`);
}
