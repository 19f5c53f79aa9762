import { describe, expect, it } from 'vitest';
import { lineDifferences, normalisePgDump, parseCopyHeader } from '../support/pg-dump-normalise.js';

/** A small pg_dumpall-shaped script; `variant` makes the second dump of the same data. */
function dump(variant: 'original' | 'restored'): string {
  const restored = variant === 'restored';
  return [
    '--',
    '-- PostgreSQL database cluster dump',
    '--',
    '',
    `\\restrict ${restored ? 'Zk2b9' : 'aQ71x'}`,
    'CREATE ROLE botadmin;',
    `\\unrestrict ${restored ? 'Zk2b9' : 'aQ71x'}`,
    `-- Started on 2026-11-${restored ? '22 03:10:59' : '21 02:00:00'} UTC`,
    '\\connect regression',
    'CREATE TABLE public.parent (',
    '    id integer NOT NULL,',
    '    name text',
    ');',
    '',
    'CREATE TABLE public.child (',
    ...(restored
      ? ['    extra numeric,', '    CONSTRAINT child_extra_check CHECK ((extra > (0)::numeric))']
      : ['    CONSTRAINT child_extra_check CHECK ((extra > (0)::numeric)),', '    extra numeric']),
    ')',
    'INHERITS (public.parent);',
    '',
    'COPY public.parent (id, name) FROM stdin;',
    ...(restored ? ['2\tb', '1\ta\\tb'] : ['1\ta\\tb', '2\tb']),
    '\\.',
    '',
    restored ? 'COPY public.child (id, name, extra) FROM stdin;' : 'COPY public.child (extra, id, name) FROM stdin;',
    ...(restored ? ['4\t\\N\t2.5', '3\tc \xff\t1.5'] : ['1.5\t3\tc \xff', '2.5\t4\t\\N']),
    '\\.',
    '',
    'COPY public."we, ird"  FROM stdin;',
    '\\.',
    '\\connect other',
    'CREATE TABLE public.child (',
    '    a integer,',
    '    b integer',
    ');',
    'COPY public.child (a, b) FROM stdin;',
    '1\t2',
    '\\.',
    '',
  ].join('\n');
}

describe('normalisePgDump', () => {
  it('makes two dumps of the same data equal: restrict keys, timestamps, row order, inheritance-child column order', () => {
    expect(dump('restored')).not.toBe(dump('original'));
    expect(normalisePgDump(dump('restored'))).toBe(normalisePgDump(dump('original')));
  });

  it('drops only the random-key and timestamp lines', () => {
    const n = normalisePgDump(dump('original'));
    expect(n).not.toMatch(/restrict|Started on/);
    expect(n).toContain('-- PostgreSQL database cluster dump');
    expect(n).toContain('CREATE ROLE botadmin;');
  });

  it("reorders an inheritance child's columns by name, moving every field with its column", () => {
    const lines = normalisePgDump(dump('original')).split('\n');
    const at = lines.indexOf('COPY public.child (extra, id, name) FROM stdin;');
    expect(at).toBeGreaterThan(0);
    expect(lines.slice(at + 1, at + 3)).toEqual(['1.5\t3\tc \xff', '2.5\t4\t\\N']);
  });

  it('still sees changed data, a changed column order of an ordinary table, and byte-level changes', () => {
    const original = normalisePgDump(dump('original'));
    expect(normalisePgDump(dump('original').replace('2\tb', '2\tB'))).not.toBe(original);
    expect(normalisePgDump(dump('original').replace('1\ta\\tb', '1\ta\tb'))).not.toBe(original); // escaped tab vs a real one
    expect(normalisePgDump(dump('original').replace('c \xff', 'c \ufffd'))).not.toBe(original);
    const swapped = dump('original')
      .replace('    id integer NOT NULL,\n    name text', '    name text,\n    id integer NOT NULL')
      .replace('COPY public.parent (id, name)', 'COPY public.parent (name, id)')
      .replace('1\ta\\tb\n2\tb', 'a\\tb\t1\nb\t2');
    expect(normalisePgDump(swapped)).not.toBe(original);
    // a table in another database with the same name as an inheritance child is not reordered
    expect(normalisePgDump(dump('original').replace('COPY public.child (a, b) FROM stdin;\n1\t2', 'COPY public.child (b, a) FROM stdin;\n2\t1'))).not.toBe(original);
  });
});

describe('parseCopyHeader', () => {
  it('reads the table and columns as written, quotes included', () => {
    expect(parseCopyHeader('COPY public.t (a, "b, c", "d ""e""") FROM stdin;')).toEqual({ table: 'public.t', columns: ['a', '"b, c"', '"d ""e"""'] });
    expect(parseCopyHeader('COPY "my schema"."a (b)" (x) FROM stdin;')).toEqual({ table: '"my schema"."a (b)"', columns: ['x'] });
    expect(parseCopyHeader('COPY public.no_columns  FROM stdin;')).toEqual({ table: 'public.no_columns', columns: [] });
    expect(parseCopyHeader('COPY public.t (a) TO stdout;')).toBeUndefined();
  });
});

describe('lineDifferences', () => {
  it('lists lines in one text and not the other, counting repeats', () => {
    expect(lineDifferences('a\nb\nb\nc', 'c\nb\na\nd')).toEqual({ onlyBefore: ['b'], onlyAfter: ['d'] });
    expect(lineDifferences('x', 'x')).toEqual({ onlyBefore: [], onlyAfter: [] });
  });
});
