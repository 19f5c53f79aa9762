import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { murmur128 } from '../../src/util/murmur128.js';
import { describe, expect, it } from 'vitest';
import { connectTarget, PgDumpFingerprinter } from '../../src/drivers/pg-fingerprint.js';

const DUMP = Buffer.concat([
  Buffer.from('CREATE ROLE "botadmin";\nCREATE ROLE "Jürgen";\n\\connect "template1"\nCREATE DATABASE "bot" WITH TEMPLATE = template0;\n\\connect "bot"\n'),
  Buffer.from('COPY "public"."t" ("id", "v") FROM stdin;\n1\tnaïve ☕\n2\t\\N\n\\.\n'),
  Buffer.from('COPY "public"."z"  FROM stdin;\n\n\n\\.\n'),
  Buffer.from('SELECT pg_catalog.setval(\'"public"."t_id_seq"\', 42, true);\n'),
  Buffer.from(
    "SELECT pg_catalog.lo_create('16397');\nSELECT pg_catalog.lo_open('16397', 131072);\nSELECT pg_catalog.lowrite(0, '\\x68656c');\nSELECT pg_catalog.lowrite(0, '\\x6c6f');\nSELECT pg_catalog.lo_close(0);\n",
  ),
  Buffer.from('\\connect -reuse-previous=on "dbname=\'made later\'"\nCOPY "public"."t" ("id") FROM stdin;\n7\n\\.\n'),
]);

function fingerprint(bytes: Buffer, cuts: number[] = []) {
  const f = new PgDumpFingerprinter();
  const offsets = [...new Set([0, ...cuts.map((c) => c % (bytes.length + 1)), bytes.length])].sort((a, b) => a - b);
  for (let i = 1; i < offsets.length; i++) f.push(bytes.subarray(offsets[i - 1], offsets[i]));
  return f.result();
}

describe('the Postgres dump fingerprint', () => {
  it('names every table (zero-column ones too), sequence, large object, database and role', () => {
    const fp = fingerprint(DUMP);
    expect(Object.keys(fp.parts).sort()).toEqual([
      'bot/large object 16397',
      'bot/sequence "public"."t_id_seq"',
      'bot/table "public"."t"',
      'bot/table "public"."z"',
      'databases',
      'made later/table "public"."t"',
      'roles',
    ]);
    expect(fp.parts['bot/table "public"."z"']).toMatch(/^\(\) n=2 /);
    expect(fp.parts['bot/table "public"."t"']).toMatch(/^\("id", "v"\) n=2 /);
    expect(fp.parts['bot/sequence "public"."t_id_seq"']).toBe('42 t');
    expect(fp.parts['bot/large object 16397']).toBe('2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824'); // sha256("hello")
    expect(JSON.parse(fp.parts.roles!)).toEqual(['Jürgen', 'botadmin'].map((r) => Buffer.from(r).toString('latin1')).sort());
  });

  it('does not depend on row order', () => {
    const swapped = Buffer.from(DUMP.toString('latin1').replace('1\tnaïve ☕\n2\t\\N\n', '2\t\\N\n1\tnaïve ☕\n'.replace('naïve ☕', Buffer.from('naïve ☕').toString('latin1'))), 'latin1');
    expect(fingerprint(swapped)).toEqual(fingerprint(DUMP));
  });

  it('sees a changed byte in a row', () => {
    const changed = Buffer.from(DUMP);
    changed[DUMP.indexOf('naïve')] = 0x4e;
    expect(fingerprint(changed).parts['bot/table "public"."t"']).not.toBe(fingerprint(DUMP).parts['bot/table "public"."t"']);
  });

  it('is the same at any chunk boundaries', () => {
    const whole = fingerprint(DUMP);
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 40 }), (cuts) => {
        expect(fingerprint(DUMP, cuts)).toEqual(whole);
      }),
      { numRuns: 300 },
    );
  });

  it.each([
    ['\\connect "bot"', 'bot'],
    ['\\connect template1', 'template1'],
    ['\\connect "we""ird"', 'we"ird'],
    ['\\connect -reuse-previous=on "dbname=\'made later\'"', 'made later'],
    ["\\connect -reuse-previous=on \"dbname='it\\'s'\"", "it's"],
  ])('connect target of %s', (line, db) => expect(connectTarget(line)).toBe(db));
});

describe('the Postgres dump fingerprint reads COPY where psql does', () => {
  it('a line that looks like a COPY header inside a function body is not a table', () => {
    const dump = Buffer.from(
      '\\connect "bot"\nCREATE FUNCTION f() RETURNS void AS $$\nCOPY "public"."ghost" ("v") FROM stdin;\n$$ LANGUAGE sql;\nCOPY "public"."t" ("v") FROM stdin;\nx\n\\.\r\nSELECT 1;\n',
    );
    const f = new PgDumpFingerprinter();
    f.push(dump);
    const parts = Object.keys(f.result().parts);
    expect(parts).toContain('bot/table "public"."t"');
    expect(parts).not.toContain('bot/table "public"."ghost"');
    expect(f.result().parts['bot/table "public"."t"']).toMatch(/ n=1 /); // \.\r ended the block
  });
});

describe('fingerprint methods', () => {
  // Each row's digest summed into lanes, computed here without the fingerprint code.
  const laneSum = (rows: string[], digest: (b: Buffer) => Buffer, lanes: number) => {
    const sum = new Uint32Array(lanes);
    for (const r of rows) {
      const d = digest(Buffer.from(r));
      for (let i = 0; i < lanes; i++) sum[i] = (sum[i]! + d.readUInt32BE(i * 4)) >>> 0;
    }
    return `n=${rows.length} ${Buffer.from(sum.buffer).toString('hex')}`;
  };
  const rows = ['1\tnaïve ☕', '2\t\\N'];

  it('hashes rows with MurmurHash3 in the current method (v2)', () => {
    const fp = fingerprint(DUMP);
    expect(fp.method).toBe('postgres-copy-v2');
    expect(fp.parts['bot/table "public"."t"']).toBe(`("id", "v") ${laneSum(rows, murmur128, 4)}`);
  });

  it('computes a backup recorded with v1 (SHA-256 per row) the same way, so old backups still check', () => {
    const f = new PgDumpFingerprinter({ method: 'postgres-copy-v1', parts: {} });
    f.push(DUMP);
    const fp = f.result();
    expect(fp.method).toBe('postgres-copy-v1');
    expect(fp.parts['bot/table "public"."t"']).toBe(`("id", "v") ${laneSum(rows, (b) => createHash('sha256').update(b).digest(), 8)}`);
  });
});
