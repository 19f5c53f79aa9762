import { describe, expect, it } from 'vitest';
import { newBackupId, parseBackupId, safeFileStem, timestampPart } from '../../src/core/naming.js';

describe('backup ids', () => {
  it.each([
    ['2026-11-21T02:00:00Z', '20261121_020000'],
    ['2026-01-01T00:00:09Z', '20260101_000009'],
    ['2024-02-29T23:59:59.999Z', '20240229_235959'],
  ])('timestamp of %s is %s (UTC)', (iso, stamp) => {
    expect(timestampPart(new Date(iso))).toBe(stamp);
  });

  it.each([
    [[], 'sv_backup_20261121_020000'],
    [['sv_backup_20261121_020000'], 'sv_backup_20261121_020000_2'],
    [['sv_backup_20261121_020000', 'sv_backup_20261121_020000_2'], 'sv_backup_20261121_020000_3'],
    [['sv_backup_20261121_020000_2'], 'sv_backup_20261121_020000'],
  ])('with %j taken the next id is %s', (taken, expected) => {
    expect(newBackupId('sv', new Date('2026-11-21T02:00:00Z'), new Set(taken))).toBe(expected);
  });

  it.each([
    ['stackvault_backup_20261121_020000', { prefix: 'stackvault', stamp: '20261121_020000', seq: 1 }],
    ['my-bot_backup_20261121_020000_3', { prefix: 'my-bot', stamp: '20261121_020000', seq: 3 }],
    ['.tmp-stackvault_backup_20261121_020000', undefined],
    ['stackvault_backup_2026112_020000', undefined],
    ['../stackvault_backup_20261121_020000', undefined],
    ['', undefined],
  ])('parses %j', (name, expected) => {
    expect(parseBackupId(name)).toEqual(expected);
  });

  it.each([
    ['postgres', 'postgres'],
    ['my db', 'my_db'],
    ['../../etc/passwd', 'etc_passwd'],
    ['Zoë', 'Zoe_'],
    ['日本', 'service'],
    ['x'.repeat(200), 'x'.repeat(80)],
  ])('file stem of %j is %j', (name, stem) => {
    expect(safeFileStem(name)).toBe(stem);
  });
});
