import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { PgRestoreFilter } from '../../src/drivers/pg-restore-filter.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, PG_SUPERUSER, psql, startPgRegress } from '../support/containers.js';
import { clusterState, fingerprintDifferences, type ClusterState } from '../support/pg-cluster-state.js';
import { lineDifferences } from '../support/pg-dump-normalise.js';
import { runRegressionSuite, type RegressRun } from '../support/pg-regress.js';
import { rawArtifact } from '../support/tamper.js';

/**
 * A restore corpus nobody on this team wrote: PostgreSQL's own regression suite leaves a
 * `regression` database of about 100 MB with every data type, inheritance trees, partitions,
 * domains, rules, large objects, event triggers and more. Back the cluster up, drop that
 * database and add another, restore: the cluster must equal what was backed up, compared as
 * normalised pg_dumpall output and as per-table SQL fingerprints computed here.
 */
describe('PostgreSQL regression database: backup, drop, restore', () => {
  const project = newProjectName('pgregress');
  let pg: StartedTestContainer;
  let dir: string;
  let suite: RegressRun;
  let before: ClusterState;
  let after: ClusterState;
  let backup: Manifest;

  beforeAll(async () => {
    pg = await startPgRegress({ project });
    suite = await runRegressionSuite(pg);
    console.info(
      `regression suite: ${suite.passed} of ${suite.total} tests passed in ${suite.seconds} s${suite.failed.length ? ` (failed: ${suite.failed.join(', ')})` : ''}; regression database ${(suite.databaseBytes / 1e6).toFixed(0)} MB`,
    );
    before = await clusterState(pg);
    dir = await tempDir('pgregress');
    const created = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(created.exitCode, String(created.stderr)).toBe(0);
    backup = JSON.parse(String(created.stdout)) as Manifest;
  }, 900_000); // the suite takes about 35 s on an idle 2-core machine, 3-5 minutes on a busy or slow one

  afterAll(async () => {
    await pg?.stop().catch(() => undefined);
  });

  it('the suite left a large regression database that the backup holds', () => {
    expect(suite.passed).toBeGreaterThan(0);
    expect(suite.databaseBytes).toBeGreaterThan(50e6);
    expect(backup.services.map((s) => [s.name, s.status])).toEqual([['postgres', 'ok']]);
    expect(Object.keys(before.fingerprint).filter((k) => k.startsWith('regression table ')).length).toBeGreaterThan(300);
  });

  it("reads as psql does without \\restrict too: the older psql's stricter reading refuses nothing in this dump", async () => {
    const entry = backup.services[0]!;
    const raw = await rawArtifact(join(dir, backup.id), entry.artifact!);
    for (const major of [13, 14, 17]) {
      await expect(pipeline(Readable.from([raw]), new PgRestoreFilter(PG_SUPERUSER, true, { major }), new Writable({ write: (_c, _e, cb) => cb() }))).resolves.toBeUndefined();
    }
  });

  it('backup restore puts back the dropped database and removes the new one', async () => {
    await psql(pg, 'postgres', 'DROP DATABASE regression');
    await psql(pg, 'postgres', 'CREATE DATABASE made_after_backup');
    await psql(pg, 'made_after_backup', 'CREATE TABLE t AS SELECT 1 AS x');
    const r = await bot(['backup', 'restore', backup.id, '--dir', dir, '--yes']);
    after = await clusterState(pg);
    expect(r.exitCode, `${String(r.stdout)}${String(r.stderr)}`).toBe(0);
    expect(await psql(pg, 'postgres', "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database")).toBe('bot,postgres,regression,template0,template1');
  });

  it('every table, sequence and large object has the content it had (SQL fingerprints)', () => {
    expect(after, 'the restore step did not finish').toBeDefined();
    expect(fingerprintDifferences(before.fingerprint, after.fingerprint)).toEqual([]);
  });

  it('pg_dumpall of the cluster is what it was (normalised: row order, inheritance-child column order)', () => {
    expect(after, 'the restore step did not finish').toBeDefined();
    expect(lineDifferences(before.dump, after.dump)).toEqual({ onlyBefore: [], onlyAfter: [] });
    // Same lines but in another order would still be a difference: say where.
    if (after.dump !== before.dump) {
      const a = before.dump.split('\n');
      const b = after.dump.split('\n');
      const at = a.findIndex((l, i) => l !== b[i]);
      expect(b.slice(at - 3, at + 3), `first difference at normalised line ${at + 1}`).toEqual(a.slice(at - 3, at + 3));
    }
  });
});
