import { inspectIfPresent, type ContainerDetails, type DockerEngine } from '../docker/engine.js';
import type { Driver, Peer } from '../drivers/types.js';
import { notFound } from '../errors.js';
import { mapLimit } from '../util/limit.js';
import { assignServiceKeys, LABELS, narrowToServices, selectDriver, type Candidate } from './selection.js';

export interface DiscoveryOptions {
  project?: string;
  only?: string[];
  /** Projects whose app containers count even when no datastore runs there (a restore's projects). */
  alsoProjects?: readonly string[];
}

/** A container of a backed-up project that is not backed up, and why (shown with --verbose and --json). */
export interface LeftOut {
  container: string;
  project?: string;
  service?: string;
  reason: string;
}

export interface Discovery {
  /** Running containers to back up. */
  running: Candidate[];
  /** Containers of the same projects that are not running: recorded as skipped. */
  notRunning: Candidate[];
  /** Containers of the backed-up projects that hold nothing to back up, or were excluded. */
  leftOut: LeftOut[];
  /** The other containers of a candidate's Compose project, with their drivers. */
  peers(containerId: string): Peer[];
}

/**
 * Finds what to back up. Each container is looked at (inspected), and a driver recognises it
 * as its server from what it holds; the app containers of every Compose project that has a
 * datastore (or that was named with --project) are backed up too, by the driver that takes
 * leftovers (their volumes and data mounts), or listed as left out with the reason. Stopped
 * containers count only in such projects, so old containers elsewhere do not clutter the manifest.
 */
export async function discover(engine: DockerEngine, drivers: readonly Driver[], options: DiscoveryOptions): Promise<Discovery> {
  const listed = (await engine.listContainers({ all: true })).filter((c) => !options.project || c.labels[LABELS.composeProject] === options.project);
  // A container removed between the listing and its inspection (a helper of another run that
  // ended, a test's container) is simply not there.
  const inspected = await mapLimit(listed, 8, (c) => inspectIfPresent(engine, c.id));
  const containers = inspected.filter((c): c is ContainerDetails => c !== undefined);
  const projectOf = (c: ContainerDetails) => c.labels[LABELS.composeProject];
  const matched: Array<{ container: ContainerDetails; driver: Driver }> = [];
  const unmatched: ContainerDetails[] = [];
  for (const container of containers) {
    const driver = selectDriver(container, drivers);
    if (driver) matched.push({ container, driver });
    else unmatched.push(container);
  }
  const projects = new Set([...matched.map((m) => projectOf(m.container)), options.project, ...(options.alsoProjects ?? [])].filter((p): p is string => Boolean(p)));
  const leftOut: LeftOut[] = [];
  const takesLeftovers = drivers.find((d) => d.leftover);
  for (const container of unmatched) {
    const project = projectOf(container);
    if (!project || !projects.has(project) || container.labels[LABELS.helper] === 'true') continue;
    const why =
      container.labels[LABELS.exclude] === 'true'
        ? `labelled ${LABELS.exclude}=true`
        : takesLeftovers
          ? takesLeftovers.leftover!(container, peersOf(container, containers, matched, takesLeftovers))
          : 'no driver takes app containers';
    if (why === undefined) matched.push({ container, driver: takesLeftovers! });
    else leftOut.push({ container: container.name, project, service: container.labels[LABELS.composeService], reason: why });
  }
  const relevant = matched.filter((m) => m.container.state === 'running' || options.project || projects.has(projectOf(m.container) ?? ''));
  const candidates = narrowToServices(assignServiceKeys(relevant), options.only);
  if (candidates.length === 0) {
    const scope = options.project ? ` in Compose project '${options.project}'` : '';
    throw notFound(
      `No datastore containers found${scope}: looked for servers of ${drivers
        .filter((d) => d.recognise)
        .map((d) => d.name)
        .join(', ')} (by image, environment and command) and for containers labelled ${LABELS.driver} or ${drivers.flatMap((d) => (d.claimedByLabel ? [d.claimedByLabel] : [])).join(', ')}.`,
      `Label a container to include it, e.g. --label ${LABELS.driver}=${drivers[0]?.name ?? 'NAME'}.`,
    );
  }
  const onlyLeft = options.only ? [] : leftOut;
  return {
    running: candidates.filter((c) => c.container.state === 'running'),
    notRunning: candidates.filter((c) => c.container.state !== 'running'),
    leftOut: onlyLeft,
    peers: (id) => {
      const c = containers.find((x) => x.id === id);
      return c ? peersOf(c, containers, matched, takesLeftovers) : [];
    },
  };
}

/** The other containers of a container's Compose project, with the driver each would get. */
export function peersOf(container: ContainerDetails, all: readonly ContainerDetails[], matched: ReadonlyArray<{ container: ContainerDetails; driver: Driver }>, leftovers?: Driver): Peer[] {
  const project = container.labels[LABELS.composeProject];
  if (!project) return [];
  return all
    .filter((c) => c.id !== container.id && c.labels[LABELS.composeProject] === project && c.labels[LABELS.exclude] !== 'true' && c.labels[LABELS.helper] !== 'true')
    .map((c) => ({ container: c, driver: matched.find((m) => m.container.id === c.id)?.driver.name ?? leftovers?.name ?? '' }));
}
