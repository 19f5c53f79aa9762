import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerodeEngine } from '../../src/docker/dockerode-engine.js';
import { REPO_ROOT } from '../support/cli.js';
import { newProjectName, psql, startPostgres } from '../support/containers.js';
import { backupContextFor } from '../support/driver-context.js';

// The built driver (test.sh builds dist/ first): its fingerprint runs on a worker thread, which loads compiled files.
const { postgresDriver } = (await import(join(REPO_ROOT, 'dist/drivers/postgres.js'))) as typeof import('../../src/drivers/postgres.js');

/**
 * A consistent backup's Postgres point (drivers/postgres.ts prepareSnapshot) around what its
 * per-database sessions cannot hold: a database created after they opened, and roles, which
 * pg_dumpall reads without a snapshot. Driven step by step, so the change lands exactly
 * between getting ready and the window. (Only from template0: the session that holds
 * template1's point keeps CREATE DATABASE from copying template1 until template1 is dumped.)
 */
describe('Postgres snapshot point: databases and roles that change around the window', () => {
  let pg: StartedTestContainer;
  const engine = new DockerodeEngine();
  beforeAll(async () => {
    pg = await startPostgres({ project: newProjectName('pgsnap') });
  });
  afterAll(async () => {
    await pg?.stop();
  });

  /** Prepares, runs `between`, fixes the point, runs `after`, and dumps; returns the dump's text and outcome. */
  const snapshotAround = async (between: () => Promise<unknown>, after: () => Promise<unknown> = async () => undefined) => {
    const output = new PassThrough();
    const chunks: Buffer[] = [];
    output.on('data', (c: Buffer) => chunks.push(c));
    const ctx = await backupContextFor(engine, pg.getId(), output);
    const snapshot = await postgresDriver.prepareSnapshot!(ctx);
    try {
      await between();
      await snapshot.fix();
      await after();
      const outcome = await snapshot.backup(output);
      output.end();
      return { dump: Buffer.concat(chunks).toString('utf8'), outcome };
    } finally {
      await snapshot.release();
    }
  };

  it('a database created after the sessions opened fails the service instead of being left out; one created after the window is not in it', async () => {
    await expect(snapshotAround(() => psql(pg, 'postgres', 'CREATE DATABASE "late arrival" TEMPLATE template0'))).rejects.toThrow(
      /the database "late arrival" was created while the backup got ready.*run the backup again/,
    );
    const { dump, outcome } = await snapshotAround(
      async () => undefined,
      () => psql(pg, 'postgres', 'CREATE DATABASE after_the_point TEMPLATE template0'),
    );
    expect(dump).toContain('CREATE DATABASE "late arrival" WITH TEMPLATE = template0');
    expect(dump).not.toContain('after_the_point');
    expect(outcome.warnings).toBeUndefined();
  });

  it('roles changed around the window are said in a warning; unchanged roles give none', async () => {
    const quiet = await snapshotAround(async () => undefined);
    expect(quiet.outcome.warnings).toBeUndefined();
    const changed = await snapshotAround(() => psql(pg, 'postgres', 'CREATE ROLE role_during_window'));
    expect(changed.outcome.warnings).toEqual([expect.stringMatching(/roles or tablespaces changed around the consistency window/)]);
    expect(changed.dump).toContain('CREATE ROLE "role_during_window"');
  });
});
