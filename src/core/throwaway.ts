import type { DockerEngine } from '../docker/engine.js';
import { runOwnerLabels } from '../docker/helper-owner.js';
import type { ThrowawaySpec } from '../drivers/types.js';

/**
 * Starts a throwaway server (a verification target, a drill's copy) from `image`: owned by this
 * run (a later run removes it if this one is killed), and reachable by no other container, since
 * it holds a backup's data, often without the production's password. It has no network at all,
 * unless its driver reads it over the network from this host (then an internal one of its own,
 * removed with it). Returns its id; remove it with `removeOwnContainer`.
 */
export function startThrowaway(engine: DockerEngine, image: string, name: string, spec: ThrowawaySpec, labels: Record<string, string>): Promise<string> {
  const { readOverNetwork, ...container } = spec;
  return engine.runDetached({
    image,
    name,
    ...container,
    labels: { ...spec.labels, ...labels, ...runOwnerLabels() },
    ...(readOverNetwork ? { ownInternalNetwork: true } : { noNetwork: true }),
  });
}
