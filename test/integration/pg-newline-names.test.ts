import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, psql, startPostgres } from '../support/containers.js';
import { IMAGES } from '../support/images.js';
import { independentFingerprint } from '../support/pg.js';

/** A name of exactly 63 bytes (NAMEDATALEN - 1) in UTF-8, with a line break in it. */
const LONG = `${'é'.repeat(30)}\n${'x'.repeat(2)}`;

/**
 * Names psql and pg_dump carry as they are: a line break (pg_dump's COPY header then spans
 * lines), a carriage return, both, and characters that mean something to psql or SQL outside
 * quotes (a backslash command after a line break, `\.` on a line of its own, `;`, `:`, quotes).
 */
const SEED = [
  'CREATE TABLE cr ("a\nb" int, t text)',
  "INSERT INTO cr VALUES (1, NULL), (2, 'x'), (3, E'two\\nlines')",
  'CREATE SCHEMA "s\nc"',
  'CREATE TABLE "s\nc"."t\nn" ("x" int, "y\nz" text)',
  'INSERT INTO "s\nc"."t\nn" VALUES (1, NULL), (2, \'zwei\'), (NULL, NULL)',
  'CREATE SCHEMA "r\rr"',
  'CREATE TABLE "r\rr"."cr\rtab" ("c\rd" int, "e\r\nf" text, "g\\h" int, "q""q" int, "se;mi:co" int, ":DBNAME" text)',
  'INSERT INTO "r\rr"."cr\rtab" VALUES (1, NULL, 2, 3, 4, \':x\'), (NULL, \'\\\', NULL, NULL, NULL, NULL)',
  'CREATE TABLE "both\r\n\\! id" ("\n\\.\n" text, "x\n\\! touch /tmp/stackvault-pwned\n" int, "Grüße\n日本" text)',
  "INSERT INTO \"both\r\n\\! id\" VALUES ('\\.', 1, 'ß'), (NULL, NULL, NULL)",
  `CREATE TABLE "${LONG}" ("${LONG}" int)`,
  `INSERT INTO "${LONG}" VALUES (63), (NULL)`,
  'CREATE TABLE "empty\ntable" ()',
  'INSERT INTO "empty\ntable" DEFAULT VALUES',
  'CREATE SEQUENCE "se\nq" START 7',
  // A role the dump creates over two lines: the restore must know it made it (else it drops it, and what it owns).
  'CREATE ROLE "ro\nle"',
  'CREATE TABLE "owned\nby" (v int)',
  'INSERT INTO "owned\nby" VALUES (1)',
  'ALTER TABLE "owned\nby" OWNER TO "ro\nle"',
  'SELECT setval(\'"se\nq"\', 42)',
];

describe.each([
  ['17', IMAGES.postgres],
  ['13.16, without \\restrict', IMAGES.postgres13],
])('PostgreSQL %s: names with line breaks and carriage returns back up, restore and fingerprint exactly', (_what, image) => {
  const project = newProjectName('pgnewline');
  let pg: StartedTestContainer;

  beforeAll(async () => {
    pg = await startPostgres({ project }, image);
    for (const sql of SEED) await psql(pg, 'bot', sql);
    expect(Buffer.from(LONG).length).toBe(63);
  });

  afterAll(async () => {
    await pg?.stop().catch(() => undefined);
  });

  const backup = async (tag: string) => {
    const dir = await tempDir(tag);
    const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(c.exitCode, `${c.stdout}${c.stderr}`).toBe(0);
    const manifest = JSON.parse(String(c.stdout)) as Manifest;
    expect(await readFile(join(dir, manifest.id, 'manifest.json'), 'utf8')).not.toContain('restoreRefuses');
    return { dir, manifest };
  };

  const restore = async (dir: string, id: string) => {
    const r = await bot(['backup', 'restore', id, '--dir', dir, '--yes', '--json']);
    expect(r.exitCode, `${r.stdout}${r.stderr}`).toBe(0);
    const result = JSON.parse(String(r.stdout)) as { services: Array<{ status: string; check: string }> };
    expect(result.services).toEqual([expect.objectContaining({ status: 'restored', check: 'equal' })]);
  };

  it('round trip after the data changed, proven by an independent fingerprint', async () => {
    const before = await independentFingerprint(pg);
    const { dir, manifest } = await backup('pgnewline');
    const parts = manifest.services[0]!.fingerprint!.parts;
    expect(parts['bot/table "public"."cr"']).toMatch(/^\("a\nb", "t"\) n=3 /);
    expect(parts['bot/table "s\nc"."t\nn"']).toMatch(/^\("x", "y\nz"\) n=3 /);
    expect(parts['bot/table "r\rr"."cr\rtab"']).toMatch(/^\("c\rd", "e\r\nf", "g\\h", "q""q", "se;mi:co", ":DBNAME"\) n=2 /);
    expect(parts['bot/table "public"."both\r\n\\! id"']).toMatch(/ n=2 /);
    expect(parts[Buffer.from(`bot/table "public"."${LONG}"`).toString('latin1')]).toMatch(/ n=2 /); // part names are the dump's bytes
    expect(parts['bot/table "public"."empty\ntable"']).toMatch(/^\(\) n=1 /);
    expect(parts['bot/sequence "public"."se\nq"']).toBe('42 t');
    expect(JSON.parse(parts.roles!)).toContain('ro\nle');

    await psql(pg, 'bot', 'UPDATE cr SET t = \'changed\'; DELETE FROM "s\nc"."t\nn" WHERE x = 2; DROP TABLE "both\r\n\\! id"; SELECT setval(\'"se\nq"\', 1)');
    await psql(pg, 'bot', 'UPDATE "r\rr"."cr\rtab" SET "c\rd" = 99; CREATE TABLE "new\ntable" (v int)');
    expect(await independentFingerprint(pg)).not.toBe(before);

    await restore(dir, manifest.id);
    expect(await independentFingerprint(pg)).toBe(before);
    expect(await psql(pg, 'bot', 'SELECT last_value FROM "se\nq"')).toBe('42');
    expect(await psql(pg, 'bot', "SELECT tableowner FROM pg_tables WHERE tablename = 'owned\nby'")).toBe('ro\nle');
    expect((await pg.exec(['test', '-e', '/tmp/stackvault-pwned'])).exitCode).not.toBe(0);
  });

  it('an inherited table whose columns a restore puts in another order: read in the backup order', async () => {
    // pg_dump writes the child with its own column only, so after a replay the parent's columns come first.
    await psql(pg, 'bot', 'CREATE TABLE "pa\nrent" (id int); CREATE TABLE "chi\nld" ("own\ncol" text) INHERITS ("pa\nrent"); ALTER TABLE "pa\nrent" ADD COLUMN "late\ncol" int');
    await psql(pg, 'bot', 'INSERT INTO "chi\nld" VALUES (1, \'own\', 2), (3, NULL, NULL)');
    const rows = 'SELECT id, "own\ncol", "late\ncol" FROM ONLY "chi\nld" ORDER BY id';
    const want = await psql(pg, 'bot', rows);
    const { dir, manifest } = await backup('pgnewline-inherit');
    expect(manifest.services[0]!.fingerprint!.parts['bot/table "public"."chi\nld"']).toMatch(/^\("id", "own\ncol", "late\ncol"\) n=2 /);
    await psql(pg, 'bot', 'DELETE FROM "chi\nld"');
    await restore(dir, manifest.id);
    expect(await psql(pg, 'bot', "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = '\"chi\nld\"'::regclass AND attnum > 0")).toBe('id,late\ncol,own\ncol');
    expect(await psql(pg, 'bot', rows)).toBe(want);
  });
});
