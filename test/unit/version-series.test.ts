import { describe, expect, it } from 'vitest';
import { atLeastPatchInSeries, firstFixedReleases } from '../../src/util/version-series.js';

/** Series keyed by major (PostgreSQL's \restrict) and by major.minor (MariaDB's sandbox command). */
const BY_MAJOR = { '13': 22, '14': 19, '15': 14, '16': 10, '17': 6 };
const BY_MINOR = { '10.5': 25, '10.6': 18, '10.11': 8, '11.0': 6, '11.1': 5, '11.2': 4, '11.4': 2 };

describe('atLeastPatchInSeries', () => {
  it.each([
    // a listed series: from its first fixed patch on
    [[17, 6], BY_MAJOR, true],
    [[17, 5], BY_MAJOR, false],
    [[16, 10], BY_MAJOR, true],
    [[16, 9], BY_MAJOR, false],
    [[13, 22], BY_MAJOR, true],
    [[13, 21], BY_MAJOR, false],
    [[13, 100], BY_MAJOR, true],
    // not listed: newer than every listed series has it, older does not
    [[18, 0], BY_MAJOR, true],
    [[12, 99], BY_MAJOR, false],
    [[10, 5, 25], BY_MINOR, true],
    [[10, 5, 24], BY_MINOR, false],
    [[10, 11, 8], BY_MINOR, true],
    [[10, 11, 7], BY_MINOR, false],
    [[11, 4, 2], BY_MINOR, true],
    [[11, 4, 1], BY_MINOR, false],
    // between listed series (ended before the fix), or before them
    [[10, 7, 99], BY_MINOR, false],
    [[10, 10, 99], BY_MINOR, false],
    [[11, 3, 99], BY_MINOR, false],
    [[10, 4, 99], BY_MINOR, false],
    // after them: began with the fix
    [[11, 5, 0], BY_MINOR, true],
    [[12, 0, 0], BY_MINOR, true],
    // not a version
    [[], BY_MAJOR, false],
    [[17], BY_MAJOR, false],
    [[17, Number.NaN], BY_MAJOR, false],
  ] as Array<[number[], Record<string, number>, boolean]>)('%j: %s', (version, table, has) => {
    expect(atLeastPatchInSeries(version, table)).toBe(has);
  });
});

describe('firstFixedReleases', () => {
  it('lists each series with its first fixed patch, newest series first', () => {
    expect(firstFixedReleases(BY_MAJOR)).toEqual(['17.6', '16.10', '15.14', '14.19', '13.22']);
    expect(firstFixedReleases(BY_MINOR)).toEqual(['11.4.2', '11.2.4', '11.1.5', '11.0.6', '10.11.8', '10.6.18', '10.5.25']);
  });
});
