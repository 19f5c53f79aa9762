import { describe, expect, it } from 'vitest';
import { databaseArg, escapedName, fromHex, nameBytes, shownName, unescapedName } from '../../src/drivers/pg-names.js';

describe('PostgreSQL names as bytes', () => {
  it('names a database by its bytes in a URI, so no name is text a command line cannot carry or a connection string', () => {
    expect(databaseArg('bot_1.db')).toBe('postgresql:///bot_1.db');
    expect(databaseArg('caf\xe9')).toBe('postgresql:///caf%E9'); // 0xE9 alone: not UTF-8
    expect(databaseArg(nameBytes('café'))).toBe('postgresql:///caf%C3%A9');
    expect(databaseArg('dbname=app')).toBe('postgresql:///dbname%3Dapp');
    expect(databaseArg('postgresql://evil/x')).toBe('postgresql:///postgresql%3A%2F%2Fevil%2Fx');
    expect(databaseArg('a b%\x1e\'"\\')).toBe('postgresql:///a%20b%25%1E%27%22%5C');
  });

  it('reads hex as bytes, and shows bytes as text only where they are UTF-8, each other byte escaped', () => {
    expect(fromHex('636166e9')).toBe('caf\xe9');
    expect(shownName(fromHex('636166c3a9'))).toBe('café');
    // Before: caf\ufffd, the same as for any other byte that is not UTF-8 (and as a name holding U+FFFD itself).
    expect(shownName('caf\xe9')).toBe('caf\\xe9');
  });

  // As bytes through latin1: one character per byte.
  const names = [
    'caf\xe9', // LATIN1 é
    'caf\xff', // no UTF-8 byte at all
    nameBytes('caf\ufffd'), // a name that holds U+FFFD itself
    nameBytes('caf\\xe9'), // UTF-8 text that reads like an escape
    nameBytes('a\\\\b'),
    nameBytes('tab\there\x1e and\u0085next'), // control characters, C0 and C1
    nameBytes('caf\\u00e9'),
    '\xc3', // a sequence cut short
    '\xed\xa0\x80', // a UTF-16 surrogate written as UTF-8: not UTF-8
    '\xc0\xaf', // an overlong /
    nameBytes('😀 ß é'),
    `${nameBytes('é')}\xe9${nameBytes('😀')}\xf0\x9f`,
  ];
  it('escapedName gives each name its own text, and unescapedName its bytes back', () => {
    const shown = names.map(escapedName);
    expect(new Set(shown).size).toBe(names.length);
    for (const [i, name] of names.entries()) expect(unescapedName(shown[i]!), JSON.stringify(shown[i])).toBe(name);
    expect(shown.slice(0, 8)).toEqual(['caf\\xe9', 'caf\\xff', 'caf\ufffd', 'caf\\\\xe9', 'a\\\\\\\\b', 'tab\\u0009here\\u001e and\\u0085next', 'caf\\\\u00e9', '\\xc3']);
    expect(escapedName(nameBytes('😀 ß é'))).toBe('😀 ß é');
  });
});
