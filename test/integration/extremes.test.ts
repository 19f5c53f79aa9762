import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, psql, running, startPostgres } from '../support/containers.js';

/**
 * Sizes and counts past what PostgreSQL itself can dump: the backup must fail with one sentence
 * that says which limit and what to do, keep nothing, and leave the server running.
 */
describe('PostgreSQL past its own limits', () => {
  const started: StartedTestContainer[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(started.map((c) => c.stop().catch(() => undefined)));
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  const backUp = async (project: string) => {
    const dir = await tempDir('extremes');
    dirs.push(dir);
    const r = await bot(['backup', 'create', '--project', project, '--dir', dir]);
    const listed = await bot(['backup', 'list', '--json', '--dir', dir]);
    return { exitCode: r.exitCode, out: `${r.stdout}${r.stderr}`, backups: JSON.parse(String(listed.stdout)) as unknown[] };
  };

  it('a row over 1 GB as text: one sentence naming the table and the limit (it said "PQgetResult() failed.")', async () => {
    const project = newProjectName('extremes-row');
    const pg = await startPostgres({ project });
    started.push(pg);
    // 600 MB + 500 MB of text in one row: each value is under PostgreSQL's 1 GB, the row's COPY text is not.
    await psql(pg, 'bot', "CREATE TABLE huge (a text, b text); INSERT INTO huge VALUES (repeat('x', 600000000)); UPDATE huge SET b = repeat('y', 500000000)");
    const r = await backUp(project);
    expect(r.exitCode, r.out).toBe(1);
    expect(r.out).toContain('a row of table "huge" is over 1 GB as text');
    expect(r.out).toContain('keep values this big in large objects or files');
    expect(r.backups).toEqual([]);
    expect(await running(pg.getId())).toBe(true);
  });

  it('more tables than the server\'s lock table holds: one sentence naming max_locks_per_transaction (it said only "out of shared memory")', async () => {
    const project = newProjectName('extremes-locks');
    // The smallest lock table PostgreSQL allows, so that 600 tables overflow it as 20,000 overflow the default one.
    const pg = await startPostgres({ project, command: ['postgres', '-c', 'max_locks_per_transaction=10', '-c', 'max_connections=20'] });
    started.push(pg);
    await psql(pg, 'bot', "DO $$ BEGIN FOR i IN 1..600 LOOP EXECUTE format('CREATE TABLE t%s (id int)', i); COMMIT; END LOOP; END $$");
    const r = await backUp(project);
    expect(r.exitCode, r.out).toBe(1);
    expect(r.out).toContain('pg_dump locks every table of a database at once');
    expect(r.out).toContain('postgres -c max_locks_per_transaction=1024');
    expect(r.backups).toEqual([]);
    expect(await running(pg.getId())).toBe(true);
  });
});

describe('a database of many tables, deep verified', () => {
  let pg: StartedTestContainer | undefined;
  let dir: string | undefined;
  afterAll(async () => {
    await pg?.stop().catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('says what the restored copy holds in a line a person can read; the manifest keeps every table (it printed one line of 349 KB for 20,000 tables)', async () => {
    const project = newProjectName('extremes-tables');
    pg = await startPostgres({ project });
    await psql(pg, 'bot', "DO $$ BEGIN FOR i IN 1..1000 LOOP EXECUTE format('CREATE TABLE t%s (id int)', i); COMMIT; END LOOP; END $$");
    dir = await tempDir('extremes');
    const created = await bot(['backup', 'create', '--project', project, '--dir', dir]);
    expect(created.exitCode, String(created.stderr)).toBe(0);
    const shown = await bot(['backup', 'verify', 'latest', '--deep', '--dir', dir]);
    expect(shown.exitCode, String(shown.stderr)).toBe(0);
    const lines = `${shown.stdout}${shown.stderr}`.split('\n');
    expect(lines.find((l) => l.includes('restored copy holds'))).toMatch(/characters more: --json prints all\)$/);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThan(600);
    // The manifest keeps all of it, as --json prints it.
    const [id] = (await readdir(dir)).filter((n) => n.startsWith('stackvault_backup_'));
    const manifest = JSON.parse(await readFile(join(dir, id!, 'manifest.json'), 'utf8')) as {
      verifications: Array<{ services: Record<string, { facts: { rows: Record<string, Record<string, number>> } }> }>;
    };
    expect(Object.keys(manifest.verifications[0]!.services.postgres!.facts.rows.bot!)).toHaveLength(1000);
  });
});
