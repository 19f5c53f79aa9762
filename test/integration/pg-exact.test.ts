import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { execa } from 'execa';
import { newProjectName, PG_SUPERUSER, psql, startPostgres } from '../support/containers.js';
import { independentFingerprint } from '../support/pg.js';

/**
 * Byte-exact PostgreSQL restores on data whose bytes we did not choose one by one: every byte
 * value in LATIN1 and SQL_ASCII databases, multibyte UTF-8 text long enough to cross every
 * chunk boundary of the replay, bytea, large objects spanning several pages.
 *
 * Checked twice, by code that is not stackvault's: a per-table md5 over every row's text form
 * (computed by the server in the database's own encoding), and `pg_dumpall` before and after.
 */
const DATABASES = [
  { name: 'utf8db', encoding: 'UTF8' },
  { name: 'latin1db', encoding: 'LATIN1' },
  { name: 'asciidb', encoding: 'SQL_ASCII' },
] as const;

/**
 * pg_dumpall's bytes (through the docker CLI, never decoded: test tools that decode exec
 * output chunk by chunk garble multibyte text themselves) without the lines that differ on
 * every run (\restrict keys, comments).
 */
async function normalisedDumpall(pg: StartedTestContainer): Promise<Buffer> {
  const { stdout } = await execa('docker', ['exec', pg.getId(), 'pg_dumpall', '-U', PG_SUPERUSER, '--quote-all-identifiers'], { encoding: 'buffer', maxBuffer: 1 << 30 });
  const lines = splitLines(Buffer.from(stdout)).filter((l) => !/^\\(un)?restrict |^--/.test(l.subarray(0, 16).toString('latin1')));
  // Physical row order is not content (plain dumps list rows as stored): sort each COPY block.
  const out: Buffer[] = [];
  let block: Buffer[] | undefined;
  for (const l of lines) {
    if (block && l.equals(Buffer.from('\\.'))) {
      out.push(...block.sort(Buffer.compare));
      block = undefined;
    }
    if (block) block.push(l);
    else out.push(l);
    if (/^COPY .* FROM stdin;$/.test(l.toString('latin1'))) block = [];
  }
  return Buffer.concat(out.flatMap((l) => [l, Buffer.from('\n')]));
}

function splitLines(bytes: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  for (let start = 0; start <= bytes.length; ) {
    const nl = bytes.indexOf(0x0a, start);
    const end = nl < 0 ? bytes.length : nl;
    lines.push(bytes.subarray(start, end));
    start = end + 1;
  }
  return lines;
}

/** The first line where two dumps differ (short), for a readable failure. */
function firstDifferentLine(a: Buffer, b: Buffer): string {
  const la = splitLines(a);
  const lb = splitLines(b);
  const i = la.findIndex((l, n) => !lb[n] || !l.equals(lb[n]!));
  return i < 0 ? (la.length === lb.length ? 'equal' : `length ${la.length} vs ${lb.length}`) : `line ${i + 1}: ${la[i]!.toString('hex').slice(0, 200)} vs ${lb[i]?.toString('hex').slice(0, 200)}`;
}

describe('PostgreSQL restores are byte-exact in every encoding', () => {
  const project = newProjectName('pgexact');
  let pg: StartedTestContainer;
  let dir: string;
  let backup: Manifest;
  let seeded: string;
  let seededDump: Buffer;

  beforeAll(async () => {
    pg = await startPostgres({ project });
    for (const { name, encoding } of DATABASES) {
      await psql(pg, 'postgres', `CREATE DATABASE ${name} ENCODING '${encoding}' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`);
    }
    // Every byte value 1..255 as text in the single-byte encodings (NUL cannot be in text).
    for (const db of ['latin1db', 'asciidb']) {
      const enc = db === 'latin1db' ? 'LATIN1' : 'SQL_ASCII';
      await psql(
        pg,
        db,
        `CREATE TABLE bytes (id int PRIMARY KEY, t text, b bytea);
        INSERT INTO bytes SELECT i, convert_from(decode(lpad(to_hex(i), 2, '0'), 'hex'), '${enc}') || ' ' || convert_from(decode(lpad(to_hex(255 - (i % 200)), 2, '0'), 'hex'), '${enc}'), decode(lpad(to_hex(i), 2, '0'), 'hex') FROM generate_series(1, 255) i;
        INSERT INTO bytes SELECT 1000 + i, repeat(convert_from('\\xe9e8ff80a4'::bytea, '${enc}'), 3000 + i), '\\x00ff00'::bytea FROM generate_series(1, 40) i;`,
      );
    }
    // Multibyte UTF-8 rows of varying length: with ~20 MB of them every 64 KiB boundary falls inside some character.
    await psql(
      pg,
      'utf8db',
      `CREATE TABLE texts (id int PRIMARY KEY, body text, tags jsonb);
      INSERT INTO texts SELECT i, repeat('naïve café ☕ Straße 🎉 中文テキスト ', 1 + i % 37) || i, jsonb_build_object('k', 'värde ' || i, 'emoji', '😀')
      FROM generate_series(1, 40000) i;
      CREATE TABLE blobs (id int PRIMARY KEY, data bytea);
      INSERT INTO blobs SELECT i, decode(string_agg(lpad(to_hex((i * 7 + j) % 256), 2, '0'), ''), 'hex') FROM generate_series(1, 50) i, generate_series(0, 4095) j GROUP BY i;
      CREATE SEQUENCE counter START 100; SELECT setval('counter', 4242);
      SELECT lo_from_bytea(0, decode(string_agg(lpad(to_hex(j % 256), 2, '0'), ''), 'hex')) FROM generate_series(0, 300000) j;
      SELECT lo_from_bytea(0, ''::bytea);`,
    );
    seeded = await independentFingerprint(pg);
    seededDump = await normalisedDumpall(pg);
    dir = await tempDir('pgexact');
    const created = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(created.exitCode, String(created.stderr)).toBe(0);
    backup = JSON.parse(String(created.stdout)) as Manifest;
  });

  afterAll(async () => {
    await pg?.stop().catch(() => undefined);
  });

  it('records a content fingerprint with every table, sequence and large object', () => {
    const parts = Object.keys(backup.services[0]!.fingerprint!.parts);
    expect(parts).toEqual(
      expect.arrayContaining(['utf8db/table "public"."texts"', 'latin1db/table "public"."bytes"', 'asciidb/table "public"."bytes"', 'utf8db/sequence "public"."counter"', 'databases', 'roles']),
    );
    expect(parts.filter((p) => p.startsWith('utf8db/large object '))).toHaveLength(2);
  });

  it('restores every byte after the data was changed, proven by an independent fingerprint and pg_dumpall', async () => {
    await psql(pg, 'utf8db', "UPDATE texts SET body = 'x' WHERE id % 1000 = 0; DELETE FROM blobs WHERE id = 3; SELECT lo_unlink(min(oid)) FROM pg_largeobject_metadata; SELECT setval('counter', 1)");
    await psql(pg, 'latin1db', "UPDATE bytes SET t = 'plain' WHERE id = 233");
    await psql(pg, 'asciidb', 'DROP TABLE bytes');
    expect(await independentFingerprint(pg)).not.toBe(seeded);

    const r = await bot(['backup', 'restore', backup.id, '--dir', dir, '--yes', '--json']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const result = JSON.parse(String(r.stdout)) as { services: Array<{ status: string; check: string }> };
    expect(result.services).toEqual([expect.objectContaining({ status: 'restored', check: 'equal' })]);
    expect(await independentFingerprint(pg)).toBe(seeded);
    expect(firstDifferentLine(await normalisedDumpall(pg), seededDump)).toBe('equal');
    // Spot checks in each encoding's own bytes.
    expect(await psql(pg, 'latin1db', "SELECT encode(convert_to(t, 'LATIN1'), 'hex') FROM bytes WHERE id = 233")).toBe('e920de');
    expect(await psql(pg, 'utf8db', 'SELECT body FROM texts WHERE id = 1000')).toBe(`${'naïve café ☕ Straße 🎉 中文テキスト '.repeat(1 + (1000 % 37))}1000`);
  });

  it('a restore whose content differs from the backup fails with exit 5, names the table, and goes back', async () => {
    // A backup whose recorded fingerprint does not match its artifact stands for a replay that
    // changed data on the way: the check after the restore must catch it.
    const copy = await tempDir('pgexact-tampered');
    const created = await bot(['backup', 'create', '--json', '--project', project, '--dir', copy]);
    expect(created.exitCode, String(created.stderr)).toBe(0);
    const m = JSON.parse(String(created.stdout)) as Manifest;
    const file = join(copy, m.id, 'manifest.json');
    const manifest = JSON.parse(await readFile(file, 'utf8')) as Manifest;
    const fp = manifest.services[0]!.fingerprint!;
    fp.parts['latin1db/table "public"."bytes"'] = fp.parts['latin1db/table "public"."bytes"']!.replace(/n=\d+/, 'n=1');
    await writeFile(file, JSON.stringify(manifest));
    await psql(pg, 'utf8db', "INSERT INTO texts VALUES (999999, 'after the backup', '{}')");

    const r = await bot(['backup', 'restore', m.id, '--dir', copy, '--yes', '--json']);
    expect(r.exitCode, String(r.stderr)).toBe(5);
    const result = JSON.parse(String(r.stdout)) as { services: Array<{ status: string; mismatch?: string }> };
    expect(result.services[0]).toEqual(expect.objectContaining({ status: 'rolled-back', mismatch: expect.stringContaining('latin1db/table "public"."bytes" differs') }));
    expect(String(r.stderr)).toContain('latin1db/table "public"."bytes"');
    // Back on the restore point: the row written after the backup is there again.
    expect(await psql(pg, 'utf8db', 'SELECT body FROM texts WHERE id = 999999')).toBe('after the backup');
    // A restore point records no fingerprint; putting it back computed one from its artifact
    // and compared the server with it (else the service would be 'failed', not 'rolled-back').
    const point = JSON.parse(String(r.stdout)) as { restorePointId: string };
    const pointManifest = JSON.parse(await readFile(join(copy, point.restorePointId, 'manifest.json'), 'utf8')) as Manifest;
    expect(pointManifest.services[0]).not.toHaveProperty('fingerprint');
    expect(String(r.stderr)).toMatch(/postgres: computed the backup's content fingerprint from its artifact in [\d.]+ s \(the backup did not record one/);
  });
});
