import { usageError } from '../errors.js';

/** `--stop-timeout SECONDS`: a whole number, or undefined for each container's own timeout. */
export function parseStopTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw usageError(`--stop-timeout must be a whole number of seconds, not '${value}'.`);
  return n;
}

/**
 * A count flag or argument: a whole number of at least 1 (undefined stays undefined), written in
 * decimal digits only: Number() would take `0x1E` as 30, `1e3` as 1000 and `0b11` as 3.
 */
export function wholeNumber(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw usageError(`${flag} must be a whole number of at least 1, not '${value}'.`);
  return n;
}

/** `--map postgres=clone-db-1 --map redis=…` into a record; a value without `=` is a usage error. */
export function parseMap(values: string[] | undefined): Record<string, string> | undefined {
  if (!values?.length) return undefined;
  const map: Record<string, string> = {};
  for (const v of values.flatMap((x) => x.split(','))) {
    const i = v.indexOf('=');
    if (i <= 0 || i === v.length - 1) throw usageError(`--map takes SERVICE=CONTAINER, not '${v}'.`);
    map[v.slice(0, i)] = v.slice(i + 1);
  }
  return map;
}
