import { join } from 'node:path';
import { execa } from 'execa';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest, ServiceEntry } from '../../src/core/manifest.js';
import { DockerodeEngine } from '../../src/docker/dockerode-engine.js';
import { tempDir } from '../support/artifacts.js';
import { bot, REPO_ROOT } from '../support/cli.js';
import { newProjectName, PG_SUPERUSER, startPostgres } from '../support/containers.js';
import { IMAGES } from '../support/images.js';
import { pgDumpall } from '../support/pg-cluster-state.js';
import { normalisePgDump } from '../support/pg-dump-normalise.js';

// The built driver, as the CLI runs it.
const { postgresDriver } = (await import(join(REPO_ROOT, 'dist/drivers/postgres.js'))) as typeof import('../../src/drivers/postgres.js');
const { firstDifference } = (await import(join(REPO_ROOT, 'dist/drivers/fingerprint.js'))) as typeof import('../../src/drivers/fingerprint.js');

/**
 * Names are bytes to PostgreSQL: a quoted name may hold the record and unit separators, line
 * breaks, tabs, backslashes and quotes, and in a SQL_ASCII or LATIN1 database bytes that are not
 * UTF-8; the names of databases and roles are shared by databases of different encodings. Each
 * such cluster is backed up, changed, restored and compared, by stackvault's content check and
 * independently of it by pg_dumpall's own bytes before and after (normalised: \restrict keys
 * and row order only).
 *
 * In this file, a string that stands for bytes holds one character per byte (latin1), as
 * stackvault's part names do; `u8` gives the bytes of UTF-8 text so.
 */
const u8 = (text: string) => Buffer.from(text, 'utf8').toString('latin1');
const q = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** A connection URI naming a database by its bytes, every byte percent-encoded (the test's own; not stackvault's). */
const uri = (db: string) => `postgresql:///${[...Buffer.from(db, 'latin1')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')}`;

/** Runs a psql script of bytes in a database named by its bytes; stdout as bytes. SQL_ASCII: the server takes and gives bytes as they are. */
async function psqlBytes(pg: StartedTestContainer, db: string, script: string, encoding = 'SQL_ASCII'): Promise<string> {
  const r = await execa('docker', ['exec', '-i', '-e', `PGCLIENTENCODING=${encoding}`, pg.getId(), 'psql', '-U', PG_SUPERUSER, '-d', uri(db), '-v', 'ON_ERROR_STOP=1', '-AtXq'], {
    input: Buffer.from(script, 'latin1'),
    encoding: 'buffer',
  });
  return Buffer.from(r.stdout).toString('latin1').replace(/\n$/, '');
}

/** What the cluster holds, as pg_dumpall writes it (bytes as latin1), normalised. */
const dumpState = async (pg: StartedTestContainer) => normalisePgDump(await pgDumpall(pg));

/** The first line at which two states differ, shown as hex (short), or 'equal'. */
function firstDifferentLine(a: string, b: string): string {
  const la = a.split('\n');
  const lb = b.split('\n');
  const i = la.findIndex((l, n) => l !== lb[n]);
  if (i < 0) return la.length === lb.length ? 'equal' : `length ${la.length} vs ${lb.length}`;
  const hex = (s: string | undefined) =>
    Buffer.from(s ?? '', 'latin1')
      .toString('hex')
      .slice(0, 200);
  return `line ${i + 1}: ${hex(la[i])} vs ${hex(lb[i])}`;
}

async function backup(project: string, tag: string, extra: string[] = []): Promise<{ dir: string; manifest: Manifest }> {
  const dir = await tempDir(tag);
  const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir, ...extra]);
  expect(c.exitCode, `${c.stdout}${c.stderr}`).toBe(0);
  const manifest = JSON.parse(String(c.stdout)) as Manifest;
  expect(manifest.services[0]).not.toHaveProperty('restoreRefuses');
  return { dir, manifest };
}

async function restoreEqual(dir: string, id: string): Promise<void> {
  const r = await bot(['backup', 'restore', id, '--dir', dir, '--yes', '--json']);
  expect(r.exitCode, `${r.stdout}${r.stderr}`).toBe(0);
  const result = JSON.parse(String(r.stdout)) as { services: Array<{ status: string; check: string }> };
  expect(result.services).toEqual([expect.objectContaining({ status: 'restored', check: 'equal' })]);
}

describe('PostgreSQL 17: names holding \\x1e, \\x1f, line breaks, tabs, backslashes, quotes and multibyte characters', () => {
  const project = newProjectName('pgnames-sep');
  const engine = new DockerodeEngine();
  let pg: StartedTestContainer;

  const SCHEMA = 's\x1fc\x1e';
  const TABLE = u8('t\x1e\x1f\n\r\t\\"\'é😀');
  const COLUMNS = ['c\x1f', 'd\x1e\x1f\n', u8('e\\\t\'"ß')];
  const ROLE = u8('r\x1eo\x1fl\ne\t\\"\'é');
  // pg_dumpall refuses a database name with a line break or carriage return: anything else.
  const DB = u8('db\x1e\x1f\t\\"\' é');
  const PART = `bot/table ${q(SCHEMA)}.${q(TABLE)}`;

  /** The live fingerprint stackvault's restore check reads, of this container. */
  const live = async (entry: ServiceEntry) =>
    postgresDriver.liveFingerprint!({
      engine,
      container: await engine.inspect(pg.getId()),
      entry,
      ...(entry.fingerprint ? { expected: entry.fingerprint } : {}),
      signal: new AbortController().signal,
    });

  beforeAll(async () => {
    pg = await startPostgres({ project });
  });

  afterAll(async () => {
    await pg?.stop().catch(() => undefined);
  });

  it('a role named with the record separator is one role, not the two its halves name', async () => {
    await psqlBytes(pg, 'postgres', 'CREATE ROLE "fm"; CREATE ROLE "x";');
    const entry = { name: 'postgres' } as ServiceEntry;
    const two = await live(entry);
    expect(JSON.parse(two.parts.roles!)).toEqual(expect.arrayContaining(['fm', 'x']));
    await psqlBytes(pg, 'postgres', 'DROP ROLE "fm"; DROP ROLE "x"; CREATE ROLE "fm\x1ex";');
    const one = await live(entry);
    expect(JSON.parse(one.parts.roles!)).toContain('fm\x1ex');
    expect(firstDifference(two, one)).toMatch(/^roles differs/);
    await psqlBytes(pg, 'postgres', 'DROP ROLE "fm\x1ex";');
  });

  it('a database whose name reads as a connection string is read itself, not the database it names', async () => {
    await psqlBytes(pg, 'postgres', 'CREATE DATABASE "dbname=postgres";');
    try {
      await psqlBytes(pg, 'dbname=postgres', 'CREATE TABLE t (v int); INSERT INTO t VALUES (1);');
      const entry = { name: 'postgres' } as ServiceEntry;
      const before = await live(entry);
      expect(before.parts['dbname=postgres/table "public"."t"']).toMatch(/^\("v"\) n=1 /);
      await psqlBytes(pg, 'dbname=postgres', 'UPDATE t SET v = 2;');
      expect(firstDifference(before, await live(entry))).toMatch(/^dbname=postgres\/table "public"\."t" differs/);
    } finally {
      await psqlBytes(pg, 'postgres', 'DROP DATABASE "dbname=postgres";');
    }
  });

  it('back up, change, restore: the check and pg_dumpall say equal; an altered restored row is caught', async () => {
    await psqlBytes(
      pg,
      'bot',
      [
        `CREATE ROLE ${q(ROLE)};`,
        `CREATE SCHEMA ${q(SCHEMA)};`,
        `CREATE TABLE ${q(SCHEMA)}.${q(TABLE)} (id int, ${COLUMNS.map((c) => `${q(c)} text`).join(', ')});`,
        `INSERT INTO ${q(SCHEMA)}.${q(TABLE)} VALUES (1, E'a\\x1eb\\x1fc', E'line\\nbreak\\r\\ttab', '${u8("back\\slash ''quoted'' é")}'), (2, NULL, '', E'\\x1f');`,
        `ALTER TABLE ${q(SCHEMA)}.${q(TABLE)} OWNER TO ${q(ROLE)};`,
        `CREATE SEQUENCE ${q(SCHEMA)}."q\x1e\x1f" START 5; SELECT setval('${q(SCHEMA).replaceAll("'", "''")}."q\x1e\x1f"', 7);`,
        `CREATE DATABASE ${q(DB)} OWNER ${q(ROLE)};`,
      ].join('\n'),
      'UTF8',
    );
    await psqlBytes(pg, DB, `CREATE TABLE "x\x1f" ("\x1e" int); INSERT INTO "x\x1f" VALUES (1), (2), (NULL);`, 'UTF8');
    const before = await dumpState(pg);

    const { dir, manifest } = await backup(project, 'pgnames-sep');
    const fp = manifest.services[0]!.fingerprint!;
    expect(fp.parts[PART]?.startsWith(`(${['id', ...COLUMNS].map(q).join(', ')}) n=2 `)).toBe(true);
    expect(fp.parts[`${DB}/table "public"."x\x1f"`]?.startsWith(`("\x1e") n=3 `)).toBe(true);
    expect(fp.parts[`bot/sequence ${q(SCHEMA)}."q\x1e\x1f"`]).toBe('7 t');
    expect(JSON.parse(fp.parts.roles!)).toContain(ROLE);
    expect(JSON.parse(fp.parts.databases!)).toContain(DB);

    await psqlBytes(
      pg,
      'bot',
      `UPDATE ${q(SCHEMA)}.${q(TABLE)} SET ${q(COLUMNS[0]!)} = 'changed'; SELECT setval('${q(SCHEMA).replaceAll("'", "''")}."q\x1e\x1f"', 1); CREATE ROLE "extra\x1f";`,
      'UTF8',
    );
    await psqlBytes(pg, DB, `DELETE FROM "x\x1f" WHERE "\x1e" = 2;`, 'UTF8');
    expect(firstDifferentLine(await dumpState(pg), before)).not.toBe('equal');

    await restoreEqual(dir, manifest.id);
    expect(firstDifferentLine(await dumpState(pg), before)).toBe('equal');

    // What the check reads now is the backup; a row changed after the restore is not.
    const entry = manifest.services[0]!;
    expect(firstDifference(fp, await live(entry))).toBeUndefined();
    await psqlBytes(pg, 'bot', `UPDATE ${q(SCHEMA)}.${q(TABLE)} SET ${q(COLUMNS[2]!)} = E'\\x1e' WHERE id = 2;`, 'UTF8');
    expect(firstDifference(fp, await live(entry))).toContain(`${Buffer.from(PART, 'latin1').toString('utf8')} differs`);
  });
});

describe('PostgreSQL 17, a SQL_ASCII cluster: names and text that are not UTF-8, a LATIN1 and a UTF8 database', () => {
  const project = newProjectName('pgnames-ascii');
  let pg: StartedTestContainer;
  const DB = 'caf\xe9'; // SQL_ASCII, named by a byte that is not UTF-8
  const LATIN = 'lat\xe9'; // LATIN1, named in LATIN1
  const UTF = u8('utf8_é'); // UTF8, named in UTF-8
  const ROLE = 'r\xe9';

  beforeAll(async () => {
    pg = await startPostgres({ project, initdbArgs: '--encoding=SQL_ASCII --locale=C' });
    await psqlBytes(
      pg,
      'postgres',
      `CREATE ROLE ${q(ROLE)}; CREATE DATABASE ${q(DB)} OWNER ${q(ROLE)}; CREATE DATABASE ${q(LATIN)} ENCODING LATIN1 TEMPLATE template0; CREATE DATABASE ${q(UTF)} ENCODING UTF8 TEMPLATE template0;`,
    );
    await psqlBytes(
      pg,
      DB,
      `CREATE TABLE "t\xe9" ("c\xe9" int, v text); INSERT INTO "t\xe9" VALUES (1, E'x\\xe9\\xff\\x80 \\x1e'), (2, NULL), (3, '\xe9t\xe9'); ALTER TABLE "t\xe9" OWNER TO ${q(ROLE)};`,
    );
    await psqlBytes(pg, LATIN, `CREATE TABLE "caf\xe9" ("\xe9" text); INSERT INTO "caf\xe9" VALUES ('\xe9t\xe9'), ('na\xefve');`);
    await psqlBytes(pg, UTF, `CREATE TABLE ${q(u8('é'))} (v text); INSERT INTO ${q(u8('é'))} VALUES ('${u8('été')}');`);
  });

  afterAll(async () => {
    await pg?.stop().catch(() => undefined);
  });

  const change = async () => {
    await psqlBytes(pg, DB, `DELETE FROM "t\xe9" WHERE "c\xe9" = 2; UPDATE "t\xe9" SET v = 'changed' WHERE "c\xe9" = 3;`);
    await psqlBytes(pg, LATIN, `UPDATE "caf\xe9" SET "\xe9" = 'x';`);
    await psqlBytes(pg, UTF, `DELETE FROM ${q(u8('é'))};`);
    // Made since the backup: the restore drops them.
    await psqlBytes(pg, 'postgres', `CREATE DATABASE "new\xe9"; CREATE ROLE "x\xe9";`);
  };

  it('back up, change, restore: the check and pg_dumpall say equal', async () => {
    const before = await dumpState(pg);
    const { dir, manifest } = await backup(project, 'pgnames-ascii');
    const entry = manifest.services[0]!;
    expect(entry.details).toMatchObject({ encoding: 'SQL_ASCII' });
    // Before: "caf\ufffd" and "lat\ufffd" in databases, two names that may be any of 128 others.
    // Now the UTF-8 names as their text (where earlier versions read them), the others escaped apart.
    expect(entry.details!.databases).toEqual(['bot', 'postgres', 'template1', 'utf8_é']);
    expect(entry.details!.databasesNotUtf8).toEqual(['caf\\xe9', 'lat\\xe9']);
    const listed = JSON.parse(String((await bot(['backup', 'list', '--json', '--dir', dir])).stdout)) as Manifest[];
    expect(listed[0]!.services[0]!.details).toEqual(entry.details);
    const parts = entry.fingerprint!.parts;
    expect(parts[`${DB}/table "public"."t\xe9"`]).toMatch(/^\("c\xe9", "v"\) n=3 /);
    expect(parts[`${LATIN}/table "public"."caf\xe9"`]).toMatch(/^\("\xe9"\) n=2 /);
    expect(parts[`${UTF}/table "public".${q(u8('é'))}`]).toMatch(/^\("v"\) n=1 /);
    expect(JSON.parse(parts.databases!)).toEqual(expect.arrayContaining([DB, LATIN, UTF]));
    expect(JSON.parse(parts.roles!)).toContain(ROLE);

    await change();
    expect(firstDifferentLine(await dumpState(pg), before)).not.toBe('equal');
    await restoreEqual(dir, manifest.id);
    expect(firstDifferentLine(await dumpState(pg), before)).toBe('equal');
  });

  it('the same from a consistent backup (a snapshot per database, each reached by its bytes)', async () => {
    const before = await dumpState(pg);
    const { dir, manifest } = await backup(project, 'pgnames-ascii-consistent', ['--consistent']);
    expect(manifest.services[0]!.details).toMatchObject({ snapshots: 6 }); // template1, postgres, bot and the three above
    await change();
    await restoreEqual(dir, manifest.id);
    expect(firstDifferentLine(await dumpState(pg), before)).toBe('equal');

    // A throwaway server made in the cluster's encoding holds the replay, and its content is the backup's.
    const v = await bot(['backup', 'verify', manifest.id, '--dir', dir, '--deep']);
    expect(v.exitCode, `${v.stdout}${v.stderr}`).toBe(0);
    expect(String(v.stdout)).toContain('"fingerprint":"equal to the backup"');
    // The replayed copy's databases, each said apart (before: "caf\ufffd","lat\ufffd").
    expect(String(v.stdout)).toContain(`"databases":["bot","caf\\\\xe9","lat\\\\xe9","postgres","utf8_é"]`);
  });
});

describe.each([
  ['17', IMAGES.postgres],
  ['13.16, without \\restrict', IMAGES.postgres13],
])('PostgreSQL %s, a UTF8 cluster: a LATIN1 database named café, a SQL_ASCII one with names and text that are not UTF-8', (_what, image) => {
  const project = newProjectName('pgnames-utf8');
  let pg: StartedTestContainer;
  const LATIN_TEXT = 'latin_café';
  const LATIN = u8(LATIN_TEXT);
  const OWNER = u8('rené\nowner'); // its ALTER DATABASE ... OWNER TO spans two lines

  beforeAll(async () => {
    pg = await startPostgres({ project }, image);
    await psqlBytes(
      pg,
      'postgres',
      `CREATE ROLE ${q(OWNER)}; CREATE DATABASE ${q(LATIN)} ENCODING LATIN1 LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0 OWNER ${q(OWNER)}; CREATE DATABASE ascii_db ENCODING SQL_ASCII LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;`,
    );
    // The role's name is its UTF-8 bytes in every database (SQL_ASCII: taken as they are).
    await psqlBytes(pg, LATIN, `CREATE TABLE "caf\xe9" ("\xe9" text); INSERT INTO "caf\xe9" VALUES ('\xe9t\xe9'), ('na\xefve'); ALTER TABLE "caf\xe9" OWNER TO ${q(OWNER)};`);
    await psqlBytes(pg, 'ascii_db', `CREATE TABLE "t\xe9" ("c\xe9" int, v text); INSERT INTO "t\xe9" VALUES (1, E'\\xe9\\xff\\x80'), (2, NULL);`);
  });

  afterAll(async () => {
    await pg?.stop().catch(() => undefined);
  });

  it("back up, change, restore: the check and pg_dumpall say equal (pg_dump's CREATE DATABASE keeps the name's bytes)", async () => {
    const before = await dumpState(pg);
    const { dir, manifest } = await backup(project, 'pgnames-utf8');
    const parts = manifest.services[0]!.fingerprint!.parts;
    expect(parts[`${LATIN}/table "public"."caf\xe9"`]).toMatch(/^\("\xe9"\) n=2 /);
    expect(parts['ascii_db/table "public"."t\xe9"']).toMatch(/^\("c\xe9", "v"\) n=2 /);

    await psqlBytes(pg, LATIN, `DELETE FROM "caf\xe9" WHERE "\xe9" = 'na\xefve';`);
    await psqlBytes(pg, 'ascii_db', `UPDATE "t\xe9" SET v = 'x';`);
    await restoreEqual(dir, manifest.id);
    expect(firstDifferentLine(await dumpState(pg), before)).toBe('equal');
    expect(await psqlBytes(pg, LATIN, `SELECT "\xe9" FROM "caf\xe9" ORDER BY 1;`)).toBe('na\xefve\n\xe9t\xe9');
  });

  it("a role named by bytes that are not UTF-8: the backup fails with pg_dumpall's own error, not as a dump cut off", async () => {
    await psqlBytes(pg, 'ascii_db', 'CREATE ROLE "r\xe9";');
    try {
      const c = await bot(['backup', 'create', '--project', project, '--dir', await tempDir('pgnames-utf8-role')]);
      expect(c.exitCode).toBe(1);
      expect(String(c.stdout) + String(c.stderr)).toMatch(/pg_dumpall exited with code 1: pg_dumpall: error: query failed: ERROR: {2}invalid byte sequence for encoding "UTF8"/);
    } finally {
      await psqlBytes(pg, 'ascii_db', 'DROP ROLE "r\xe9";');
    }
  });

  it('a database named by bytes that are not UTF-8 (from a SQL_ASCII one): the backup says a restore refuses it, which changes nothing', async () => {
    await psqlBytes(pg, 'ascii_db', 'CREATE DATABASE "d\xe9";');
    try {
      const before = await dumpState(pg);
      const dir = await tempDir('pgnames-utf8-refused');
      const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
      expect(c.exitCode, `${c.stdout}${c.stderr}`).toBe(3);
      const manifest = JSON.parse(String(c.stdout)) as Manifest;
      expect(manifest.services[0]).toMatchObject({ status: 'ok', restoreRefuses: expect.stringMatching(/bytes that are not UTF-8 in a statement it runs as UTF-8/) });
      expect(manifest.services[0]!.details).toMatchObject({ databasesNotUtf8: ['d\\xe9'] });
      expect(manifest.services[0]!.details!.databases).toContain(LATIN_TEXT);
      const r = await bot(['backup', 'restore', manifest.id, '--dir', dir, '--yes']);
      expect(r.exitCode, String(r.stderr)).toBe(5);
      expect(String(r.stderr)).toContain('not UTF-8');
      expect(firstDifferentLine(await dumpState(pg), before)).toBe('equal');
    } finally {
      await psqlBytes(pg, 'ascii_db', 'DROP DATABASE "d\xe9";');
    }
  });
});
