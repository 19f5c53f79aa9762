import type { StartedTestContainer } from 'testcontainers';
import { psql } from './containers.js';

/**
 * md5 per table over the sorted md5 of each row's text (computed by the server, in the
 * database's own encoding), and md5 of each large object. Independent of stackvault's code.
 */
export async function independentFingerprint(pg: StartedTestContainer): Promise<string> {
  const lines: string[] = [];
  const dbs = (await psql(pg, 'postgres', 'SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1')).split('\n');
  for (const db of dbs) {
    // Names may hold line breaks: listed as the hex of their UTF-8 bytes, one a line.
    const tables = (
      await psql(pg, db, "SELECT encode(convert_to(format('%I.%I', schemaname, tablename), 'UTF8'), 'hex') FROM pg_tables WHERE schemaname NOT IN ('pg_catalog','information_schema') ORDER BY 1")
    )
      .split('\n')
      .filter(Boolean)
      .map((hex) => Buffer.from(hex, 'hex').toString('utf8'));
    for (const t of tables) {
      lines.push(`${db} ${t} ${await psql(pg, db, `SELECT count(*) || ' ' || coalesce(md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))), '-') FROM ${t} x`)}`);
    }
    lines.push(`${db} lo ${await psql(pg, db, "SELECT coalesce(string_agg(oid::text || ':' || md5(lo_get(oid)), ',' ORDER BY oid), '-') FROM pg_largeobject_metadata")}`);
  }
  return lines.join('\n');
}
