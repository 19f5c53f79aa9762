import { describe, expect, it } from 'vitest';
import { databaseArg, fromHex, nameBytes, shownName } from '../../src/drivers/pg-names.js';

describe('PostgreSQL names as bytes', () => {
  it('names a database by its bytes in a URI, so no name is text a command line cannot carry or a connection string', () => {
    expect(databaseArg('bot_1.db')).toBe('postgresql:///bot_1.db');
    expect(databaseArg('caf\xe9')).toBe('postgresql:///caf%E9'); // 0xE9 alone: not UTF-8
    expect(databaseArg(nameBytes('café'))).toBe('postgresql:///caf%C3%A9');
    expect(databaseArg('dbname=app')).toBe('postgresql:///dbname%3Dapp');
    expect(databaseArg('postgresql://evil/x')).toBe('postgresql:///postgresql%3A%2F%2Fevil%2Fx');
    expect(databaseArg('a b%\x1e\'"\\')).toBe('postgresql:///a%20b%25%1E%27%22%5C');
  });

  it('reads hex as bytes, and shows bytes as text only where they are UTF-8', () => {
    expect(fromHex('636166e9')).toBe('caf\xe9');
    expect(shownName(fromHex('636166c3a9'))).toBe('café');
    expect(shownName('caf\xe9')).toBe('caf\ufffd');
  });
});
