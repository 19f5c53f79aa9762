import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listCommand } from '../../src/commands/list.js';
import { schedulerStatusCommand } from '../../src/commands/scheduler-status.js';
import { readCatalog, resolveBackup } from '../../src/core/catalog.js';
import { namedLater } from '../../src/core/naming.js';
import { planCleanup, planPrune } from '../../src/core/removal.js';
import { DEFAULT_POLICY } from '../../src/core/retention.js';
import type { SchedulerStatus } from '../../src/core/scheduler.js';
import { formatAge } from '../../src/util/format.js';
import { writeFilesBackup } from '../support/manifests.js';

/**
 * Hunt: time. A backup made while this host's clock ran years ahead (and was set back since),
 * or copied in from a host whose clock does, was "not a usable backup: createdAt lies in the
 * future" (exit 5): whole, often the newest data there was, and it could not be restored,
 * verified or deleted. It is a backup now, set apart: named by its ID it is used; it is never
 * "latest", never the newest successful backup, and nothing removes it by age.
 */
const NOW = new Date('2026-12-06T12:00:00Z');
const REAL = ['stackvault_backup_20261204_020000', 'stackvault_backup_20261205_020000'];
// Far ahead, so that the real clock, which list's ages are measured with, never reaches it.
const AHEAD = 'stackvault_backup_20990601_020000';

async function directory(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'svt-clock-'));
  for (const id of [...REAL, AHEAD]) await writeFilesBackup(dir, id);
  return dir;
}

async function listed(dir: string, all = false): Promise<string> {
  const lines: string[] = [];
  const render = listCommand.render!;
  await render({ catalog: await readCatalog(dir, NOW) }, { out: process.stdout, json: false, say: (line) => lines.push(line) }, { all } as Parameters<typeof render>[2]);
  return lines.join('\n');
}

describe('a backup dated ahead of this clock', () => {
  it('is set apart from the backups, not refused as incomplete', async () => {
    const catalog = await readCatalog(await directory(), NOW);
    expect(catalog.backups.map((b) => b.manifest.id)).toEqual([REAL[1], REAL[0]]);
    expect(catalog.ahead.map((b) => b.manifest.id)).toEqual([AHEAD]);
    expect(catalog.incomplete).toEqual([]);
  });

  it('is found by its ID and by its timestamp, but is never "latest"', async () => {
    const catalog = await readCatalog(await directory(), NOW);
    expect(resolveBackup(catalog, AHEAD).path).toBe(join(catalog.dir, AHEAD));
    expect(resolveBackup(catalog, '20990601_020000').manifest.id).toBe(AHEAD);
    expect(resolveBackup(catalog, 'latest').manifest.id).toBe(REAL[1]);
  });

  it('alone in the directory, makes "latest" say so and name it, not "there are no backups" (and no fetch from restic goes past it)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'svt-clock-'));
    await writeFilesBackup(dir, AHEAD);
    const catalog = await readCatalog(dir, NOW);
    expect(() => resolveBackup(catalog, 'latest')).toThrow(
      expect.objectContaining({ exitCode: 4, message: expect.stringContaining(`are dated ahead of this clock (${AHEAD}), and "latest" is never one of them`) }),
    );
    const { localOrFetched } = await import('../../src/core/offsite.js');
    const before = { RESTIC_REPOSITORY: process.env.RESTIC_REPOSITORY, RESTIC_PASSWORD: process.env.RESTIC_PASSWORD };
    process.env.RESTIC_REPOSITORY = 'rest:http://127.0.0.1:9/never-asked';
    process.env.RESTIC_PASSWORD = 'unused';
    try {
      const fetches: string[] = [];
      await expect(localOrFetched(dir, 'latest', (m) => fetches.push(m))).rejects.toMatchObject({ exitCode: 4 });
      expect(fetches).toEqual([]);
    } finally {
      for (const [key, value] of Object.entries(before)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });

  it('is one of the backups again once this clock reaches it (within the hour two clocks may differ)', async () => {
    const dir = await directory();
    expect((await readCatalog(dir, new Date('2099-06-01T01:00:00Z'))).ahead).toEqual([]);
    expect((await readCatalog(dir, new Date('2099-06-01T00:59:59Z'))).ahead.map((b) => b.manifest.id)).toEqual([AHEAD]);
  });

  it('is never removed by cleanup or prune, which keep the newest real backup as if it were not there', async () => {
    const dir = await directory();
    const cleanup = await planCleanup(dir, 1, NOW);
    expect(cleanup.remove.map((r) => r.id)).toEqual([REAL[0]]);
    expect(cleanup.keep).toEqual([{ id: REAL[1], keep: true, reason: 'newest successful backup' }]);
    const prune = await planPrune(dir, { ...DEFAULT_POLICY, dailyDays: 1 }, NOW);
    expect(prune.remove.map((r) => r.id)).toEqual([REAL[0]]);
    expect(prune.keep).toEqual([{ id: REAL[1], keep: true, reason: 'newest successful backup' }]);
  });

  it('is listed, without --all, in a section that says what it is and how to use it', async () => {
    const text = await listed(await directory());
    expect(text).toMatch(/^2 backups in .*, newest first:/);
    expect(text).toContain(`Restore the newest with: ./bot.sh backup restore ${REAL[1]}`);
    expect(text).toContain(
      'UTC): made while this host\'s clock ran ahead, or on a host whose clock does. It is never "latest" and never removed by cleanup or prune; restore, verify or delete it by its ID:',
    );
    expect(text).toMatch(/\n1 backup dated ahead of this clock \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)/);
    expect(text).toMatch(new RegExp(`${AHEAD} {2}2099-06-01 02:00:00 UTC \\(\\d+d ahead of this clock\\) {2}daily`));
    expect(text).not.toMatch(/incomplete/);
  });
});

describe('ages and times another clock wrote', () => {
  it.each([
    ['2026-12-06T12:00:00Z', '0s ago'],
    ['2026-12-06T11:59:30Z', '30s ago'],
    ['2026-12-06T09:00:00Z', '3h ago'],
    ['2026-12-01T12:00:00Z', '5d ago'],
    // A few seconds ahead (two hosts' clocks) is "now"; beyond a minute it says so, not "0s ago".
    ['2026-12-06T12:00:30Z', '0s ago'],
    ['2026-12-06T12:05:00Z', '5m ahead of this clock'],
    ['2031-06-01T02:00:00Z', '1637d ahead of this clock'],
  ])('%s is %s', (iso, words) => {
    expect(formatAge(new Date(iso), NOW)).toBe(words);
  });

  it.each<[string, string[], string, string | undefined]>([
    ['nothing here', [], 'sv_backup_20261206_120000', undefined],
    ['only older backups', ['sv_backup_20261205_020000', 'sv_backup_20261206_115959'], 'sv_backup_20261206_120000', undefined],
    ['the same second (an _N twin is not later)', ['sv_backup_20261206_120000'], 'sv_backup_20261206_120000_2', undefined],
    ['one made by a clock that was ahead', ['sv_backup_20261205_020000', 'sv_backup_20310601_020000'], 'sv_backup_20261206_120000', 'sv_backup_20310601_020000'],
    [
      'the latest of several, whatever the prefix',
      ['a_backup_20261207_000000', 'restore-point_backup_20261208_000000', 'b_backup_20261206_130000'],
      'sv_backup_20261206_120000',
      'restore-point_backup_20261208_000000',
    ],
    ['a leftover of a run, or any other file, is no backup', ['.tmp-sv_backup_20310601_020000', 'operations.log'], 'sv_backup_20261206_120000', undefined],
  ])('a new backup named later than by this clock: %s', (_what, names, id, later) => {
    expect(namedLater(names, id)).toBe(later);
  });
});

describe('scheduler status after the clock was set back', () => {
  it('says that a last run dated ahead of this clock leaves "overdue" unknown', async () => {
    const lines: string[] = [];
    const status: SchedulerStatus = {
      installed: false,
      cronRunning: true,
      overdue: false,
      lastRunAhead: true,
      lastRun: { at: '2099-06-01T02:00:00.000Z', type: 'daily', result: 'ok', backupId: AHEAD, durationMs: 1 },
    };
    schedulerStatusCommand.render!(status, { out: process.stdout, json: false, say: (line) => lines.push(line) }, { dir: '/b' } as Parameters<NonNullable<typeof schedulerStatusCommand.render>>[2]);
    expect(lines.join('\n')).toMatch(
      /warning: the last run is dated ahead of this clock \(.*\), which was set back since, so whether the schedule is overdue cannot be told until the next run records its time\./,
    );
  });
});
