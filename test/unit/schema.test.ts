import { describe, expect, it } from 'vitest';
import { array, boolean, count, matching, object, optional, record, SchemaError, string, vetted } from '../../src/util/schema.js';
import { DRIVERS } from '../../src/drivers/registry.js';
import { sqliteDriver } from '../../src/drivers/sqlite.js';

const FILE = object({ path: string, entry: matching(/^[0-9]+-[\w.-]+$/, 'a plain name'), mode: optional(string), tables: record(count) });
const DETAILS = object({ files: array(FILE), paused: optional(boolean) });

/** The schemas that stand between a crafted manifest and the drivers: pure, table-driven. */
describe('details schemas', () => {
  const good = { files: [{ path: '/app/a.db', entry: '0-a.db', tables: { t: 3 } }], extra: 'kept' };

  it('accepts what a driver writes, keeping keys it does not name', () => {
    expect(DETAILS.parse(good, 'details')).toEqual(good);
  });

  it.each([
    [{ files: 'x' }, 'details.files is not a list, each a record of path, entry, mode, tables'],
    [{ files: [{ ...good.files[0], entry: '../../etc/x' }] }, 'details.files[0].entry is not a plain name'],
    [{ files: [{ ...good.files[0], tables: { t: -1 } }] }, 'details.files[0].tables.t is not a whole number of 0 or more'],
    [{ files: [{ ...good.files[0], tables: [] }] }, 'details.files[0].tables is not a record, each value a whole number of 0 or more'],
    [{ files: [{ ...good.files[0], tables: { t: 1.5 } }] }, 'details.files[0].tables.t is not a whole number of 0 or more'],
    [{ files: [{ ...good.files[0], path: 7 }] }, 'details.files[0].path is not a string'],
    [{ files: [{ ...good.files[0], mode: null }] }, 'details.files[0].mode is not a string'],
    [{ files: [], paused: 'yes' }, 'details.paused is not true or false'],
    [{}, 'details.files is not a list, each a record of path, entry, mode, tables'],
    [[], 'details is not a record of files, paused'],
    [null, 'details is not a record of files, paused'],
  ])('refuses %j: %s', (value, message) => {
    expect(() => DETAILS.parse(value, 'details')).toThrow(SchemaError);
    expect(() => DETAILS.parse(value, 'details')).toThrow(message);
  });

  it('every driver declares a schema that accepts an empty record or names what it needs', () => {
    for (const d of DRIVERS) {
      expect(typeof d.details.parse, d.name).toBe('function');
      try {
        d.details.parse({}, 'details');
      } catch (err) {
        expect(err, d.name).toBeInstanceOf(SchemaError);
      }
    }
  });
});

describe("the SQLite driver's details", () => {
  const before = { method: 'frozen copy, recovered on host', files: [{ path: '/app/data/app.db', entry: '0-app.db', owner: '0:0', mode: '644', tables: { events: 3 } }] };

  it('reads a backup written before the pre-copy (no preCopy) and one written with it', () => {
    expect(sqliteDriver.details.parse(before, 'details')).toEqual(before);
    const withPreCopy = { ...before, preCopy: { copiedWhilePaused: 1 } };
    expect(sqliteDriver.details.parse(withPreCopy, 'details')).toEqual(withPreCopy);
  });

  it('reads a restore point that found a database not created yet (absent), and nothing else as absent', () => {
    const withAbsent = { ...before, files: [...before.files, { path: '/app/data/new.db', absent: true }] };
    expect(sqliteDriver.details.parse(withAbsent, 'details')).toEqual(withAbsent);
    for (const odd of [{ path: '/app/data/new.db', absent: false }, { path: '/app/data/new.db', absent: 'yes' }, { absent: true }, { path: '/app/data/new.db' }]) {
      expect(() => sqliteDriver.details.parse({ files: [odd] }, 'details'), JSON.stringify(odd)).toThrow(SchemaError);
    }
  });

  it.each([{ copiedWhilePaused: -1 }, { copiedWhilePaused: 'one' }, {}, 3])('refuses preCopy %j', (preCopy) => {
    expect(() => sqliteDriver.details.parse({ ...before, preCopy }, 'details')).toThrow(/details\.preCopy/);
  });
});

describe('vetted strings', () => {
  const dataPath = vetted('a data path', (p) => (p.startsWith('/etc') ? 'inside the system directory /etc' : undefined));
  it.each([
    ['/data', undefined],
    ['/etc/cron.d', 'paths[0] is not a data path (inside the system directory /etc)'],
    [7, 'paths[0] is not a data path'],
  ])('%j', (value, message) => {
    if (message) expect(() => dataPath.parse(value, 'paths[0]')).toThrow(message);
    else expect(dataPath.parse(value, 'paths[0]')).toBe(value);
  });
});
