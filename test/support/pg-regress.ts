import type { StartedTestContainer } from 'testcontainers';
import { PG_SUPERUSER, psql } from './containers.js';

/** Where the pg-regress image keeps the built suite (compose/images/pg-regress/Dockerfile). */
export const REGRESS_DIR = '/regress/tree/src/test/regress';
/** The installed server's programs: the suite runs psql from here, against that server. */
export const PG_BINDIR = '/usr/lib/postgresql/17/bin';

export interface RegressRun {
  total: number;
  passed: number;
  /** Names of the tests whose output differed from the expected one (locale, settings, ...). */
  failed: string[];
  seconds: number;
  /** Size of the `regression` database it left, in bytes. */
  databaseBytes: number;
}

/**
 * Runs PostgreSQL's regression suite (`make installcheck-parallel`) against the server of a
 * started pg-regress container (startPgRegress), as the postgres OS user and as the cluster's
 * superuser over the local socket. It leaves the `regression` database behind (about 100 MB),
 * which is what tests want: data and schema objects nobody on this team wrote.
 *
 * Failed regress tests are fine (their output depends on locale and settings) and are only
 * reported; a suite that did not run, or left no `regression` database, throws.
 */
export async function runRegressionSuite(c: StartedTestContainer, superuser = PG_SUPERUSER): Promise<RegressRun> {
  const started = Date.now();
  const r = await c.exec(['make', '-s', 'installcheck-parallel', `bindir=${PG_BINDIR}`], {
    user: 'postgres',
    workingDir: REGRESS_DIR,
    env: { PGUSER: superuser },
  });
  const out = r.output;
  const passed = (out.match(/^ok \d+ /gm) ?? []).length;
  const failed = [...out.matchAll(/^not ok \d+\s+[+-]?\s*(\S+)/gm)].map((m) => m[1]!);
  // The plan is `1..N`, or `# 1..N` when some tests failed (pg_regress then prints it as a comment).
  const total = Number(/^(?:# )?1\.\.(\d+)$/m.exec(out)?.[1] ?? 0);
  if (total === 0 || passed + failed.length !== total) {
    throw new Error(`the regression suite did not run (make exited ${r.exitCode}, ${passed} ok, ${failed.length} not ok, plan ${total}): ${out.trim().split('\n').slice(-15).join('\n')}`);
  }
  const size = await psql(c, 'postgres', "SELECT pg_database_size(datname) FROM pg_database WHERE datname = 'regression'");
  if (!size) throw new Error('the regression suite ran but left no regression database');
  return { total, passed, failed, seconds: Math.round((Date.now() - started) / 1000), databaseBytes: Number(size) };
}
