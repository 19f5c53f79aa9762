import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PgRestoreFilter, psqlRestricts, type ReplayPsql } from '../../src/drivers/pg-restore-filter.js';

const KEY = 'k3y0fthisr3st0r3abcdef';
/** A psql with its own guard (17.12), and one without (13.16, as in the postgres:13 image). */
const GUARDED: ReplayPsql = { major: 17, restrictKey: KEY };
const UNGUARDED: ReplayPsql = { major: 13 };

/**
 * The output without the lines the filter adds: its own \restrict and \unrestrict (our key),
 * and its SET lines (spelled with TO; the dump's use =).
 */
const withoutOurs = (out: string) => out.replace(new RegExp(`^(?:\\\\(?:un)?restrict ${KEY}|SET (?:client_encoding|standard_conforming_strings) TO [^\n]*;)\n`, 'gm'), '');

/** Runs bytes through the filter cut at the given offsets; returns the output bytes. */
async function run(input: Buffer, cuts: number[], user = 'botadmin', force = true, psql: ReplayPsql = UNGUARDED): Promise<{ out: Buffer; roles: string[] }> {
  const f = new PgRestoreFilter(user, force, psql);
  const offsets = [...new Set([0, ...cuts.map((c) => c % (input.length + 1)), input.length])].sort((a, b) => a - b);
  const parts = offsets
    .slice(1)
    .map((end, i) => input.subarray(offsets[i], end))
    .filter((p) => p.length > 0);
  const chunks: Buffer[] = [];
  for await (const c of Readable.from(parts).pipe(f)) chunks.push(c as Buffer);
  return { out: Buffer.concat(chunks), roles: [...f.roles].sort() };
}

/** The output bytes in both modes, without the lines the filter adds (the same in both, or the test fails). */
async function passed(input: Buffer, cuts: number[]): Promise<Buffer> {
  const [guarded, unguarded] = await Promise.all([GUARDED, UNGUARDED].map((psql) => run(input, cuts, 'botadmin', true, psql)));
  const out = withoutOurs(unguarded!.out.toString('latin1'));
  expect(withoutOurs(guarded!.out.toString('latin1'))).toBe(out);
  return Buffer.from(out, 'latin1');
}

/** A role name's UTF-8 bytes through latin1, as the filter records it. */
const bytesOf = (s: string) => Buffer.from(s, 'utf8').toString('latin1');

const every = (n: number, len: number) => Array.from({ length: Math.ceil(len / n) }, (_, i) => i * n);

/** The output in both modes, without the lines the filter adds (the same in both, or the test fails). */
async function filter(sql: string, user = 'botadmin', force = true, chunk = 7): Promise<{ out: string; roles: string[] }> {
  const input = Buffer.from(sql, 'utf8');
  const [guarded, unguarded] = await Promise.all([GUARDED, UNGUARDED].map((psql) => run(input, every(chunk, input.length), user, force, psql)));
  const out = withoutOurs(unguarded!.out.toString('utf8'));
  expect(withoutOurs(guarded!.out.toString('utf8'))).toBe(out);
  expect(guarded!.roles).toEqual(unguarded!.roles);
  return { out, roles: unguarded!.roles };
}

const DUMP = [
  'SET default_transaction_read_only = off;',
  'DROP DATABASE IF EXISTS "bot";',
  'DROP ROLE IF EXISTS "botadmin";',
  'DROP ROLE IF EXISTS "reporter";',
  'CREATE ROLE "botadmin";',
  'ALTER ROLE "botadmin" WITH SUPERUSER;',
  'CREATE ROLE "reporter";',
  'CREATE ROLE "we""ird";',
  'CREATE ROLE "Jürgen";',
  '\\connect template1',
  'CREATE ROLE "botadmin";',
  'COPY public.t (v) FROM stdin;',
  'DROP DATABASE IF EXISTS "x";',
  'CREATE ROLE "botadmin";',
  '\\.',
  'DROP DATABASE "postgres";',
  '',
].join('\n');

describe('PgRestoreFilter', () => {
  it('drops only the connected superuser lines in the roles section and forces database drops', async () => {
    const { out, roles } = await filter(DUMP);
    const lines = out.split('\n');
    expect(lines).not.toContain('DROP ROLE IF EXISTS "botadmin";');
    // the only CREATE ROLE "botadmin" left is the one after \connect (not in the roles section)
    expect(lines.indexOf('CREATE ROLE "botadmin";')).toBeGreaterThan(lines.indexOf('\\connect template1'));
    expect(lines).toContain('DROP ROLE IF EXISTS "reporter";');
    expect(lines).toContain('ALTER ROLE "botadmin" WITH SUPERUSER;');
    expect(lines).toContain('DROP DATABASE IF EXISTS "bot" WITH (FORCE);');
    expect(lines).toContain('DROP DATABASE "postgres" WITH (FORCE);');
    expect(roles).toEqual([bytesOf('Jürgen'), 'botadmin', 'reporter', 'we"ird']);
  });

  it('recognises a non-ASCII superuser by its UTF-8 bytes', async () => {
    const { out, roles } = await filter('DROP ROLE IF EXISTS "Jürgen";\nCREATE ROLE "Jürgen";\nCREATE ROLE "x";\n', 'Jürgen');
    expect(out).toBe('CREATE ROLE "x";\n');
    expect(roles).toEqual([bytesOf('Jürgen'), 'x'].sort());
  });

  it("records roles as the dump's bytes, so two roles that text would show alike stay two, and one not UTF-8 stays itself", async () => {
    // A SQL_ASCII or LATIN1 session names a role in its own bytes: 0xE9 alone is not UTF-8, and
    // the same é in UTF-8 is another role. The restore drops every role not recorded here.
    const input = Buffer.concat([Buffer.from('CREATE ROLE "caf'), Buffer.from([0xe9]), Buffer.from('";\nCREATE ROLE "café";\n\\connect template1\n')]);
    for (const psql of [GUARDED, UNGUARDED]) expect((await run(input, [20], 'botadmin', true, psql)).roles).toEqual(['caf\u00e9', bytesOf('café')].sort());
  });

  it('passes COPY data and everything after the roles section through untouched', async () => {
    const { out } = await filter(DUMP);
    expect(out).toContain('COPY public.t (v) FROM stdin;\nDROP DATABASE IF EXISTS "x";\nCREATE ROLE "botadmin";\n\\.');
    expect(out).toContain('\\connect template1\nCREATE ROLE "botadmin";');
  });

  it('without FORCE support leaves DROP DATABASE as it is', async () => {
    const { out } = await filter(DUMP, 'botadmin', false);
    expect(out).toContain('DROP DATABASE IF EXISTS "bot";');
  });

  it('is byte-identical when there is nothing to change', async () => {
    const sql = 'SELECT 1;\n\\connect "a"\nCOPY t FROM stdin;\nx\ty\n\\.\n-- end';
    expect((await filter(sql, 'someone-else', true, 3)).out).toBe(sql);
  });

  it('keeps a multibyte character split across two chunks (the U+FFFD bug)', async () => {
    const input = Buffer.from('COPY t (v) FROM stdin;\nnaïve café ☕ Straße 🎉\n\\.\n', 'utf8');
    for (let cut = 1; cut < input.length; cut++) {
      expect((await passed(input, [cut])).equals(input)).toBe(true);
    }
  });

  it('keeps bytes that are not UTF-8 (LATIN1, SQL_ASCII, EUC) in DDL and in COPY data', async () => {
    const latin1 = Buffer.concat([
      Buffer.from("SET client_encoding = 'LATIN1';\nCOMMENT ON TABLE t IS '", 'latin1'),
      Buffer.from([0xe9, 0xe8, 0xff, 0x80]),
      Buffer.from("';\nCOPY t (v) FROM stdin;\n", 'latin1'),
      Buffer.from([0xe9, 0x01, 0xc3, 0x28, 0xa4, 0xa2, 0x0a]),
      Buffer.from('\\.\n', 'latin1'),
    ]);
    expect((await passed(latin1, [47, 48, 70, 71, 72])).equals(latin1)).toBe(true);
  });
});

/**
 * Property: any dump, cut at any chunk boundaries, comes out byte-identical except for the
 * documented rewrites. The expected output is built line by line next to the input, so the
 * property does not re-implement the filter.
 */
describe('PgRestoreFilter properties', () => {
  // No NUL: PostgreSQL text holds none, so no dump does (the filter refuses one, tested below).
  const anyByteExceptNewline = fc.integer({ min: 1, max: 255 }).filter((b) => b !== 0x0a);
  const bytesLine = fc.array(anyByteExceptNewline, { maxLength: 40 }).map((a) => Buffer.from(a));
  // Lines that look like statements the filter rewrites: inside COPY data they must stay as they are.
  const lookalike = fc
    .constantFrom('DROP DATABASE IF EXISTS "x";', 'DROP ROLE IF EXISTS "botadmin";', 'CREATE ROLE "botadmin";', 'COPY a FROM stdin;', '\\connect x', '\\.x', '\\', 'x\\.')
    .map((s) => Buffer.from(s));
  type Pair = [input: Buffer, expected: Buffer];
  const L = (s: string | Buffer): Buffer => Buffer.concat([typeof s === 'string' ? Buffer.from(s, 'latin1') : s, Buffer.from('\n')]);

  const copyBlock = fc.array(fc.oneof(bytesLine, lookalike), { maxLength: 8 }).map((rows): Pair[] => {
    const pairs: Pair[] = [[L('COPY "public"."t" ("v") FROM stdin;'), L('COPY "public"."t" ("v") FROM stdin;')]];
    for (const r of rows) {
      const row = r.equals(Buffer.from('\\.')) ? Buffer.from('\\.x') : r;
      pairs.push([L(row), L(row)]);
    }
    pairs.push([L('\\.'), L('\\.')]);
    return pairs;
  });
  // Statement lines the filter rewrites, and psql commands it refuses (tested on their own), are not "plain".
  // Statements as a dump holds them: they end with ';' and their quotes balance (none here).
  // No parentheses (an open one holds the `;`), colons (psql variables), carriage returns or digits (run into letters): their readings are tested on their own.
  const sqlByte = fc.integer({ min: 1, max: 255 }).filter((b) => ![0x0a, 0x0d, 0x27, 0x22, 0x24, 0x5c, 0x2d, 0x2f, 0x2a, 0x3b, 0x28, 0x29, 0x3a].includes(b) && (b < 0x30 || b > 0x39));
  const plain = fc
    .array(sqlByte, { maxLength: 40 })
    .map((a) => Buffer.concat([Buffer.from(a), Buffer.from(';')]))
    .filter((b) => !/^(DROP|CREATE|COPY)|program/i.test(b.toString('latin1')))
    .map((b): Pair[] => [[L(b), L(b)]]);
  const dropDb = fc.constantFrom('"bot"', '"we""ird db"', 'plain').map((n): Pair[] => [[L(`DROP DATABASE IF EXISTS ${n};`), L(`DROP DATABASE IF EXISTS ${n} WITH (FORCE);`)]]);
  // Run in SQL_ASCII (the filter's SET lines around them are left out of the comparison): their bytes as they came.
  const databaseDdl = fc
    .constantFrom('CREATE DATABASE "caf\xe9" WITH TEMPLATE = template0 ENCODING = \'LATIN1\';', 'ALTER DATABASE "caf\xc3\xa9" OWNER TO "r\xe9";')
    .map((line): Pair[] => [[L(line), L(line)]]);
  const body = fc.array(fc.oneof(plain, copyBlock, dropDb, databaseDdl), { maxLength: 12 });

  const dump = fc.tuple(fc.boolean(), body, body).map(([ownRole, roles, dbs]) => {
    const pairs: Pair[] = [];
    if (ownRole) pairs.push([L('DROP ROLE IF EXISTS "botadmin";'), Buffer.alloc(0)], [L('CREATE ROLE "botadmin";'), Buffer.alloc(0)]);
    pairs.push(...roles.flat(), [L('\\connect template1'), L('\\connect template1')], [L('CREATE ROLE "botadmin";'), L('CREATE ROLE "botadmin";')], ...dbs.flat());
    return { input: Buffer.concat(pairs.map((p) => p[0])), expected: Buffer.concat(pairs.map((p) => p[1])) };
  });

  it('any dump at any chunk boundaries: identical bytes but for the documented rewrites', async () => {
    await fc.assert(
      fc.asyncProperty(dump, fc.array(fc.nat(), { maxLength: 30 }), async ({ input, expected }, cuts) => {
        expect((await passed(input, cuts)).toString('hex')).toBe(expected.toString('hex'));
      }),
      { numRuns: 400 },
    );
  });

  it('one byte at a time gives the same as one chunk', async () => {
    await fc.assert(
      fc.asyncProperty(dump, async ({ input }) => {
        for (const psql of [GUARDED, UNGUARDED]) {
          const whole = await run(input, [], 'botadmin', true, psql);
          const bytewise = await run(input, every(1, input.length), 'botadmin', true, psql);
          expect(bytewise.out.equals(whole.out)).toBe(true);
          expect(bytewise.roles).toEqual(whole.roles);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('a dump whose last line has no newline loses nothing', async () => {
    await fc.assert(
      fc.asyncProperty(bytesLine, fc.nat(), async (last, cut) => {
        const input = Buffer.concat([Buffer.from('COPY t FROM stdin;\n'), last]);
        expect((await passed(input, [cut])).equals(input)).toBe(true);
      }),
    );
  });
});

describe('PgRestoreFilter refuses what pg_dumpall never writes', () => {
  it.each([
    ['\\! touch /tmp/pwned', '\\!'],
    ['\\o |sh', '\\o'],
    ['\\copy t to /etc/x', '\\copy'],
    ['  \\setenv PATH /tmp', '\\setenv'],
    ["COPY t TO PROGRAM 'sh -c id';", 'COPY … PROGRAM'],
    ["COPY t FROM PROGRAM 'id' ;", 'COPY … PROGRAM'],
  ])('%s', async (line, what) => {
    await expect(filter(`SELECT 1;\n\\connect "a"\n${line}\nSELECT 2;\n`)).rejects.toThrow(what);
  });

  it('keeps the commands pg_dumpall writes (its \\restrict lines stand for ours), and backslashes inside COPY data', async () => {
    const sql = '\\connect "a"\nCOPY t (v) FROM stdin;\n\\\\! not a command\n\\.\n';
    expect((await filter(`\\restrict abc\n${sql}\\unrestrict abc\n`)).out).toBe(sql);
  });
});

describe('PgRestoreFilter reads lines as psql does (quotes, comments, commands anywhere in a line)', () => {
  it.each([
    ['a command after a statement', 'SELECT 1; \\! id'],
    ['a command after a query', 'SELECT 1 \\g |id'],
    ['COPY … PROGRAM after another statement', "SELECT 1; COPY (SELECT 1) TO PROGRAM 'id';"],
    ['a fake COPY header inside a function body, then a command', 'CREATE FUNCTION f() RETURNS int AS $$\nCOPY "a"."b" FROM stdin;\n$$ LANGUAGE sql;\n\\! id'],
  ])('refuses %s', async (_what, sql) => {
    await expect(filter(`\\connect "a"\n${sql}\nSELECT 2;\n`)).rejects.toThrow(/refusing/);
  });

  it.each([
    ['a backslash inside a string', "COMMENT ON TABLE t IS 'C:\\\\path \\! not a command';"],
    ['a backslash in an E string', "SELECT E'it\\'s \\\\ fine';"],
    ['a backslash in a dollar-quoted body', "CREATE FUNCTION f() RETURNS text AS $body$\nSELECT '\\!';\n$body$ LANGUAGE sql;"],
    ['a backslash in a comment', '/* \\! not run */ SELECT 1;'],
    ['the word program quoted', 'CREATE TABLE "program" ("program" int);'],
  ])('keeps %s', async (_what, sql) => {
    const dump = `\\connect "a"\n${sql}\n`;
    expect((await filter(dump)).out).toBe(dump);
  });

  it('ends COPY data at \\. followed by a carriage return, as psql does', async () => {
    await expect(filter('\\connect "a"\nCOPY "s"."t" ("v") FROM stdin;\nrow\n\\.\r\n\\! id\n')).rejects.toThrow(/refusing/);
  });
});

describe("PgRestoreFilter keeps a name's bytes where the server would convert or refuse them", () => {
  // pg_dump --create of a LATIN1 database named café (its UTF-8 bytes, as a UTF8 session named
  // it), owned by a role whose name holds é and a line break: written in LATIN1, run before the
  // \connect, in the session of the database before it.
  const name = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
  const section = [
    "SET client_encoding = 'LATIN1';",
    `CREATE DATABASE "${name('café')}" WITH TEMPLATE = template0 ENCODING = 'LATIN1' LOCALE = 'C';`,
    `ALTER DATABASE "${name('café')}" OWNER TO "${name('rené')}`,
    'owner";',
    '\\encoding SQL_ASCII',
    `\\connect -reuse-previous=on "dbname='${name('café')}'"`,
    '',
  ].join('\n');
  const input = Buffer.from(`\\connect "a"\n${section}`, 'latin1');

  it("runs CREATE and ALTER DATABASE in SQL_ASCII, so the server takes the names as they are, then goes back to the dump's encoding", async () => {
    for (const psql of [GUARDED, UNGUARDED]) {
      const out = (await run(input, [30, 61, 130], 'botadmin', true, psql)).out.toString('latin1');
      const create = out.indexOf('CREATE DATABASE');
      const alter = out.indexOf('ALTER DATABASE');
      expect(out.lastIndexOf("SET client_encoding TO 'sql_ascii';\n", create)).toBe(create - "SET client_encoding TO 'sql_ascii';\n".length);
      expect(out.lastIndexOf("SET client_encoding TO 'sql_ascii';\n", alter)).toBe(alter - "SET client_encoding TO 'sql_ascii';\n".length);
      expect(out.slice(alter)).toMatch(/^ALTER DATABASE "[^"]*" OWNER TO "[^"]*\nowner";\nSET client_encoding TO 'latin1';\n/);
    }
    expect((await passed(input, [30, 61, 130])).equals(input)).toBe(true); // and nothing else of the dump changes
  });

  it('refuses bytes that are not UTF-8 in a statement the dump runs as UTF-8 (the server would stop the replay there), in both modes', async () => {
    const bad = Buffer.from('SET client_encoding = \'UTF8\';\n-- Name: caf\xe9, a comment psql does not send\nALTER ROLE "caf\xe9" WITH LOGIN;\n', 'latin1');
    for (const psql of [GUARDED, UNGUARDED]) await expect(run(bad, [40], 'botadmin', true, psql)).rejects.toThrow(/bytes that are not UTF-8 in a statement it runs as UTF-8/);
    for (const encoding of ['SQL_ASCII', 'LATIN1']) {
      const fine = Buffer.from(bad.toString('latin1').replace('UTF8', encoding), 'latin1');
      expect((await passed(fine, [40])).equals(fine)).toBe(true);
    }
    const comment = Buffer.from("SET client_encoding = 'UTF8';\n-- Name: caf\xe9\nSELECT 1;\n", 'latin1');
    expect((await passed(comment, [])).equals(comment)).toBe(true);
  });
});

describe('PgRestoreFilter keeps what pg_dumpall writes for databases with odd names', () => {
  it('\\encoding before \\connect -reuse-previous', async () => {
    const dump = '\\encoding SQL_ASCII\n\\connect -reuse-previous=on "dbname=\'crm data\'"\nSELECT 1;\n';
    expect((await filter(`\\unrestrict abc\n${dump.replace('SELECT', '\\restrict abc\nSELECT')}`)).out).toBe(dump);
  });
});

/** The filter with psql's \restrict guard on (KEY), all the input in one chunk unless cut. */
async function restricted(sql: string | Buffer, cuts: number[] = []): Promise<string> {
  const input = typeof sql === 'string' ? Buffer.from(sql, 'latin1') : sql;
  return (await run(input, cuts, 'botadmin', true, GUARDED)).out.toString('latin1');
}

describe("PgRestoreFilter with psql's own guard (\\restrict)", () => {
  it("starts restricted, drops the dump's own \\restrict lines and lets its \\connect and \\encoding through with our key", async () => {
    const dump =
      '\\restrict theirs\nSELECT 1;\n\\unrestrict theirs\n\\encoding SQL_ASCII\n\\connect -reuse-previous=on "dbname=\'crm data\'"\n\\restrict theirs\nCOPY t (v) FROM stdin;\n\\\\! data\n\\.\n\\unrestrict theirs\n';
    const opened = `\\unrestrict ${KEY}\n`;
    const closed = `\\restrict ${KEY}\n`;
    // psql back in SQL_ASCII before each command it runs unrestricted (a statement may have switched it to SJIS)
    const ascii = "SET client_encoding TO 'sql_ascii';\n";
    expect(await restricted(dump)).toBe(
      `${closed}SELECT 1;\n${ascii}${opened}\\encoding SQL_ASCII\n${closed}${ascii}${opened}\\connect -reuse-previous=on "dbname='crm data'"\n${closed}COPY t (v) FROM stdin;\n\\\\! data\n\\.\n`,
    );
  });

  it('takes only a key of 16 or more letters and digits', () => {
    expect(() => new PgRestoreFilter('u', true, { major: 17, restrictKey: 'short' })).toThrow(/16 or more/);
    expect(() => new PgRestoreFilter('u', true, { major: 17, restrictKey: 'has a space in it ok' })).toThrow(/16 or more/);
  });
});

// Found by a hostile-input hunt (each one ran `\! id` through psql 15.18 before).
describe('PgRestoreFilter reads pg_dumpall commands whole, in both modes', () => {
  it.each([
    ['a command after \\connect', '\\connect postgres \\! id'],
    ['a command after \\unrestrict', '\\unrestrict abc \\! id'],
    ['a command after \\encoding', '\\encoding UTF8 \\! id'],
    ['backquotes in \\connect (psql runs them in a shell)', '\\connect `id >/tmp/x; echo postgres`'],
    ['a variable in \\connect', '\\connect :DBNAME'],
    ['a whole connection string', '\\connect "host=203.0.113.9 user=postgres dbname=x"'],
    ['a connection string with more than a dbname', '\\connect -reuse-previous=on "dbname=\'x\' host=203.0.113.9"'],
    ['an encoding where 0x5C can end a character', '\\encoding SJIS'],
    ['any encoding but SQL_ASCII', '\\encoding UTF8'],
    ['a quoted name pg_dumpall would not write so', '\\connect "a b"'],
  ])('refuses %s', async (_what, line) => {
    for (const psql of [UNGUARDED, GUARDED]) await expect(run(Buffer.from(`SELECT 1;\n${line}\nSELECT 2;\n`, 'latin1'), [], 'botadmin', true, psql)).rejects.toThrow(/refusing/);
  });

  it.each([
    ['in a SQL line', Buffer.from("SELECT 1;\0'\n\\! id\n-- '\nSELECT 2;\n", 'latin1')],
    ['in COPY data', Buffer.from("COPY t (v) FROM stdin;\nx\0y\n\\.\n'\n\\.\n\\! id\n-- '\n", 'latin1')],
  ])('refuses a NUL byte %s (psql joins the next line to it)', async (_what, input) => {
    await expect(restricted(input)).rejects.toThrow(/NUL byte/);
  });

  it('ends COPY data at \\.\\r\\n even when a chunk ends right after the \\r', async () => {
    const input = Buffer.from('COPY t (v) FROM stdin;\nrow\n\\.\r\n\\! id\n', 'latin1');
    await expect(restricted(input, [input.indexOf('\\.\r') + 3])).rejects.toThrow(/refusing/);
    await expect(restricted(input, [input.indexOf('\\.\r') + 2])).rejects.toThrow(/refusing/);
  });
});

describe('psqlRestricts (which psql has \\restrict)', () => {
  it.each([
    ['psql (PostgreSQL) 17.12 (Debian 17.12-0+deb13u1)', true],
    ['psql (PostgreSQL) 17.6', true],
    ['psql (PostgreSQL) 17.5', false],
    ['psql (PostgreSQL) 16.10', true],
    ['psql (PostgreSQL) 16.9', false],
    ['psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)', true],
    ['psql (PostgreSQL) 15.13', false],
    ['psql (PostgreSQL) 14.19', true],
    ['psql (PostgreSQL) 13.22', true],
    ['psql (PostgreSQL) 13.21', false],
    ['psql (PostgreSQL) 12.22', false],
    ['psql (PostgreSQL) 18.1', true],
    ['psql (PostgreSQL) 18beta1', true],
    ['something else', false],
  ])('%s: %s', (line, has) => {
    expect(psqlRestricts(line)).toBe(has);
  });
});

/** The filter without psql's guard (psql 13.16), all the input in one chunk unless cut. */
async function unguarded(sql: string, major = 13, cuts: number[] = []): Promise<string> {
  return (await run(Buffer.from(sql, 'latin1'), cuts, 'botadmin', true, { major })).out.toString('latin1');
}

describe("PgRestoreFilter without psql's guard (a psql older than RESTRICT_SINCE says)", () => {
  it("puts psql back into the dump's client encoding and string syntax after every statement, COPY and \\connect", async () => {
    const dump =
      "SET client_encoding = 'LATIN1';\nSET standard_conforming_strings = off;\nCREATE TABLE t (\n  v text\n);\nCOPY t (v) FROM stdin;\na\n\\.\n\\connect \"b\"\nSET client_encoding = 'UTF8';\n-- done\n";
    const to = (enc: string, std: string) => `SET client_encoding TO '${enc}';\nSET standard_conforming_strings TO ${std};\n`;
    const ascii = "SET client_encoding TO 'sql_ascii';\n";
    expect(await unguarded(dump)).toBe(
      `${to('sql_ascii', 'on')}SET client_encoding = 'LATIN1';\n${to('latin1', 'on')}SET standard_conforming_strings = off;\n${to('latin1', 'off')}CREATE TABLE t (\n  v text\n);\n${to('latin1', 'off')}COPY t (v) FROM stdin;\na\n\\.\n${to('latin1', 'off')}${ascii}\\connect "b"\n${to('sql_ascii', 'on')}SET client_encoding = 'UTF8';\n${to('utf8', 'on')}-- done\n`,
    );
  });

  it('refuses a client encoding in which psql reads a byte after a lead byte as part of it', async () => {
    await expect(unguarded("SET client_encoding = 'SJIS';\n")).rejects.toThrow(/client encoding "SJIS".*refusing/);
  });

  // Each of these ran `\! id` through a psql without \restrict, or could have with another
  // psql version or server setting; the guard stops them in psql itself (tested in restore-safety).
  it.each([
    ['a carriage return ending a comment', 'SELECT 1; -- x\r\\! id\n', /refusing/],
    ['psql variable DBNAME (the name of a database the dump made)', 'SELECT :DBNAME;\n', /psql variable/],
    ['psql variable as a literal', "SELECT :'LAST_ERROR_MESSAGE';\n", /psql variable/],
    ['digits run into an E', "SELECT 1e'\\' ; \\! id';\n", /a number run into a letter/],
    ['a decimal run into an E', "SELECT 1.e'\\' ; \\! id';\n", /a number run into a letter/],
    ['a hexadecimal number (psql 16)', 'SELECT 0x1F;\n', /a number run into a letter/],
    ['a parameter run into a letter', 'SELECT $1a;\n', /a number run into a letter/],
    ['a statement after another on a line (it may switch the encoding)', "SELECT set_config('client_encoding', 'SJIS', false); SELECT 1;\n", /after another/],
    ['a variable-like name before a string', "SELECT :e'\\' ; \\! id';\n", /refusing/],
    // Found by a second hunt, each against psql 13.16, 15.18 or 17.12 without \restrict:
    ['COPY in another spelling (the server starts COPY data for any)', "CREATE TABLE t (v text);\ncopy t from stdin;\n'\n\\.\n\\echo PWNED\n';\n", /STDIN outside/],
    ['COPY header over two lines', "COPY t (v)\nFROM stdin;\n'\n\\.\n\\echo PWNED\n';\n", /STDIN outside/],
    ['a superuser line inside a statement (it was dropped)', 'WITH stdin AS (SELECT 1) SELECT 1 AS\nDROP ROLE IF EXISTS "botadmin";\nCOPY  FROM stdin;\n\\echo PWNED\n\\.\n', /refusing/],
    ['a real number run into a dollar quote (junk to psql 15)', 'SELECT 1e5$$\n\\echo PWNED\n$$;\n', /a number run into a letter/],
  ])('refuses %s', async (_what, sql, message) => {
    await expect(unguarded(sql)).rejects.toThrow(message);
  });

  // Read as psql does, with or without the guard.
  it.each([
    ['x$$ (a name to psql, not a dollar quote)', 'SELECT 1 AS x$$;\n\\! id\n$$;\n'],
    ['a ; inside parentheses before a COPY', 'SELECT (1;\nCOPY t FROM stdin;\n\\! id\n\\.\n);\n'],
    ['two statements on a COPY line', 'COPY t TO stdout; SELECT 1 FROM stdin;\n\\! id\n'],
    ['U& strings, which take no escapes', "SELECT U&'\\' ; \\! id';\n"],
  ])('refuses %s', async (_what, sql) => {
    for (const psql of [GUARDED, UNGUARDED]) await expect(run(Buffer.from(sql, 'latin1'), [], 'botadmin', true, psql)).rejects.toThrow(/refusing/);
  });

  it('refuses COPY inside what a BEGIN block makes one query (psql 14 and later)', async () => {
    const dump = "CREATE OR REPLACE FUNCTION public.begin() RETURNS int LANGUAGE sql AS 'select 1';\nCOPY t FROM stdin;\nSELECT 1 AS end;\n'\n\\.\n\\echo PWNED\n';\n";
    await expect(unguarded(dump, 15)).rejects.toThrow(/STDIN outside/);
  });

  it.each([
    ['FROM PROGRAM', "COPY t FROM PROGRAM 'id';\n"],
    ['TO PROGRAM after a comment', "COPY t (program) TO /* x */ PROGRAM 'id';\n"],
  ])('refuses COPY %s, and keeps a column or table named program', async (_what, sql) => {
    await expect(unguarded(sql)).rejects.toThrow(/COPY … PROGRAM/);
    const kept = 'CREATE TABLE public.program (program text);\nCOPY public.program (program) FROM stdin;\n\\.\n';
    expect(withoutOurs(await unguarded(kept))).toBe(kept);
  });

  it("follows the dump's own standard_conforming_strings: off, a backslash escapes the quote", async () => {
    await expect(unguarded("SET standard_conforming_strings = off;\nSELECT 'a\\';\nSELECT ' \\! id\n';\n")).rejects.toThrow(/the psql command \\!/);
  });

  it('drops its superuser lines only where a statement starts, so psql and the reading stay on the same lines', async () => {
    const dump = 'SELECT 1 AS\nDROP ROLE IF EXISTS "botadmin";\nSELECT 2;\n';
    expect(withoutOurs(await unguarded(dump))).toBe(dump);
  });

  it('reads BEGIN ... END of a SQL-standard function body as psql of that version does', async () => {
    const dump = 'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1;\nCOPY t FROM stdin;\n\\! id\n\\.\nEND;\n';
    // psql 14 and later: one statement up to END, so `\! id` is a command there.
    await expect(unguarded(dump, 14)).rejects.toThrow(/refusing/);
    // psql 13: the `;` ends the statement and the COPY's data holds the line.
    expect(withoutOurs(await unguarded(dump, 13))).toBe(dump);
  });

  it('keeps what a dump holds legitimately: BEGIN ATOMIC with CASE, strings, casts, slices, comments', async () => {
    const dump = [
      'CREATE FUNCTION public.f(a integer) RETURNS integer',
      '    LANGUAGE sql',
      '    BEGIN ATOMIC',
      '  SELECT CASE WHEN (a > 1) THEN 1 ELSE 2 END AS "case";',
      ' SELECT (ARRAY[1, 2, 3])[1:2] AS x;',
      'END;',
      "COMMENT ON FUNCTION public.f(integer) IS 'it''s \\\\ fine: $1 -- not a comment';",
      "COMMENT ON TABLE public.t IS 'a path: C:\\dir\\';",
      'CREATE TABLE public.courses (id integer, program text);',
      'COPY public.courses (id, program) FROM stdin;',
      '1\tmaths',
      '\\.',
      "CREATE VIEW public.v AS SELECT ('x'::text)::character varying AS c, E'\\'' AS q, 1.5e-07 AS r, .5 AS s, (1)..2;",
      '    LANGUAGE "plpgsql" COST 1e-07;',
      'CREATE FUNCTION public.g() RETURNS text LANGUAGE plpgsql AS $_$',
      "BEGIN RETURN 'a\\'; END",
      '$_$;',
      'COPY public.t (v) FROM stdin;',
      '\\N',
      '\\.',
      '',
    ].join('\n');
    for (const major of [13, 14, 17]) expect(withoutOurs(await unguarded(dump, major))).toBe(dump);
  });
});
