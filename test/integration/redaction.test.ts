import { execa } from 'execa';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GenericContainer, type StartedTestContainer, Wait } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { WITHHELD } from '../../src/util/redact.js';
import { tempDir } from '../support/artifacts.js';
import { bot, REPO_ROOT } from '../support/cli.js';
import { newProjectName, startAll } from '../support/containers.js';
import { IMAGES } from '../support/images.js';
import { rewriteArtifact } from '../support/tamper.js';

/**
 * Secrets are hidden in what programs print (here psql's errors during a restore), not in
 * stackvault's own words: a Neo4j whose password is `data` (NEO4J_AUTH=neo4j/data) keeps its
 * `/data` paths readable, a Postgres whose password is `ab` (too short to be replaced in place)
 * has psql's line that quotes it withheld, and a URL's password or an ENCRYPTION_KEY in the
 * environment count as secrets too. Checked in everything printed (--json too), the manifest,
 * the operations log and the scheduler's log.
 */
const URL_PASSWORD = 'Url-Pw-Secret-77';
const ENCRYPTION_KEY = 'Enc-Key-Secret-88';
const END = '-- PostgreSQL database cluster dump complete';
/** `ab` as psql would quote it, or as any word: not inside another (a digest, a name). */
const AB_TOKEN = /(?<![\p{L}\p{N}_])ab(?![\p{L}\p{N}_])/u;

const compose = (project: string, service: string) => ({ 'com.docker.compose.project': project, 'com.docker.compose.service': service });

function postgres(project: string, service: string, env: Record<string, string>): Promise<StartedTestContainer> {
  return new GenericContainer(IMAGES.postgres)
    .withLabels(compose(project, service))
    .withEnvironment({ POSTGRES_USER: 'botadmin', POSTGRES_DB: 'bot', ...env })
    .withWaitStrategy(Wait.forSuccessfulCommand('pg_isready -U botadmin -d bot'))
    .start();
}

describe('secrets are hidden in foreign text, not in our own words (secrets hunt 2, gaps 2 and 3)', () => {
  const started: StartedTestContainer[] = [];
  let dir: string;
  let fakebin: string;
  let project: string;
  const printed: string[] = [];
  let created: Manifest;
  let restoreOut = '';
  let restoreCode: number | undefined;
  let schedulerCode: number | undefined;

  beforeAll(async () => {
    project = newProjectName('redact');
    started.push(
      ...(await startAll([
        postgres(project, 'pg-a', { POSTGRES_PASSWORD: 'data', DATABASE_URL: `postgres://botadmin:${URL_PASSWORD}@localhost/bot`, ENCRYPTION_KEY }),
        postgres(project, 'pg-b', { POSTGRES_PASSWORD: 'ab' }),
        // A label naming a path that is not there: the backup of this service fails, saying the path.
        new GenericContainer(IMAGES.neo4j)
          .withLabels({ ...compose(project, 'graph'), 'stackvault.paths': '/data/gone' })
          .withEnvironment({ NEO4J_AUTH: 'neo4j/data' })
          .withWaitStrategy(Wait.forHealthCheck())
          .start(),
      ])),
    );
    dir = await tempDir('redact');
    const create = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir], { env: { STACKVAULT_DEBUG: '1' } });
    expect(create.exitCode, String(create.stderr)).toBe(3); // graph failed
    printed.push(String(create.stdout), String(create.stderr));
    created = JSON.parse(String(create.stdout)) as Manifest;

    // Each dump now holds a statement psql fails on, quoting the secrets in its error line (as it
    // would quote a row or a statement of a real dump); the checksums are fixed up to match.
    const backup = join(dir, created.id);
    await rewriteArtifact(backup, 'pg-a', (t) => t.replace(END, `SELECT 'data ${URL_PASSWORD} ${ENCRYPTION_KEY}'::int;\n${END}`));
    await rewriteArtifact(backup, 'pg-b', (t) => t.replace(END, `SELECT 'ab'::int;\n${END}`));
    const restore = await bot(['backup', 'restore', created.id, '--only', 'pg-a,pg-b', '--dir', dir, '--yes'], { env: { STACKVAULT_DEBUG: '1' } });
    restoreCode = restore.exitCode;
    restoreOut = `${restore.stdout}${restore.stderr}`;
    printed.push(restoreOut);
    const json = await bot(['backup', 'restore', created.id, '--only', 'pg-b', '--dir', dir, '--yes', '--json']);
    printed.push(String(json.stdout), String(json.stderr));

    // A fake crontab first on PATH: `trigger` never reads or writes the real one.
    fakebin = await tempDir('redact-bin');
    await writeFile(join(fakebin, 'crontab'), '#!/bin/sh\necho "no crontab for test" >&2; exit 1\n', { mode: 0o755 });
    // The scheduled job as cron runs it: its output appended to the scheduler's log.
    const run = await execa('sh', ['-c', `./bot.sh scheduler run --type daily --project '${project}' --dir '${dir}' >> '${dir}/scheduler.log' 2>&1`], {
      cwd: REPO_ROOT,
      env: { PATH: `${fakebin}:${process.env.PATH}` },
      reject: false,
    });
    schedulerCode = run.exitCode;
    for (const args of [
      ['backup', 'log', '--dir', dir],
      ['backup', 'list', '--all', '--dir', dir],
      ['scheduler', 'status', '--dir', dir, '--json'],
    ]) {
      const r = await bot(args, { env: { PATH: `${fakebin}:${process.env.PATH}` } });
      printed.push(String(r.stdout), String(r.stderr));
    }
  });

  afterAll(async () => {
    await Promise.all(started.map((c) => c.stop()));
    for (const d of [dir, fakebin]) if (d) await rm(d, { recursive: true, force: true });
  });

  it('our own words keep the path /data, with NEO4J_AUTH=neo4j/data (in the manifest, --json, the terminal and the scheduler log)', async () => {
    const graph = created.services.find((s) => s.name === 'graph')!;
    expect(graph.status).toBe('failed');
    expect(graph.error).toMatch(/^stackvault\.paths names \/data\/gone, which does not exist in /);
    const onDisk = JSON.parse(await readFile(join(dir, created.id, 'manifest.json'), 'utf8')) as Manifest;
    expect(onDisk.services.find((s) => s.name === 'graph')!.error).toBe(graph.error);
    expect(printed[1]).toContain('❌ graph: failed: stackvault.paths names /data/gone');
    expect(schedulerCode).toBe(3);
    const log = await readFile(join(dir, 'scheduler.log'), 'utf8');
    expect(log).toContain('❌ graph: failed: stackvault.paths names /data/gone');
    expect(log).toMatch(/scheduled daily backup partial/);
    for (const text of [...printed, log]) expect(text).not.toContain('/***');
  });

  it("psql's error line: a password of 4 or more characters, a URL's password and an ENCRYPTION_KEY are replaced where they stand", () => {
    expect(restoreCode).toBe(1); // both put back from the restore point
    expect(restoreOut).toContain('pg-a (');
    expect(restoreOut).toContain('NOT restored, back on the restore point: replaying the dump stopped at an error: ERROR:  invalid input syntax for type integer: "*** *** ***"');
  });

  it("psql's error line with a 2-character password in it is withheld, not shown with *** where `ab` stood", () => {
    expect(restoreOut).toContain(`replaying the dump stopped at an error: ${WITHHELD}`);
  });

  it('no secret in anything printed, debug on, --json included', () => {
    for (const text of printed) {
      for (const s of [URL_PASSWORD, ENCRYPTION_KEY, 'neo4j/data', 'integer: "data']) expect(text).not.toContain(s);
      expect(text).not.toMatch(AB_TOKEN);
    }
  });

  it('no secret in any file stackvault wrote: manifests, backup_info.txt, the operations log, the scheduler log and state', async () => {
    const files: string[] = [];
    const walk = async (d: string) => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        if (e.isDirectory()) await walk(join(d, e.name));
        else if (!/\.(gz|zst|sql|tar)$/.test(e.name)) files.push(join(d, e.name));
      }
    };
    await walk(dir);
    expect(files.map((f) => f.slice(dir.length + 1))).toEqual(expect.arrayContaining(['operations.log', 'scheduler.log', '.scheduler-state.json', `${created.id}/manifest.json`]));
    for (const f of files) {
      const text = await readFile(f, 'utf8');
      for (const s of [URL_PASSWORD, ENCRYPTION_KEY, 'neo4j/data', '/***']) expect(text, f).not.toContain(s);
      expect(text, f).not.toMatch(AB_TOKEN);
    }
  });
});
