/**
 * A fix that came out in a patch release of every maintained series at once (one security fix,
 * backported): `table` maps each series ('13', '10.11') to its first patch release with the fix.
 */
export type FirstFixedPatch = Readonly<Record<string, number>>;

/**
 * Whether `version` (its series' numbers, then its patch: [13, 22], [10, 11, 8]) has the fix of
 * `table`. A listed series has it from its first fixed patch on. A series not listed has it when
 * it came after every listed one (it began with the fix), and not when it came before or between
 * them (it ended before the fix).
 */
export function atLeastPatchInSeries(version: readonly number[], table: FirstFixedPatch): boolean {
  const series = version.slice(0, -1);
  const patch = version.at(-1);
  if (series.length === 0 || patch === undefined || !version.every(Number.isSafeInteger)) return false;
  const since = table[series.join('.')];
  if (since !== undefined) return patch >= since;
  return Object.keys(table).every((listed) => compareSeries(series, listed.split('.').map(Number)) > 0);
}

/** The first fixed release of each listed series as "<series>.<patch>", newest series first. */
export function firstFixedReleases(table: FirstFixedPatch): string[] {
  return Object.entries(table)
    .sort(([a], [b]) => compareSeries(b.split('.').map(Number), a.split('.').map(Number)))
    .map(([series, patch]) => `${series}.${patch}`);
}

function compareSeries(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
