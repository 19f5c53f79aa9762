import { inspectIfPresent, type ContainerDetails, type DockerEngine } from '../docker/engine.js';
import { booleanLabel, unknownLabelWarnings } from '../docker/labels.js';
import type { Driver, Peer } from '../drivers/types.js';
import { notFound, StackvaultError } from '../errors.js';
import { mapLimit } from '../util/limit.js';
import { assignServiceKeys, type ExcludedContainer, isExcluded, isOneOff, LABELS, narrowToServices, selectDriver, type Candidate } from './selection.js';

export interface DiscoveryOptions {
  project?: string;
  only?: string[];
  /** Projects whose app containers count even when no datastore runs there (a restore's projects). */
  alsoProjects?: readonly string[];
  /**
   * Told what the user should see about labels: an unknown `stackvault.*` key (on any container
   * listed, whatever its project), a container left out because its labels are invalid.
   */
  warn?: (message: string) => void;
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
  /**
   * In a run over every project: datastore servers (by what a driver recognises) whose labels
   * cannot be read (`stackvault.stop=yes`, an unknown driver), with why. Recorded as skipped, so
   * the run is partial: a typo in a label never leaves a store out of a ✅ backup.
   */
  unreadable: Array<Candidate & { why: string }>;
  /** Containers of the backed-up projects that hold nothing to back up, or were excluded. */
  leftOut: LeftOut[];
  /** Containers labelled stackvault.exclude=true, so that --only and a restore can say so when they name one. */
  excluded: ExcludedContainer[];
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
  const serviceOf = (c: ContainerDetails) => c.labels[LABELS.composeService];
  const matched: Array<{ container: ContainerDetails; driver: Driver }> = [];
  const unmatched: ContainerDetails[] = [];
  const oneOffs: ContainerDetails[] = [];
  const excluded: ContainerDetails[] = [];
  // Containers whose labels are invalid (an unknown driver, a boolean that is not true or false):
  // the run stops for one it needs, and leaves out with a warning one it does not.
  const refused: Array<{ container: ContainerDetails; error: StackvaultError }> = [];
  const kind = new Map<string, 'helper' | 'oneoff' | 'refused'>();
  for (const container of containers) {
    // `docker compose run` copies the service's labels: its one-offs would repeat its warnings.
    if (isOneOff(container)) {
      oneOffs.push(container);
      kind.set(container.id, 'oneoff');
      continue;
    }
    for (const w of unknownLabelWarnings(container)) options.warn?.(w);
    try {
      // stackvault's own helpers and throwaways are never looked at.
      if (booleanLabel(container, LABELS.helper)) {
        kind.set(container.id, 'helper');
        continue;
      }
      const driver = selectDriver(container, drivers);
      if (driver) matched.push({ container, driver });
      else if (isExcluded(container)) excluded.push(container);
      else unmatched.push(container);
    } catch (err) {
      if (!(err instanceof StackvaultError)) throw err;
      refused.push({ container, error: err });
      kind.set(container.id, 'refused');
    }
  }
  const projects = new Set([...matched.map((m) => projectOf(m.container)), options.project, ...(options.alsoProjects ?? [])].filter((p): p is string => Boolean(p)));
  const named = (c: ContainerDetails) =>
    options.only?.some(
      (n) => n === c.name || n === serviceOf(c) || (projectOf(c) !== undefined && n === `${projectOf(c)}-${serviceOf(c)}`) || (c.engine !== undefined && n === `${c.name}@${c.engine}`),
    ) ?? false;
  // A container is needed when --only names it, or its project is backed up (or restored): its
  // labels decide what is paused, what is consistent, and what of it is backed up.
  const namedRefused = refused.find(({ container }) => named(container));
  if (namedRefused) throw namedRefused.error;
  const leftOut: LeftOut[] = [];
  const takesLeftovers = drivers.find((d) => d.leftover);
  const peers = (c: ContainerDetails) => peersOf(c, containers, matched, takesLeftovers, kind);
  for (const container of [...unmatched, ...excluded, ...oneOffs]) {
    const project = projectOf(container);
    if (!project || !projects.has(project)) continue;
    const why = excluded.includes(container)
      ? `labelled ${LABELS.exclude}=true`
      : oneOffs.includes(container)
        ? 'a one-off container (docker compose run), not one of the services'
        : takesLeftovers
          ? takesLeftovers.leftover!(container, peers(container))
          : 'no driver takes app containers';
    if (why === undefined) matched.push({ container, driver: takesLeftovers! });
    else leftOut.push({ container: container.name, project, service: serviceOf(container), reason: why });
  }
  const relevant = matched.filter((m) => m.container.state === 'running' || options.project || projects.has(projectOf(m.container) ?? ''));
  // Over every project, a refused container a driver recognises as its server is a store the user
  // has: said as a skipped service, not only a warning (its project has no other store to stop the run).
  const wholeHost = !options.project && !options.only;
  const unreadable = new Map<string, string>();
  for (const { container, error } of wholeHost ? refused : []) {
    const driver = drivers.find((d) => d.recognise?.(container));
    if (!driver || unreadable.has(container.id)) continue;
    unreadable.set(container.id, error.message);
    relevant.push({ container, driver });
  }
  const excludedList: ExcludedContainer[] = excluded.map((c) => ({ name: c.name, project: projectOf(c), service: serviceOf(c) }));
  const keyed = narrowToServices(assignServiceKeys(relevant), options.only, excludedList);
  const candidates = keyed.filter((c) => !unreadable.has(c.container.id));
  const worked = options.only ? new Set([...candidates.map((c) => c.project), options.project, ...(options.alsoProjects ?? [])]) : projects;
  const needed = refused.find(({ container }) => worked.has(projectOf(container) ?? ''));
  if (needed) throw needed.error;
  // With --only a refused container is named or not looked at; else it is left out, and said so.
  for (const { container, error } of refused) {
    const skipped = unreadable.has(container.id); // a skipped service of this run, not left out
    options.warn?.(`${error.message.replace(/\.$/, '')}; it is ${skipped ? 'skipped in' : 'left out of'} this run${error.hint ? ` (${error.hint.replace(/\.$/, '')})` : ''}.`);
    if (skipped) continue;
    leftOut.push({
      container: container.name,
      ...(projectOf(container) ? { project: projectOf(container) } : {}),
      ...(serviceOf(container) ? { service: serviceOf(container) } : {}),
      reason: error.message,
    });
  }
  // The only stores found cannot be read: their labels' sentence, not "nothing found".
  if (candidates.length === 0 && unreadable.size > 0) throw refused.find(({ container }) => unreadable.has(container.id))!.error;
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
    unreadable: keyed.flatMap((c) => {
      const why = unreadable.get(c.container.id);
      return why === undefined ? [] : [{ ...c, why }];
    }),
    leftOut: onlyLeft,
    excluded: excludedList,
    peers: (id) => {
      const c = containers.find((x) => x.id === id);
      return c ? peers(c) : [];
    },
  };
}

/**
 * The other containers of a container's Compose project, with the driver each would get. An
 * excluded container and stackvault's helpers are not peers; a one-off and a container whose
 * labels were refused are, with no driver: nobody backs their mounts up for another.
 */
export function peersOf(
  container: ContainerDetails,
  all: readonly ContainerDetails[],
  matched: ReadonlyArray<{ container: ContainerDetails; driver: Driver }>,
  leftovers: Driver | undefined,
  kind: ReadonlyMap<string, 'helper' | 'oneoff' | 'refused'>,
): Peer[] {
  const project = container.labels[LABELS.composeProject];
  if (!project) return [];
  return all
    .filter((c) => c.id !== container.id && c.labels[LABELS.composeProject] === project && kind.get(c.id) !== 'helper' && (kind.has(c.id) || !isExcluded(c)))
    .map((c) => ({ container: c, driver: matched.find((m) => m.container.id === c.id)?.driver.name ?? (kind.has(c.id) ? '' : (leftovers?.name ?? '')) }));
}
