import type { Manifest } from './manifest.js';

/**
 * The order services start in, when there are more of them than lanes (`--parallel`): the
 * longest first, as a scheduler of jobs on fewer machines does (LPT), so that the last lane
 * to start is a short one and the run ends with its slowest store, not after it. "Longest" is
 * how long the service took in the newest backup that has it; a service no backup has yet
 * comes first (it may be the big one), and ties keep discovery's order.
 *
 * The benchmark's stack has five stores and four lanes by default: Redis, discovered last,
 * waited for Postgres's lane (the longest) to finish before it started.
 */
export function longestFirst<T>(items: readonly T[], serviceOf: (item: T) => string, lastDurationMs: ReadonlyMap<string, number>): T[] {
  const expected = (item: T) => lastDurationMs.get(serviceOf(item)) ?? Number.POSITIVE_INFINITY;
  return items
    .map((item, at) => ({ item, at, ms: expected(item) }))
    .sort((a, b) => (a.ms === b.ms ? a.at - b.at : b.ms - a.ms))
    .map((x) => x.item);
}

/** Each service's duration in the newest backup (of `newestFirst` manifests) that backed it up. */
export function lastDurations(newestFirst: readonly Pick<Manifest, 'services'>[]): Map<string, number> {
  const found = new Map<string, number>();
  for (const m of newestFirst) {
    for (const s of m.services) if (s.status === 'ok' && !found.has(s.name)) found.set(s.name, s.durationMs);
  }
  return found;
}
