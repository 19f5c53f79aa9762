import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PgDumpFingerprinter } from '../../src/drivers/pg-fingerprint.js';
import { PgRestoreFilter, type ReplayPsql } from '../../src/drivers/pg-restore-filter.js';
import { chunked } from '../support/chunks.js';

/**
 * Names holding a line break or a carriage return: pg_dump writes them as they are, so its COPY
 * header spans lines (`COPY "public"."cr" ("a` newline `b", "t") FROM stdin;`), and psql reads on
 * inside the quoted name. The restore's filter and the dump's fingerprint must read that
 * statement whole, as psql does, and nothing else as one.
 */
const KEY = 'k3y0fthisr3st0r3abcdef';
const GUARDED: ReplayPsql = { major: 17, restrictKey: KEY };
const UNGUARDED: ReplayPsql = { major: 13 };
const PWNED = '\\! touch /tmp/stackvault-pwned';

const q = (name: string) => `"${name.replaceAll('"', '""')}"`;
/** The filter's own lines (its \restrict and \unrestrict, its SET ... TO lines) left out. */
const withoutOurs = (out: string) => out.replace(new RegExp(`^(?:\\\\(?:un)?restrict ${KEY}|SET (?:client_encoding|standard_conforming_strings) TO [^\n]*;)\n`, 'gm'), '');

async function filtered(input: Buffer, cuts: number[], psql: ReplayPsql): Promise<{ out: Buffer; roles: string[] }> {
  const f = new PgRestoreFilter('botadmin', true, psql);
  const parts: Buffer[] = [];
  for await (const c of Readable.from(chunked(input, cuts)).pipe(f)) parts.push(c as Buffer);
  return { out: Buffer.concat(parts), roles: [...f.roles].sort() };
}

/** The filter's output in both modes without its own lines (the same in both, or the test fails). */
async function passed(input: Buffer, cuts: number[]): Promise<Buffer> {
  const [g, u] = await Promise.all([GUARDED, UNGUARDED].map((psql) => filtered(input, cuts, psql)));
  const out = withoutOurs(u!.out.toString('latin1'));
  expect(withoutOurs(g!.out.toString('latin1'))).toBe(out);
  return Buffer.from(out, 'latin1');
}

function fingerprint(input: Buffer, cuts: number[] = []) {
  const f = new PgDumpFingerprinter();
  for (const c of chunked(input, cuts)) f.push(c);
  return f.result();
}

/** Part names are the dump's bytes seen through latin1. */
const bytesOf = (s: string) => Buffer.from(s, 'utf8').toString('latin1');

// As pg_dump 17 wrote it for these tables (the COPY data of the first holds a psql command's look-alike).
const DUMP = Buffer.from(
  [
    'CREATE ROLE "reporter";',
    'CREATE ROLE "ro',
    'le";',
    '\\connect "bot"',
    'CREATE TABLE "public"."cr" (',
    '    "a',
    'b" integer,',
    '    "t" "text"',
    ');',
    'COPY "public"."cr" ("a',
    'b", "t") FROM stdin;',
    '1\t\\N',
    `2\t${PWNED}`,
    '\\.',
    'COPY "public"."cr\rtab" ("c\rd", "e\r',
    'f", "g\\h", "q""q", "se;mi:co", ":DBNAME") FROM stdin;',
    '1\t\\N\t2\t3\t4\t:x',
    '\\.',
    'COPY "s',
    'c"."t',
    'n" ("x", "y',
    'z") FROM stdin;',
    '1\t\\N',
    '\\.',
    'COPY "public"."x',
    '\\.',
    `${PWNED}`,
    'y"  FROM stdin;',
    '',
    '\\.',
    'COPY "public"."one\rline" ("c\r") FROM stdin;',
    '\\N',
    '\\.',
    'SELECT pg_catalog.setval(\'"public"."se',
    'q"\', 42, true);',
    '',
  ].join('\n'),
  'utf8',
);

describe('a COPY header over several lines (a name holds a line break)', () => {
  it('passes through byte for byte at every chunk boundary, in both modes, its rows read as data', async () => {
    for (let cut = 0; cut <= DUMP.length; cut++) expect((await passed(DUMP, [cut])).equals(DUMP)).toBe(true);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(), { maxLength: 30 }), async (cuts) => {
        expect((await passed(DUMP, cuts)).equals(DUMP)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('records a role the dump creates over two lines, so the restore does not drop it', async () => {
    for (const psql of [GUARDED, UNGUARDED]) expect((await filtered(DUMP, [17, 31], psql)).roles).toEqual(['reporter', 'ro\nle']);
  });

  it('fingerprints every table, sequence and role, at every chunk boundary', () => {
    const whole = fingerprint(DUMP);
    expect(whole.parts).toEqual(
      expect.objectContaining({
        'bot/table "public"."cr"': expect.stringMatching(/^\("a\nb", "t"\) n=2 /),
        'bot/table "public"."cr\rtab"': expect.stringMatching(/^\("c\rd", "e\r\nf", "g\\h", "q""q", "se;mi:co", ":DBNAME"\) n=1 /),
        'bot/table "s\nc"."t\nn"': expect.stringMatching(/^\("x", "y\nz"\) n=1 /),
        [`bot/table "public"."x\n\\.\n${PWNED}\ny"`]: expect.stringMatching(/^\(\) n=1 /),
        'bot/table "public"."one\rline"': expect.stringMatching(/^\("c\r"\) n=1 /),
        'bot/sequence "public"."se\nq"': '42 t',
        roles: JSON.stringify(['reporter', 'ro\nle']),
      }),
    );
    expect(Object.keys(whole.parts)).toHaveLength(8); // the five tables, the sequence, databases, roles
    for (let cut = 0; cut <= DUMP.length; cut++) expect(fingerprint(DUMP, [cut])).toEqual(whole);
  });
});

/**
 * Property: any names (line breaks, carriage returns, quotes, backslashes, `;`, `:`, non-ASCII)
 * and any rows, cut at any chunk boundaries: the filter passes the dump through unchanged in
 * both modes (a row read as SQL would be refused: they hold psql commands), and the
 * fingerprint finds each table with its columns and rows.
 */
describe('names of any characters, at any chunk boundaries', () => {
  const nameChar = fc.constantFrom('a', 'Z', ' ', '\n', '\r', '"', '\\', ';', ':', '.', ',', '(', "'", '-', '*', '/', 'é', '日', '$', '!');
  const name = fc.array(nameChar, { minLength: 1, maxLength: 12 }).map((a) => a.join(''));
  // Rows as COPY writes them never are `\.` alone; these look like SQL and psql commands.
  const row = fc.oneof(
    fc.constantFrom('\\N', PWNED, "'", '"', 'COPY "a"."b" ("c', '\\connect x', ') FROM stdin;', '\\\\.', '$$'),
    // COPY escapes a backslash, so no row starts with `\.` (nor `\z`, the live side's marker).
    fc.string({ maxLength: 20 }).filter((s) => !s.includes('\n') && !s.includes('\0') && !/^\\[.z]/.test(s)),
  );
  const table = fc.record({ schema: name, table: name, columns: fc.array(name, { maxLength: 4 }), rows: fc.array(row, { maxLength: 5 }) });

  const dumpOf = (tables: Array<{ schema: string; table: string; columns: string[]; rows: string[] }>) => {
    const lines = ['\\connect "bot"'];
    for (const t of tables) {
      const columns = t.columns.length ? ` (${t.columns.map(q).join(', ')}) ` : '  ';
      lines.push(`COPY ${q(t.schema)}.${q(t.table)}${columns}FROM stdin;`, ...t.rows, '\\.');
    }
    return Buffer.from(`${lines.join('\n')}\n`, 'utf8');
  };

  it('the filter passes them through unchanged', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(table, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 30 }), async (tables, cuts) => {
        const input = dumpOf(tables);
        expect((await passed(input, cuts)).toString('hex')).toBe(input.toString('hex'));
      }),
      { numRuns: 300 },
    );
  });

  it('the fingerprint finds every table with its columns and rows', () => {
    fc.assert(
      fc.property(fc.array(table, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 30 }), (tables, cuts) => {
        const input = dumpOf(tables);
        const fp = fingerprint(input, cuts);
        expect(fp).toEqual(fingerprint(input));
        const last = new Map(tables.map((t) => [bytesOf(`bot/table ${q(t.schema)}.${q(t.table)}`), t]));
        expect(Object.keys(fp.parts).sort()).toEqual([...last.keys(), 'databases', 'roles'].sort());
        for (const [part, t] of last) {
          expect(fp.parts[part]).toMatch(new RegExp(`^\\(${t.columns.length ? '(.|\\n|\\r)+' : ''}\\) n=${t.rows.length} `));
          expect(fp.parts[part]!.startsWith(`(${bytesOf(t.columns.map(q).join(', '))}) `)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('what is read as a header over several lines, and what is not', () => {
  const cases: Array<[what: string, dump: string, unguarded: RegExp | 'passes', guarded: RegExp | 'passes']> = [
    // A statement after the header's `;`: psql runs it before the data; not pg_dump's header.
    ['more after the `;`', `COPY "a"."b" ("x\n") FROM stdin; SELECT 1;\n\\N\n\\.\n`, /refusing/, /refusing/],
    ['a comment after the `;`', `COPY "a"."b" ("x\n") FROM stdin; -- c\n\\N\n\\.\n`, /STDIN outside/, /STDIN outside/],
    ['options pg_dump does not write', `COPY "a"."b" ("x\n") FROM stdin WITH (FORMAT csv);\n\\N\n\\.\n`, /STDIN outside/, /STDIN outside/],
    ['a name not quoted nor lower case', `COPY "a".B ("x\n") FROM stdin;\n\\N\n\\.\n`, /STDIN outside/, /STDIN outside/],
    ['another spelling of COPY', `copy "a"."b" ("x\n") from stdin;\n\\N\n\\.\n`, /STDIN outside/, /STDIN outside/],
    ['a line break outside quotes', `COPY "a"."b"\n("x\n") FROM stdin;\n\\N\n\\.\n`, /STDIN outside/, /STDIN outside/],
    // Opened on a whole COPY line: psql sends the COPY at the `;` and reads the rest of the line after its data.
    ['a quote opened after a COPY header', `COPY "a"."b" ("v") FROM stdin; "\n${PWNED}\n"\n\\.\n`, /after another/, /refusing/],
    // The dump ends inside the quoted name: psql sends what it holds (the server refuses it); the lines are not a header.
    ['a dump ending inside the name', `COPY "a"."b" ("x\n${PWNED}\nFROM stdin;\n`, 'passes', 'passes'],
    ['a dump ending inside the name, STDIN before it', `COPY "a"."b" FROM stdin "x\n${PWNED}\n`, /STDIN outside/, /STDIN outside/],
    ['a command after the name closes', `COPY "a"."b" ("x\n") \\! id\n`, /the psql command \\!/, /the psql command \\!/],
  ];

  it.each(cases)('%s', async (_what, dump, unguarded, guarded) => {
    const input = Buffer.from(`\\connect "bot"\n${dump}`, 'utf8');
    for (let cut = 0; cut <= input.length; cut += 5) {
      for (const [psql, expected] of [[UNGUARDED, unguarded] as const, [GUARDED, guarded] as const]) {
        if (expected === 'passes') expect(withoutOurs((await filtered(input, [cut], psql)).out.toString('latin1'))).toBe(input.toString('latin1'));
        else await expect(filtered(input, [cut], psql)).rejects.toThrow(expected);
      }
    }
  });

  it('a command or `\\.` on a line inside the quoted name is part of the name, as to psql', async () => {
    const input = Buffer.from(`\\connect "bot"\nCOPY "a"."b" ("x\n\\.\n${PWNED}\n\\connect postgres\n") FROM stdin;\n${PWNED}\n\\.\n`, 'utf8');
    expect((await passed(input, [20, 40])).equals(input)).toBe(true);
    expect(Object.keys(fingerprint(input).parts)).toContain('bot/table "a"."b"');
  });

  it('a header longer than any pg_dump writes is refused, in both modes', async () => {
    const long = `\\connect "bot"\nCOPY "a"."b" ("x\n${'y\n'.repeat(600_000)}") FROM stdin;\n\\N\n\\.\n`;
    const input = Buffer.from(long, 'utf8');
    await expect(filtered(input, [], UNGUARDED)).rejects.toThrow(/more than 1 MiB/);
    await expect(filtered(input, [], GUARDED)).rejects.toThrow(/more than 1 MiB/);
    expect(Object.keys(fingerprint(input).parts)).not.toContain('bot/table "a"."b"');
  });

  // A pattern that backtracked would not end within the test's timeout.
  it('a header of a megabyte of quotes is read (no pattern backtracks over it)', async () => {
    const input = Buffer.from(`\\connect "bot"\nCOPY "a"."b" ("${'""'.repeat(200_000)}\n${'"", '.repeat(50_000)}") FROM stdin;\n\\.\n`, 'utf8');
    expect((await passed(input, [])).equals(input)).toBe(true);
    fingerprint(input);
  });
});
