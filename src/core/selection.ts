import type { ContainerSummary } from '../docker/engine.js';
import type { Recognisable } from '../drivers/recognise.js';
export { imageRepoName } from '../drivers/recognise.js';
import type { Driver, DriverName } from '../drivers/types.js';
import { booleanLabel, checkBooleanLabels } from '../docker/labels.js';
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
  /** `docker compose run`'s containers: a command run once, not one of the project's services. */
  composeOneOff: 'com.docker.compose.oneoff',
} as const;

/** A container `docker compose run` made (Compose writes `True`, v1 and v2 alike). */
export const isOneOff = (c: { labels: Record<string, string> }): boolean => c.labels[LABELS.composeOneOff]?.trim().toLowerCase() === 'true';

/** Labelled stackvault.exclude=true (any case); a value other than true or false throws. */
export const isExcluded = (c: { name: string; labels: Record<string, string> }): boolean => booleanLabel(c, LABELS.exclude) === true;

/**
 * The driver for a container: the `stackvault.driver` label wins, then a label a driver claims
 * (the SQLite paths label), then the first driver that recognises the container as its server (exact image name, the
 * official image's environment, the server program). Undefined when it is not a datastore or
 * is excluded. Throws a usage error for an unknown driver, or a boolean label that is neither
 * true nor false, of a container that is not excluded.
 */
export function selectDriver(container: Recognisable, drivers: readonly Driver[]): Driver | undefined {
  const labels = container.labels;
  if (isExcluded(container)) return undefined;
  checkBooleanLabels(container);
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

/**
 * Service keys: the Compose service, else the container name; qualified when they clash (by
 * project, then engine, then container number). Project and service names may both hold `-`
 * (project shop with service redis, and a service named shop-redis), so a qualified key can equal
 * another: such keys get the container's short id, and `-2`, `-3`, ... until every key is
 * unique. Keys that the qualifying alone made unique are kept as they are: backups are
 * restored by them.
 */
export function assignServiceKeys(items: ReadonlyArray<{ container: ContainerSummary; driver: Driver }>): Candidate[] {
  const base = items.map(({ container, driver }) => ({
    container,
    driver,
    project: container.labels[LABELS.composeProject],
    // An empty service label names nothing: the manifest refuses an empty name.
    service: container.labels[LABELS.composeService] || container.name,
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
  const keys = base.map((c) => {
    const service = withEngine(c);
    return byEngine.get(service)! > 1 ? `${service}-${c.container.labels[LABELS.composeNumber] ?? c.container.id.slice(0, 12)}` : service;
  });
  const uses = new Map<string, number>();
  for (const k of keys) uses.set(k, (uses.get(k) ?? 0) + 1);
  const taken = new Set(keys.filter((k) => uses.get(k) === 1));
  const clashing = keys
    .map((_key, i) => i)
    .filter((i) => uses.get(keys[i]!)! > 1)
    .sort((a, b) => keys[a]!.localeCompare(keys[b]!) || (base[a]!.container.engine ?? '').localeCompare(base[b]!.container.engine ?? '') || base[a]!.container.id.localeCompare(base[b]!.container.id));
  for (const i of clashing) {
    const stem = `${keys[i]}-${base[i]!.container.id.slice(0, 12)}`;
    let key = stem;
    for (let n = 2; taken.has(key); n++) key = `${stem}-${n}`;
    taken.add(key);
    keys[i] = key;
  }
  return base.map((c, i) => ({ ...c, service: keys[i]! })).sort((a, b) => a.service.localeCompare(b.service));
}

/** A container left out by its label stackvault.exclude=true, as --only and a restore may name it. */
export interface ExcludedContainer {
  name: string;
  project?: string;
  service?: string;
}

/** The excluded container `name` names (its container name, Compose service, or project-service). */
export function excludedNamed(excluded: readonly ExcludedContainer[], name: string): ExcludedContainer | undefined {
  return excluded.find((e) => e.name === name || e.service === name || (e.project !== undefined && e.service !== undefined && `${e.project}-${e.service}` === name));
}

export const excludedSentence = (e: ExcludedContainer): string => `${e.service !== undefined && e.service !== e.name ? `${e.service} (${e.name})` : e.name} is labelled ${LABELS.exclude}=true`;

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

/** Keeps the candidates named by --only; every name must match one (an excluded container is named as such). */
export function narrowToServices(candidates: Candidate[], only: string[] | undefined, excluded: readonly ExcludedContainer[] = []): Candidate[] {
  if (!only) return candidates;
  // A container is named by its name, or name@engine where the same name runs on several engines.
  const names = (c: Candidate) => [c.service, c.container.name, ...(c.container.engine ? [`${c.container.name}@${c.container.engine}`] : [])];
  const unknown = only.filter((name) => !candidates.some((c) => names(c).includes(name)));
  const known = candidates.map((c) => c.service).join(', ') || '(none)';
  const excludedOne = unknown.map((name) => excludedNamed(excluded, name)).find((e) => e !== undefined);
  if (excludedOne) {
    throw notFound(`--only names '${unknown.find((n) => excludedNamed(excluded, n) === excludedOne)}', but ${excludedSentence(excludedOne)}, so it is never backed up.`, `Services found: ${known}.`);
  }
  if (unknown.length > 0) {
    throw notFound(`--only names ${unknown.map((u) => `'${u}'`).join(', ')}, which ${unknown.length > 1 ? 'are not services' : 'is not a service'} found here.`, `Services found: ${known}.`);
  }
  return candidates.filter((c) => names(c).some((n) => only.includes(n)));
}

export type { DriverName };
