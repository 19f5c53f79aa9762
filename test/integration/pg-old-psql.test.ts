import Docker from 'dockerode';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, PG_SUPERUSER, psql, startPostgres } from '../support/containers.js';
import { IMAGES } from '../support/images.js';
import { independentFingerprint } from '../support/pg.js';
import { rawArtifact, replaceArtifact } from '../support/tamper.js';

const restorePoints = async (dir: string) => (await readdir(dir)).filter((n) => n.startsWith('restore-point'));
const PWNED = '/tmp/stackvault-pwned';

/**
 * psql before its series' release in RESTRICT_SINCE (pg-restore-filter.ts; 13.22 for 13) has no
 * \restrict, so nothing in psql stops a command a crafted dump hides from stackvault's reading.
 * Here the reading is the only guard: it must read the dump as this psql does, refuse what it
 * could read otherwise, and keep psql in the dump's encoding. Each hostile dump is first run through this very psql by hand, to
 * prove it does run a shell there.
 */
describe('restores through a psql without \\restrict (13.16): the reading is the only guard', () => {
  const project = newProjectName('oldpsql');
  let pg: StartedTestContainer;

  beforeAll(async () => {
    pg = await startPostgres({ project }, IMAGES.postgres13);
    await psql(pg, 'bot', "CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'Grüße, 日本語, 🎉'), (2, E'tab\\there \\\\ back'), (3, 'C:\\dir')");
    await psql(pg, 'postgres', "CREATE DATABASE legacy ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
    await psql(pg, 'legacy', "CREATE TABLE t (v text); INSERT INTO t VALUES ('café, naïve, ½')");
  });

  afterAll(async () => {
    await pg?.stop().catch(() => undefined);
  });

  const backup = async (tag: string) => {
    const dir = await tempDir(tag);
    const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(c.exitCode, String(c.stderr)).toBe(0);
    return { dir, id: (JSON.parse(String(c.stdout)) as Manifest).id };
  };

  /** Puts `lines` after the dump's `\connect "bot"`, byte for byte. */
  const hide = async (dir: string, id: string, lines: Buffer) => {
    const manifest = JSON.parse(await readFile(join(dir, id, 'manifest.json'), 'utf8')) as Manifest;
    const raw = await rawArtifact(join(dir, id), manifest.services[0]!.artifact!);
    const at = raw.indexOf('\\connect "bot"\n') + '\\connect "bot"\n'.length;
    await replaceArtifact(join(dir, id), 'postgres', Buffer.concat([raw.subarray(0, at), lines, raw.subarray(at)]));
  };

  /** The lines run through the container's own psql by hand, as a replay without stackvault would. */
  const byHand = async (lines: Buffer) => {
    await pg.copyContentToContainer([{ content: lines, target: '/tmp/hostile.sql' }]);
    await pg.exec(['psql', '-U', PG_SUPERUSER, '-d', 'bot', '-X', '-q', '-f', '/tmp/hostile.sql']);
    const ran = (await pg.exec(['test', '-e', PWNED])).exitCode === 0;
    await pg.exec(['rm', '-f', PWNED]);
    return ran;
  };

  it('round trip: says psql cannot guard itself, replays, and the restore is proven by content', async () => {
    expect((await pg.exec(['psql', '--version'])).output).toContain('13.16');
    const before = await independentFingerprint(pg);
    const { dir, id } = await backup('old-psql');
    await psql(pg, 'bot', "UPDATE notes SET body = 'changed'; CREATE TABLE extra (x int)");
    await psql(pg, 'legacy', 'DROP TABLE t');
    // Watched live: the engine keeps only its last 256 events, and other test files make more meanwhile.
    const events = (await new Docker().getEvents({ filters: { type: ['container'], container: [pg.getId()], event: ['exec_create'] } })) as NodeJS.ReadableStream & { destroy(): void };
    let seen = '';
    events.on('data', (chunk: Buffer) => {
      seen += chunk.toString('utf8');
    });
    const r = await bot(['backup', 'restore', id, '--dir', dir, '--yes']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(`${r.stdout}${r.stderr}`).toContain('cannot restrict its own commands');
    // The container's psql is asked once per check before anything changes: the backup's (which
    // hands it to the replay), the restore point's as it is written (what its restore would
    // refuse), and the restore point's before the restore (which must pass the same checks first).
    await new Promise((r) => setTimeout(r, 1500)); // events of the last moment arrive
    events.destroy();
    const actions = seen
      .split('\n')
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { Action: string }).Action);
    expect(actions.filter((a) => a === 'exec_create: psql --version')).toHaveLength(3);
    expect(await independentFingerprint(pg)).toBe(before);
    expect(await psql(pg, 'legacy', 'SELECT v FROM t')).toBe('café, naïve, ½');
  });

  it('standard_conforming_strings off: read as psql reads it when the dump sets it (exit 5), put back when a statement does', async () => {
    // With the setting off, psql reads `\'` as a quote inside the string, so the string runs on
    // to the next line's quote and the command after it is psql's; read with it on, the command is quoted text.
    const hidden = (set: string) => Buffer.from(`${set}\nSELECT 'a\\';\nSELECT ' \\! touch ${PWNED}\n';\n`, 'latin1');
    const bySet = hidden('SET standard_conforming_strings = off;');
    const byFunction = hidden("SELECT pg_catalog.set_config('standard_conforming_strings', 'off', false);");
    expect(await byHand(bySet)).toBe(true);
    expect(await byHand(byFunction)).toBe(true);

    // The dump's own SET: the reading follows it, sees the command, refuses.
    const first = await backup('old-psql-sco');
    await hide(first.dir, first.id, bySet);
    const r = await bot(['backup', 'restore', first.id, '--dir', first.dir, '--yes']);
    expect(r.exitCode, String(r.stderr)).toBe(5);
    expect(String(r.stderr)).toContain('the psql command \\!');
    expect(await restorePoints(first.dir)).toEqual([]);

    // Any other statement: psql is put back to the dump's setting after it, so the command stays quoted text.
    const second = await backup('old-psql-sco-fn');
    await hide(second.dir, second.id, byFunction);
    const s = await bot(['backup', 'restore', second.id, '--dir', second.dir, '--yes']);
    expect(s.exitCode, String(s.stderr)).toBe(0);
    expect((await pg.exec(['test', '-e', PWNED])).exitCode).not.toBe(0);
  });

  it("a statement that switches psql to SJIS hides no command: psql is put back into the dump's encoding after it", async () => {
    // In SJIS 0x81 is a lead byte that takes the quote after it, so psql sees `''` as the
    // string's end and runs the command; read byte for byte, `''` is a quote inside the string.
    const lines = Buffer.concat([
      Buffer.from("SELECT pg_catalog.set_config('client_encoding', 'SJIS', false);\nSELECT '", 'latin1'),
      Buffer.from([0x81]),
      Buffer.from(`'' \\! touch ${PWNED}\n';\n`, 'latin1'),
    ]);
    expect(await byHand(lines)).toBe(true);
    const before = await independentFingerprint(pg);
    const { dir, id } = await backup('old-psql-sjis');
    await hide(dir, id, lines);
    const r = await bot(['backup', 'restore', id, '--dir', dir, '--yes']);
    // Read in the dump's encoding, the line is one string with a byte no UTF8 database takes:
    // the replay stops there, and the restore point is put back.
    expect(r.exitCode, String(r.stderr)).not.toBe(0);
    expect(String(r.stdout)).toMatch(/NOT restored, back on the restore point: replaying the dump stopped at an error: .*invalid byte sequence/);
    expect((await pg.exec(['test', '-e', PWNED])).exitCode).not.toBe(0);
    expect(await independentFingerprint(pg)).toBe(before);
  });

  it('live data this psql would read otherwise (a view slicing an array up to a function of the schema "ENCODING", which pg_dump writes as [1:"ENCODING"...]) is known when the backup is made: ⚠️, partial (exit 3), bytes kept; the restore refuses it in the same words', async () => {
    // psql puts its variable ENCODING in place of :"ENCODING" (the view cannot even be made
    // through psql's standard input without the space); this psql has no \restrict to stop it.
    await psql(
      pg,
      'bot',
      `CREATE SCHEMA "ENCODING"; CREATE FUNCTION "ENCODING".two() RETURNS int LANGUAGE sql AS 'SELECT 2'; CREATE VIEW sliced AS SELECT (ARRAY[1,2,3])[1 : "ENCODING".two()] AS head`,
    );
    try {
      const dir = await tempDir('old-psql-refusable');
      const c = await bot(['backup', 'create', '--project', project, '--dir', dir]);
      expect(c.exitCode, String(c.stdout) + String(c.stderr)).toBe(3);
      expect(String(c.stdout)).toMatch(/⚠️ postgres: .* -> /);
      expect(String(c.stdout)).toMatch(/warning: postgres: a restore would refuse this backup: the dump holds a psql variable/);
      const [id] = (await readdir(dir)).filter((n) => n.startsWith('stackvault_'));
      const manifest = JSON.parse(await readFile(join(dir, id!, 'manifest.json'), 'utf8')) as Manifest;
      expect(manifest.status).toBe('partial');
      expect(manifest.services[0]).toMatchObject({ status: 'ok', restoreRefuses: expect.stringMatching(/a psql variable/) });
      expect((await rawArtifact(join(dir, id!), manifest.services[0]!.artifact!)).includes('[1:"ENCODING"."two"()]')).toBe(true); // the bytes are there
      const r = await bot(['backup', 'restore', id!, '--dir', dir, '--yes']);
      expect(r.exitCode, String(r.stderr)).toBe(5);
      expect(String(r.stderr)).toContain(manifest.services[0]!.restoreRefuses!);
      expect(await restorePoints(dir)).toEqual([]);
    } finally {
      await psql(pg, 'bot', 'DROP SCHEMA "ENCODING" CASCADE');
    }
  });
});
