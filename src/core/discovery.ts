import type { DockerEngine } from '../docker/engine.js';
import type { Driver } from '../drivers/types.js';
import { notFound } from '../errors.js';
import { assignServiceKeys, LABELS, narrowToServices, selectDriver, type Candidate } from './selection.js';

export interface DiscoveryOptions {
  project?: string;
  only?: string[];
}

export interface Discovery {
  /** Running datastore containers to back up. */
  running: Candidate[];
  /** Datastore containers of the same projects that are not running: recorded as skipped. */
  notRunning: Candidate[];
}

/**
 * Finds the datastore containers. Stopped containers count only when they belong to a
 * Compose project that is being backed up (or was named with --project), so old containers
 * elsewhere on the host do not clutter the manifest.
 */
export async function discover(engine: DockerEngine, drivers: readonly Driver[], options: DiscoveryOptions): Promise<Discovery> {
  const all = await engine.listContainers({ all: true });
  const matched = all
    .filter((c) => !options.project || c.labels[LABELS.composeProject] === options.project)
    .flatMap((container) => {
      const driver = selectDriver(container, drivers);
      return driver ? [{ container, driver }] : [];
    });
  const runningProjects = new Set(matched.filter((m) => m.container.state === 'running').map((m) => m.container.labels[LABELS.composeProject]).filter(Boolean));
  const relevant = matched.filter(
    (m) => m.container.state === 'running' || options.project || runningProjects.has(m.container.labels[LABELS.composeProject]),
  );
  const candidates = narrowToServices(assignServiceKeys(relevant), options.only);
  if (candidates.length === 0) {
    const scope = options.project ? ` in Compose project '${options.project}'` : '';
    throw notFound(
      `No datastore containers found${scope}: looked for images named ${drivers.flatMap((d) => d.imageNames).join(', ')} and for containers labelled ${LABELS.driver} or ${LABELS.sqlitePaths}.`,
      `Label a container to include it, e.g. --label ${LABELS.driver}=postgres, or --label ${LABELS.sqlitePaths}=/data/app.db for SQLite files.`,
    );
  }
  return {
    running: candidates.filter((c) => c.container.state === 'running'),
    notRunning: candidates.filter((c) => c.container.state !== 'running'),
  };
}
