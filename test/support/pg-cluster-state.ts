import type { StartedTestContainer } from 'testcontainers';
import { PG_SUPERUSER, run } from './containers.js';
import { normalisePgDump } from './pg-dump-normalise.js';

/**
 * What a PostgreSQL cluster holds, taken two independent ways, for before/after comparisons of
 * a restore. Nothing here uses stackvault's code.
 */
export interface ClusterState {
  /** `pg_dumpall` output, normalised (pg-dump-normalise.ts); characters are bytes (latin1). */
  dump: string;
  /** `<database> table|sequence|large object <name>` → content fingerprint. */
  fingerprint: Record<string, string>;
}

export async function clusterState(c: StartedTestContainer, superuser = PG_SUPERUSER): Promise<ClusterState> {
  return { dump: normalisePgDump(await pgDumpall(c, superuser)), fingerprint: await fingerprintCluster(c, superuser) };
}

/**
 * `pg_dumpall` of the whole cluster, run inside the container (a host pg_dumpall of another
 * major version would refuse). It travels as base64 so every byte survives, whatever the
 * databases' encodings, and comes back as a latin1 string (one character per byte).
 */
export async function pgDumpall(c: StartedTestContainer, superuser = PG_SUPERUSER): Promise<string> {
  const b64 = await run(c, ['bash', '-o', 'pipefail', '-c', 'pg_dumpall -U "$PGUSER" | base64 -w0'], { PGUSER: superuser });
  return Buffer.from(b64, 'base64').toString('latin1');
}

/**
 * One psql script per database. Output settings are pinned so that only data, not a database's
 * own settings, decides the text that is hashed. Per ordinary table (FROM ONLY, so parents do
 * not count their children's rows): row count and an md5 over the sorted md5s of every row as
 * jsonb (jsonb orders keys, so column order does not matter; COLLATE "C" makes the sort
 * byte-wise). Per sequence: last_value and is_called. Per large object: md5 of its content.
 */
const FINGERPRINT_SQL = String.raw`
SET DateStyle = 'ISO, YMD'; SET IntervalStyle = postgres; SET TimeZone = 'UTC'; SET extra_float_digits = 1;
SET bytea_output = hex; SET lc_monetary = 'C'; SET search_path = pg_catalog;
SELECT format($q$SELECT 'table ' || %L || ' ' || count(*) || ' ' || coalesce(md5(string_agg(h, '' ORDER BY h COLLATE "C")), '-') FROM (SELECT md5(to_jsonb(t)::text) AS h FROM ONLY %I.%I t) s$q$,
              format('%I.%I', n.nspname, c.relname), n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
\gexec
SELECT format($q$SELECT 'sequence ' || %L || ' ' || last_value || ' ' || is_called FROM %I.%I$q$,
              format('%I.%I', n.nspname, c.relname), n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'S' AND n.nspname !~ '^pg_temp_'
\gexec
SELECT 'large object ' || oid || ' ' || md5(lo_get(oid)) FROM pg_largeobject_metadata;
`;

export async function fingerprintCluster(c: StartedTestContainer, superuser = PG_SUPERUSER): Promise<Record<string, string>> {
  const psqlIn = (db: string, script: string) =>
    run(c, ['bash', '-o', 'pipefail', '-c', 'printf "%s\\n" "$SCRIPT" | psql -U "$PGUSER" -d "$1" -v ON_ERROR_STOP=1 -AtXq', 'psql', db], { PGUSER: superuser, SCRIPT: script });
  const dbs = (await psqlIn('postgres', 'SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1')).split('\n').filter(Boolean);
  const result: Record<string, string> = {};
  for (const db of dbs) {
    result[`${db} database`] = 'exists';
    for (const line of (await psqlIn(db, FINGERPRINT_SQL)).split('\n').filter(Boolean)) {
      const cut = line.lastIndexOf(' ', line.lastIndexOf(' ') - 1);
      const [key, value] = /^large object /.test(line) ? [line.slice(0, line.lastIndexOf(' ')), line.slice(line.lastIndexOf(' ') + 1)] : [line.slice(0, cut), line.slice(cut + 1)];
      result[`${db} ${key}`] = value;
    }
  }
  return result;
}

/** Keys whose fingerprints differ, with both values: [] when the states are equal. */
export function fingerprintDifferences(before: Record<string, string>, after: Record<string, string>): string[] {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return keys.filter((k) => before[k] !== after[k]).map((k) => `${k}: ${before[k] ?? '(missing)'} -> ${after[k] ?? '(missing)'}`);
}
