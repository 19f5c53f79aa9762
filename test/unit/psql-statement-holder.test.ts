import { describe, expect, it } from 'vitest';
import { HELD_MAX, PsqlLexer, StatementHolder, type HoldRule } from '../../src/drivers/psql-lexer.js';

/**
 * The one place that holds a statement over lines for both the restore filter and the dump
 * fingerprinter (each with its own rule); the readers' own tests (pg-newline-names) cover what
 * they make of it.
 */
function feed(rule: HoldRule, lines: string[]) {
  const lexer = new PsqlLexer();
  const holder = new StatementHolder<number>(lexer, rule);
  const out = lines.map((text, i) => holder.line(text, lexer.line(text), i, text.length + 1));
  return { out, rest: holder.end() };
}

const ROLES: HoldRule = { starts: /^CREATE ROLE /, within: 'quoted-name' };

describe('StatementHolder', () => {
  it("holds a statement whose quoted name holds line breaks until psql's statement ends, with what was kept of each line", () => {
    const { out, rest } = feed(ROLES, ['CREATE ROLE "a', 'b', 'c";', 'SELECT 1;']);
    expect(out[0]).toBeUndefined();
    expect(out[1]).toBeUndefined();
    expect(out[2]).toEqual({ texts: ['CREATE ROLE "a', 'b', 'c";'], kept: [0, 1, 2], goesOn: false, held: true });
    expect(out[3]).toEqual({ texts: ['SELECT 1;'], kept: [3], goesOn: false, held: false });
    expect(rest).toBeUndefined();
  });

  it("holds only the statements of the reader's rule, and only where psql starts a statement", () => {
    expect(feed(ROLES, ['CREATE TABLE "a', 'b" ();']).out[0]).toEqual({ texts: ['CREATE TABLE "a'], kept: [0], goesOn: true, held: false });
    expect(feed(ROLES, ['SELECT 1, (', 'CREATE ROLE "a', 'b";']).out[1]).toEqual({ texts: ['CREATE ROLE "a'], kept: [1], goesOn: true, held: false });
  });

  it('holds a string over lines only for a reader whose rule says so', () => {
    const lines = ['SELECT pg_catalog.setval(\'"s', 'q"\', 42, true);'];
    const starts = /^SELECT pg_catalog\.setval\(/;
    expect(feed({ starts, within: 'quoted-name' }, lines).out[0]).toEqual({ texts: [lines[0]], kept: [0], goesOn: false, held: false });
    expect(feed({ starts, within: 'quoted-text' }, lines).out[1]).toEqual({ texts: lines, kept: [0, 1], goesOn: false, held: true });
  });

  it('past HELD_MAX fails with the rule’s error, or hands over what it holds', () => {
    const lines = ['CREATE ROLE "a', 'x'.repeat(HELD_MAX), 'b";'];
    expect(() => feed({ ...ROLES, tooLong: () => new Error('too long') }, lines)).toThrow('too long');
    const { out } = feed(ROLES, lines);
    expect(out[1]).toEqual({ texts: lines.slice(0, 2), kept: [0, 1], goesOn: true, held: true });
    expect(out[2]).toMatchObject({ texts: ['b";'], held: false });
  });

  it('lets go at the end of the input of a statement the input ended inside', () => {
    expect(feed(ROLES, ['CREATE ROLE "a', 'b']).rest).toEqual({ texts: ['CREATE ROLE "a', 'b'], kept: [0, 1], goesOn: true, held: true });
  });
});
