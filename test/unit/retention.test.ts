import { describe, expect, it } from 'vitest';
import { applyAgeLimit, applyRetention, DEFAULT_POLICY, minusMonths, newestOk, type RetentionItem } from '../../src/core/retention.js';

const b = (id: string, type: RetentionItem['type'], iso: string, status: RetentionItem['status'] = 'ok'): RetentionItem => ({ id, type, createdAt: new Date(iso), status });
const kept = (items: RetentionItem[], now: string) =>
  applyRetention(items, DEFAULT_POLICY, new Date(now))
    .filter((d) => d.keep && !d.id.startsWith('fill'))
    .map((d) => d.id);
/**
 * `n` successful backups of `type` made just before `now`: with as many newer ones of its type as
 * the policy's number, only its age decides a backup's fate (the rows that test age limits).
 */
const fill = (type: RetentionItem['type'], n: number, now: string) =>
  Array.from({ length: n }, (_, i) => b(`fill-${type}-${i}`, type, new Date(new Date(now).getTime() - (i + 1) * 1000).toISOString()));

describe('retention policy', () => {
  it.each([
    // [what, backups, now, kept ids]
    [
      'daily: 7 days kept, the 8th day removed',
      [
        ...fill('daily', 7, '2026-11-21T03:00:00Z'),
        b('d0', 'daily', '2026-11-21T02:00:00Z'),
        b('d6', 'daily', '2026-11-15T02:00:00Z'),
        b('d7', 'daily', '2026-11-14T02:00:00Z'),
        b('d8', 'daily', '2026-11-13T02:00:00Z'),
      ],
      '2026-11-21T03:00:00Z',
      ['d0', 'd6'],
    ],
    [
      'daily: exactly 7 days old is removed, a second younger is kept',
      [...fill('daily', 7, '2026-11-21T00:00:00Z'), b('new', 'daily', '2026-11-21T00:00:00Z'), b('edge', 'daily', '2026-11-14T00:00:00Z'), b('inside', 'daily', '2026-11-14T00:00:01Z')],
      '2026-11-21T00:00:00Z',
      ['new', 'inside'],
    ],
    [
      'daily across a year end',
      [...fill('daily', 7, '2027-01-01T02:00:00Z'), b('jan1', 'daily', '2027-01-01T02:00:00Z'), b('dec26', 'daily', '2026-12-26T02:00:00Z'), b('dec25', 'daily', '2026-12-25T01:59:59Z')],
      '2027-01-01T02:00:00Z',
      ['jan1', 'dec26'],
    ],
    [
      'daily across the EU spring DST change (UTC: exactly 168 h)',
      [...fill('daily', 7, '2026-04-01T00:00:00Z'), b('now', 'daily', '2026-04-01T00:00:00Z'), b('mar25', 'daily', '2026-03-25T00:00:01Z'), b('mar24', 'daily', '2026-03-24T23:59:59Z')],
      '2026-04-01T00:00:00Z',
      ['now', 'mar25'],
    ],
    [
      'daily across the US autumn DST change',
      [...fill('daily', 7, '2026-11-05T12:00:00Z'), b('now', 'daily', '2026-11-05T12:00:00Z'), b('oct29', 'daily', '2026-10-29T12:00:01Z'), b('oct28', 'daily', '2026-10-28T12:00:00Z')],
      '2026-11-05T12:00:00Z',
      ['now', 'oct29'],
    ],
    [
      'weekly: 4 weeks',
      [...fill('weekly', 4, '2026-11-15T03:00:00Z'), b('w0', 'weekly', '2026-11-15T02:00:00Z'), b('w3', 'weekly', '2026-10-25T02:00:00Z'), b('w4', 'weekly', '2026-10-18T02:00:00Z')],
      '2026-11-15T03:00:00Z',
      ['w0', 'w3'],
    ],
    [
      'monthly: 12 calendar months',
      [...fill('monthly', 12, '2026-11-01T03:00:00Z'), b('m0', 'monthly', '2026-11-01T02:00:00Z'), b('m11', 'monthly', '2025-12-01T02:00:00Z'), b('m12', 'monthly', '2025-11-01T02:00:00Z')],
      '2026-11-01T03:00:00Z',
      ['m0', 'm11'],
    ],
    [
      'monthly: on March 31, 12 months back is March 31 of the year before',
      [...fill('monthly', 12, '2027-03-31T00:00:00Z'), b('keep', 'monthly', '2026-03-31T00:00:01Z'), b('drop', 'monthly', '2026-03-30T23:59:59Z')],
      '2027-03-31T00:00:00Z',
      ['keep'],
    ],
    [
      'pre-update: the last 5 by time, whatever their age',
      [1, 2, 3, 4, 5, 6, 7].map((n) => b(`p${n}`, 'pre-update', `2025-0${n}-01T00:00:00Z`)),
      '2026-11-21T00:00:00Z',
      ['p3', 'p4', 'p5', 'p6', 'p7'],
    ],
    [
      'manual and restore-point: never removed',
      [b('daily', 'daily', '2026-11-21T00:00:00Z'), b('man', 'manual', '2019-01-01T00:00:00Z'), b('rp', 'restore-point', '2019-01-01T00:00:00Z')],
      '2026-11-21T01:00:00Z',
      ['daily', 'man', 'rp'],
    ],
    [
      'the newest successful backup survives even when the policy would drop it',
      [b('old', 'daily', '2026-01-01T00:00:00Z'), b('failed', 'daily', '2026-11-20T00:00:00Z', 'partial')],
      '2026-12-01T00:00:00Z',
      ['old'],
    ],
    ['a partial backup is not "the newest successful"', [b('ok', 'daily', '2026-10-01T00:00:00Z'), b('partial', 'daily', '2026-11-01T00:00:00Z', 'partial')], '2026-11-21T00:00:00Z', ['ok']],
    ['leap day', [...fill('daily', 7, '2028-03-01T00:00:00Z'), b('feb29', 'daily', '2028-02-29T12:00:00Z'), b('feb22', 'daily', '2028-02-22T11:00:00Z')], '2028-03-01T00:00:00Z', ['feb29']],
  ])('%s', (_what, items, now, expected) => {
    expect(kept(items as RetentionItem[], now as string)).toEqual(expected);
  });

  it('a one-month policy on March 31 keeps back to February 28 (month-end clamping)', () => {
    const d = applyRetention(
      [b('new', 'manual', '2027-03-31T00:00:00Z'), b('keep', 'monthly', '2027-02-28T00:00:01Z'), b('drop', 'monthly', '2027-02-27T23:59:59Z')],
      { ...DEFAULT_POLICY, monthlyMonths: 1 },
      new Date('2027-03-31T00:00:00Z'),
    );
    expect(d.filter((x) => x.keep).map((x) => x.id)).toEqual(['new', 'keep']);
  });

  it('gives a reason for every decision, in input order', () => {
    const d = applyRetention(
      [b('a', 'daily', '2020-01-01T00:00:00Z'), b('n', 'manual', '2026-11-21T00:00:00Z'), b('old', 'weekly', '2020-01-01T00:00:00Z'), ...fill('weekly', 4, '2026-11-21T01:00:00Z')],
      DEFAULT_POLICY,
      new Date('2026-11-21T01:00:00Z'),
    );
    expect(d.slice(0, 4)).toEqual([
      { id: 'a', keep: true, reason: 'daily: older than 7 days, but one of the newest 7 successful daily backups' },
      { id: 'n', keep: true, reason: 'manual backups are never removed automatically' },
      { id: 'old', keep: false, reason: 'weekly: older than 4 weeks and 4 newer successful weekly backups exist' },
      { id: 'fill-weekly-0', keep: true, reason: 'newest successful backup' },
    ]);
  });

  it.each([
    ['2026-03-31T10:00:00Z', 1, '2026-02-28T10:00:00.000Z'],
    ['2028-03-31T10:00:00Z', 1, '2028-02-29T10:00:00.000Z'],
    ['2026-01-15T00:00:00Z', 12, '2025-01-15T00:00:00.000Z'],
    ['2026-01-31T00:00:00Z', 2, '2025-11-30T00:00:00.000Z'],
  ])('%s minus %i months is %s', (from, n, to) => {
    expect(minusMonths(new Date(from), n).toISOString()).toBe(to);
  });
});

describe('cleanup by age', () => {
  it('removes what is older than DAYS except protected types and the newest successful', () => {
    const items = [
      b('old-daily', 'daily', '2026-09-01T00:00:00Z'),
      b('old-manual', 'manual', '2026-01-01T00:00:00Z'),
      b('old-rp', 'restore-point', '2026-01-01T00:00:00Z'),
      b('old-pre', 'pre-update', '2026-09-02T00:00:00Z'),
      b('recent', 'weekly', '2026-11-10T00:00:00Z'),
    ];
    const d = applyAgeLimit(items, 30, new Date('2026-11-21T00:00:00Z'));
    expect(d.filter((x) => !x.keep).map((x) => x.id)).toEqual(['old-daily', 'old-pre']);
  });
  it('never removes everything: the newest successful stays even if old', () => {
    const d = applyAgeLimit([b('only', 'daily', '2020-01-01T00:00:00Z')], 30, new Date('2026-11-21T00:00:00Z'));
    expect(d[0]).toEqual({ id: 'only', keep: true, reason: 'newest successful backup' });
  });
});

describe('the newest successful backup, which every removal spares', () => {
  const NOW = '2026-12-01T00:00:00Z';
  it.each([
    ['the newest ok one', [b('old', 'daily', '2026-08-01T00:00:00Z'), b('new', 'daily', '2026-09-01T00:00:00Z')], 'new'],
    ['not a newer partial one', [b('ok', 'daily', '2026-08-01T00:00:00Z'), b('partial', 'daily', '2026-09-01T00:00:00Z', 'partial')], 'ok'],
    ['not one dated in the future', [b('real', 'daily', '2026-09-01T00:00:00Z'), b('planted', 'manual', '2099-12-31T00:00:00Z')], 'real'],
    ['one a little ahead of this clock', [b('real', 'daily', '2026-09-01T00:00:00Z'), b('skewed', 'daily', '2026-12-01T00:30:00Z')], 'skewed'],
    ['the first of two at the same instant', [b('a', 'daily', '2026-09-01T00:00:00Z'), b('b', 'daily', '2026-09-01T00:00:00Z')], 'a'],
    ['none when nothing succeeded', [b('p', 'daily', '2026-09-01T00:00:00Z', 'partial')], undefined],
  ])('is %s', (_what, items, id) => {
    expect(newestOk(items, new Date(NOW))?.id).toBe(id);
  });

  it('a backup dated in the future does not take the protection from the real ones (cleanup and prune)', () => {
    const items = [b('aug', 'daily', '2026-08-01T00:00:00Z'), b('sep', 'daily', '2026-09-01T00:00:00Z'), b('planted', 'daily', '2099-12-31T00:00:00Z')];
    const keptBy = (d: ReturnType<typeof applyAgeLimit>) => d.filter((x) => x.keep).map((x) => x.id);
    expect(keptBy(applyAgeLimit(items, 30, new Date(NOW)))).toEqual(['sep', 'planted']);
    const pruned = applyRetention([...items, ...fill('daily', 6, '2026-09-01T00:00:00Z')], DEFAULT_POLICY, new Date(NOW));
    // sep is the newest real one: the protection and the first place among the newest 7 dailies are its, not planted's.
    expect(pruned.find((d) => d.id === 'sep')).toEqual({ id: 'sep', keep: true, reason: 'newest successful backup' });
    expect(keptBy(pruned).filter((id) => !id.startsWith('fill'))).toEqual(['sep', 'planted']);
  });
});

describe('hunt: limits and records a removal must not misread', () => {
  const NOW = new Date('2026-12-01T00:00:00Z');
  const keptIds = (d: ReturnType<typeof applyRetention>) => d.filter((x) => x.keep).map((x) => x.id);
  const monthlies = [6, 7, 8, 9, 10, 11].map((m) => b(`m${m}`, 'monthly', `2026-${String(m).padStart(2, '0')}-01T00:00:00Z`));

  it.each([9_999_999, Number.MAX_SAFE_INTEGER])('--keep-monthly %i keeps every monthly backup (a limit past the range of a date is not "older than it")', (months) => {
    // 9 999 999 months back is before year -275 000, where a Date is NaN: every comparison with it
    // was false, so "keep" was false and every monthly backup but the newest was removed.
    expect(keptIds(applyRetention(monthlies, { ...DEFAULT_POLICY, monthlyMonths: months }, NOW))).toEqual(monthlies.map((m) => m.id));
  });

  it('a newest successful backup known to be damaged does not take the protection alone: the newest whole one is kept too', () => {
    const items: RetentionItem[] = [b('whole', 'daily', '2026-10-01T00:00:00Z'), { ...b('damaged', 'daily', '2026-10-05T00:00:00Z'), intact: false }];
    for (const d of [applyAgeLimit(items, 30, NOW), applyRetention(items, DEFAULT_POLICY, NOW)]) {
      expect(d).toEqual([
        { id: 'whole', keep: true, reason: 'newest successful backup whose files are whole (a newer one is damaged)' },
        { id: 'damaged', keep: true, reason: 'newest successful backup' },
      ]);
    }
    // Not known to be damaged (nobody looked, as for the restic repository's records): as before.
    expect(
      keptIds(
        applyAgeLimit(
          items.map((i) => ({ ...i, intact: undefined })),
          30,
          NOW,
        ),
      ),
    ).toEqual(['damaged']);
  });

  it('one backup listed twice takes one place among the last N pre-update backups', () => {
    const items = [1, 2, 3, 4, 5].map((n) => b(`p${n}`, 'pre-update', `2026-0${n}-01T00:00:00Z`));
    items.push(b('p5', 'pre-update', '2026-05-02T00:00:00Z')); // a second record of p5
    const d = applyRetention(items, { ...DEFAULT_POLICY, preUpdateKeep: 5 }, NOW);
    expect(d.every((x) => x.keep)).toBe(true);
  });
});

describe('hunt: a clock that lies, or a schedule that stopped, costs no history', () => {
  // Before, ages alone decided: one scheduled run under a clock that had jumped to 2031 removed
  // every daily, weekly and monthly backup but the newest. A backup now goes only when it is past
  // its age and as many newer successful ones of its type exist as the policy's number.
  const days = (from: string, n: number, type: RetentionItem['type'] = 'daily', status: RetentionItem['status'] = 'ok') =>
    Array.from({ length: n }, (_, i) => b(`${type}-${from}+${i}`, type, new Date(new Date(from).getTime() + i * 86_400_000).toISOString(), status));
  const history = [...days('2026-12-01T02:00:00Z', 5), b('weekly', 'weekly', '2026-11-29T02:00:00Z'), b('monthly', 'monthly', '2026-12-01T02:10:00Z'), b('pre', 'pre-update', '2026-12-05T02:10:00Z')];
  it.each<[string, RetentionItem[], string, string[]]>([
    // [what, backups, now, removed ids]
    ['a clock that jumped to 2031, right after its first backup: nothing of the real history goes', [...history, b('2031', 'daily', '2031-06-01T02:00:00Z')], '2031-06-01T02:01:00Z', []],
    [
      'the same clock a week later: the dailies have 7 newer ones and go; the weekly and the monthly stay',
      [...history, ...days('2031-06-01T02:00:00Z', 8)],
      '2031-06-08T02:01:00Z',
      [...days('2026-12-01T02:00:00Z', 5).map((x) => x.id), 'daily-2031-06-01T02:00:00Z+0'],
    ],
    [
      'a scheduler that stopped for three weeks, then one good run: the 7 newest dailies stay',
      [...days('2026-11-01T02:00:00Z', 7), b('back', 'daily', '2026-11-29T02:00:00Z')],
      '2026-11-29T02:01:00Z',
      ['daily-2026-11-01T02:00:00Z+0'],
    ],
    [
      'backups dated 2000 by a reset RTC, after the clock was fixed: the oldest by date, they go once 7 newer exist',
      [b('rtc-1', 'daily', '2000-01-01T02:00:00Z'), b('rtc-2', 'daily', '2000-01-02T02:00:00Z'), ...days('2026-11-24T02:00:00Z', 7)],
      '2026-11-30T03:00:00Z',
      ['rtc-1', 'rtc-2'],
    ],
    [
      'partial dailies do not stand in for a whole one',
      [b('whole', 'daily', '2026-10-01T02:00:00Z'), ...days('2026-11-20T02:00:00Z', 7, 'daily', 'partial'), b('man', 'manual', '2026-11-27T00:00:00Z')],
      '2026-11-30T03:00:00Z',
      ['daily-2026-11-20T02:00:00Z+0', 'daily-2026-11-20T02:00:00Z+1', 'daily-2026-11-20T02:00:00Z+2', 'daily-2026-11-20T02:00:00Z+3'],
    ],
    [
      'records dated ahead of this clock take no place among the newest (a repository written by a host whose clock ran ahead)',
      [b('real', 'daily', '2026-10-01T02:00:00Z'), ...days('2099-01-01T00:00:00Z', 7), b('man', 'manual', '2026-11-27T00:00:00Z')],
      '2026-11-30T03:00:00Z',
      [],
    ],
    [
      'weekly and monthly alike: 4 weeklies and 12 monthlies stay after a jump',
      [...days('2026-01-01T00:00:00Z', 5, 'weekly'), ...days('2025-01-01T00:00:00Z', 13, 'monthly')],
      '2031-01-01T00:00:00Z',
      ['weekly-2026-01-01T00:00:00Z+0', 'monthly-2025-01-01T00:00:00Z+0'],
    ],
  ])('%s', (_what, items, now, removed) => {
    const d = applyRetention(items, DEFAULT_POLICY, new Date(now));
    expect(d.filter((x) => !x.keep).map((x) => x.id)).toEqual(removed);
  });
});
