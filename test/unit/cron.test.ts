import { describe, expect, it } from 'vitest';
import { nextRun, parseSchedule } from '../../src/core/cron.js';

describe('schedules', () => {
  it.each([
    ['daily', '0 2 * * *', 'daily', 'every day at 02:00'],
    ['weekly', '0 2 * * 0', 'weekly', 'every Sunday at 02:00'],
    ['monthly', '0 2 1 * *', 'monthly', 'on the 1st of every month at 02:00'],
    ['30  3 * * 1-5', '30 3 * * 1-5', 'daily', 'cron "30 3 * * 1-5"'],
  ])('%s', (input, expr, type, words) => {
    expect(parseSchedule(input)).toEqual({ expr, type, words });
  });

  it.each([['hourly'], ['* * * *'], ['61 * * * *'], ['* 24 * * *'], ['* * 0 * *'], ['*/0 * * * *'], ['5-1 * * * *'], ['a b c d e']])('rejects %j with exit 2', (input) => {
    expect(() => parseSchedule(input)).toThrow(expect.objectContaining({ exitCode: 2 }));
  });

  it('keeps an explicit type for a cron expression', () => {
    expect(parseSchedule('0 4 * * 6', 'weekly').type).toBe('weekly');
  });
});

describe('next run (process TZ is UTC in tests)', () => {
  it.each([
    ['0 2 * * *', '2026-11-21T01:59:00', '2026-11-21T02:00:00'],
    ['0 2 * * *', '2026-11-21T02:00:00', '2026-11-22T02:00:00'],
    ['0 2 * * 0', '2026-11-21T12:00:00', '2026-11-22T02:00:00'], // 2026-11-22 is a Sunday
    ['0 2 1 * *', '2026-12-15T00:00:00', '2027-01-01T02:00:00'], // across a year end
    ['*/15 * * * *', '2026-11-21T10:07:30', '2026-11-21T10:15:00'],
    ['0 0 29 2 *', '2026-03-01T00:00:00', '2028-02-29T00:00:00'], // next leap day
    ['0 9 13 * 5', '2026-11-21T00:00:00', '2026-11-27T09:00:00'], // dom OR dow: Friday 27th comes first
    ['* * * * 7', '2026-11-21T23:59:00', '2026-11-22T00:00:00'], // 7 is Sunday too
  ])('%s after %s is %s', (expr, from, expected) => {
    expect(nextRun(expr, new Date(`${from}Z`)).toISOString()).toBe(new Date(`${expected}Z`).toISOString());
  });
});
