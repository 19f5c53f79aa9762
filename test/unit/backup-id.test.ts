import { describe, expect, it } from 'vitest';
import { newestFirst, resolveBackup, type BackupRecord, type Catalog } from '../../src/core/catalog.js';
import type { Manifest } from '../../src/core/manifest.js';
import { parseBackupId } from '../../src/core/naming.js';
import { StackvaultError } from '../../src/errors.js';

const rec = (id: string, createdAt: string, type: Manifest['type'] = 'manual'): BackupRecord => ({
  path: `/b/${id}`,
  bytes: 0,
  manifest: {
    schemaVersion: 1,
    id,
    createdAt,
    completedAt: createdAt,
    type,
    comment: '',
    status: 'ok',
    tool: { name: 'stackvault', version: '0' },
    docker: { version: '', apiVersion: '' },
    host: '',
    services: [],
  },
});
const catalog: Catalog = {
  dir: '/b',
  backups: [
    rec('restore-point_backup_20261121_030000', '2026-11-21T03:00:00Z', 'restore-point'),
    rec('stackvault_backup_20261121_020000_2', '2026-11-21T02:00:01Z'),
    rec('stackvault_backup_20261121_020000', '2026-11-21T02:00:00Z'),
    rec('other_backup_20261121_020000', '2026-11-21T02:00:00Z'),
    rec('stackvault_backup_20261120_020000', '2026-11-20T02:00:00Z'),
  ],
  ahead: [],
  incomplete: [{ name: 'stackvault_backup_20261119_020000', path: '/b/x', reason: 'manifest.json has schemaVersion 99, newer than this stackvault understands (1)' }],
};
const code = (id: string) => {
  try {
    resolveBackup(catalog, id);
    return 0;
  } catch (e) {
    return (e as StackvaultError).exitCode;
  }
};

describe('resolving backup IDs', () => {
  it.each([
    ['latest', 'stackvault_backup_20261121_020000_2'], // restore points are not "latest"
    ['stackvault_backup_20261121_020000', 'stackvault_backup_20261121_020000'],
    ['20261120_020000', 'stackvault_backup_20261120_020000'],
    ['20261121_020000_2', 'stackvault_backup_20261121_020000_2'],
    ['20261121_030000', 'restore-point_backup_20261121_030000'],
  ])('%s -> %s', (id, expected) => {
    expect(resolveBackup(catalog, id).manifest.id).toBe(expected);
  });

  it.each([
    ['20261121_020000', 2, /ambiguous: it matches stackvault_backup_20261121_020000, other_backup_20261121_020000/],
    ['nope', 4, /No backup 'nope'/],
    ['20261119_020000', 5, /not a usable backup: .*newer/],
    ['', 2, /A backup ID is needed/],
  ])('%j fails with exit %i', (id, exit, message) => {
    expect(() => resolveBackup(catalog, id)).toThrow(message);
    expect(code(id)).toBe(exit);
  });

  // Property: any string is either resolved or refused with a StackvaultError; never a crash.
  it('never throws anything but a StackvaultError, whatever the input', () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const alphabet = 'stackvault_backup_0123456789-./\\ \u00e9\u2713*?%latest\n\t';
    for (let i = 0; i < 5000; i++) {
      const s = Array.from({ length: rand(40) }, () => alphabet[rand(alphabet.length)]).join('');
      try {
        resolveBackup(catalog, s);
      } catch (err) {
        expect(err).toBeInstanceOf(StackvaultError);
      }
      const parsed = parseBackupId(s);
      if (parsed) expect(s).toMatch(/_backup_\d{8}_\d{6}/);
    }
  });
});

describe('the one order of backups: newest first, by time', () => {
  it.each([
    // [what, [id, createdAt] in any order, expected order]
    [
      'by instant, not by text: .5 s after the second sorts after it',
      [
        ['a_backup_20261121_020000', '2026-11-21T02:00:00Z'],
        ['b_backup_20261121_020000', '2026-11-21T02:00:00.500Z'],
      ],
      ['b_backup_20261121_020000', 'a_backup_20261121_020000'],
    ],
    [
      'two in one second: _10 is newer than _2',
      [
        ['sv_backup_20261121_020000_2', '2026-11-21T02:00:00.000Z'],
        ['sv_backup_20261121_020000_10', '2026-11-21T02:00:00.000Z'],
        ['sv_backup_20261121_020000', '2026-11-21T02:00:00.000Z'],
      ],
      ['sv_backup_20261121_020000_10', 'sv_backup_20261121_020000_2', 'sv_backup_20261121_020000'],
    ],
    [
      'a date that is not strict sorts last, whatever its text',
      [
        ['sv_backup_20000109_000000', '9 Jan 2000'],
        ['sv_backup_20260801_000000', '2026-08-01T00:00:00Z'],
      ],
      ['sv_backup_20260801_000000', 'sv_backup_20000109_000000'],
    ],
    [
      'across years and months',
      [
        ['sv_backup_20261231_235959', '2026-12-31T23:59:59Z'],
        ['sv_backup_20270101_000000', '2027-01-01T00:00:00Z'],
        ['sv_backup_20260101_000000', '2026-01-01T00:00:00Z'],
      ],
      ['sv_backup_20270101_000000', 'sv_backup_20261231_235959', 'sv_backup_20260101_000000'],
    ],
  ])('%s', (_what, backups, order) => {
    for (const input of [backups, [...backups].reverse()]) {
      expect(
        input
          .map(([id, at]) => rec(id!, at!))
          .sort(newestFirst)
          .map((r) => r.manifest.id),
      ).toEqual(order);
    }
  });

  it('"latest" is the first in that order that is not a restore point', () => {
    const backups = [
      rec('sv_backup_20260801_000000', '2026-08-01T00:00:00Z'),
      rec('sv_backup_20260901_000000', '2026-09-01T00:00:00Z'),
      rec('restore-point_backup_20261001_000000', '2026-10-01T00:00:00Z', 'restore-point'),
    ];
    expect(resolveBackup({ dir: '/b', backups: backups.sort(newestFirst), ahead: [], incomplete: [] }, 'latest').manifest.id).toBe('sv_backup_20260901_000000');
  });
});
