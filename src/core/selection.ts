import type { ContainerSummary } from '../docker/engine.js';
import type { Recognisable } from '../drivers/recognise.js';
export { imageRepoName } from '../drivers/recognise.js';
import type { Driver, DriverName } from '../drivers/types.js';
import { notFound, usageError } from '../errors.js';

export const LABELS = {
  driver: 'stackvault.driver',
  exclude: 'stackvault.exclude',
  /** Set on stackvault's own short-lived helper containers. */
  helper: 'stackvault.helper',
  /** On any container of a project: its backups are consistent (`--consistent`) by default. */
  consistent: 'stackvault.consistent',
  /** The containers paused for a consistent backup's window, when any is labelled (else every app container). */
  writer: 'stackvault.writer',
  composeProject: 'com.docker.compose.project',
  composeService: 'com.docker.compose.service',
  composeNumber: 'com.docker.compose.container-number',
} as const;

/**
 * The driver for a container: the `stackvault.driver` label wins, then a label a driver claims
 * (the SQLite paths label), then the first driver that recognises the container as its server (exact image name, the
 * official image's environment, the server program). Undefined when it is not a datastore.
 */
export function selectDriver(container: Recognisable, drivers: readonly Driver[]): Driver | undefined {
  const labels = container.labels;
  if (labels[LABELS.exclude] === 'true') return undefined;
  const explicit = labels[LABELS.driver];
  if (explicit) {
    const driver = drivers.find((d) => d.name === explicit);
    if (!driver) {
      throw usageError(`Container ${container.name} has label ${LABELS.driver}=${explicit}, which is not a known driver.`, `Known drivers: ${drivers.map((d) => d.name).join(', ')}.`);
    }
    return driver;
  }
  const claimed = drivers.find((d) => d.claimedByLabel && labels[d.claimedByLabel]);
  if (claimed) return claimed;
  return drivers.find((d) => d.recognise?.(container));
}

export interface Candidate {
  container: ContainerSummary;
  driver: Driver;
  project?: string;
  service: string;
}

/** Service keys: the Compose service, else the container name; made unique when they clash. */
export function assignServiceKeys(items: ReadonlyArray<{ container: ContainerSummary; driver: Driver }>): Candidate[] {
  const base = items.map(({ container, driver }) => ({
    container,
    driver,
    project: container.labels[LABELS.composeProject],
    service: container.labels[LABELS.composeService] ?? container.name,
  }));
  const count = (key: (c: (typeof base)[number]) => string) => {
    const m = new Map<string, number>();
    for (const c of base) m.set(key(c), (m.get(key(c)) ?? 0) + 1);
    return m;
  };
  const byService = count((c) => c.service);
  const withProject = (c: (typeof base)[number]) => (c.project && byService.get(c.service)! > 1 ? `${c.project}-${c.service}` : c.service);
  const byQualified = count(withProject);
  // The same service on several engines (--host): named after its engine.
  const withEngine = (c: (typeof base)[number]) => (c.container.engine && byQualified.get(withProject(c))! > 1 ? `${withProject(c)}@${c.container.engine}` : withProject(c));
  const byEngine = count(withEngine);
  return base
    .map((c) => {
      let service = withEngine(c);
      if (byEngine.get(service)! > 1) service = `${service}-${c.container.labels[LABELS.composeNumber] ?? c.container.id.slice(0, 12)}`;
      return { ...c, service };
    })
    .sort((a, b) => a.service.localeCompare(b.service));
}

/** Parses `--only a,b` into a set; empty entries are ignored. */
export function parseServiceList(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw usageError('--only needs at least one service name.');
  return [...new Set(names)];
}

/** Keeps the candidates named by --only; every name must match one. */
export function narrowToServices(candidates: Candidate[], only: string[] | undefined): Candidate[] {
  if (!only) return candidates;
  // A container is named by its name, or name@engine where the same name runs on several engines.
  const names = (c: Candidate) => [c.service, c.container.name, ...(c.container.engine ? [`${c.container.name}@${c.container.engine}`] : [])];
  const unknown = only.filter((name) => !candidates.some((c) => names(c).includes(name)));
  if (unknown.length > 0) {
    const known = candidates.map((c) => c.service).join(', ') || '(none)';
    throw notFound(`--only names ${unknown.map((u) => `'${u}'`).join(', ')}, which ${unknown.length > 1 ? 'are not services' : 'is not a service'} found here.`, `Services found: ${known}.`);
  }
  return candidates.filter((c) => names(c).some((n) => only.includes(n)));
}

export type { DriverName };
