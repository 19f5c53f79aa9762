import { describe, expect, it } from 'vitest';
import { cronOfLine, nextRun, parseSchedule } from '../../src/core/cron.js';

describe('schedules', () => {
  it.each([
    ['daily', '0 2 * * *', 'daily', 'every day at 02:00'],
    ['weekly', '0 2 * * 0', 'weekly', 'every Sunday at 02:00'],
    ['monthly', '0 2 1 * *', 'monthly', 'on the 1st of every month at 02:00'],
    ['30  3 * * 1-5', '30 3 * * 1-5', 'daily', 'cron "30 3 * * 1-5"'],
    // What cron itself accepts (each checked against Debian's crontab): names, shorthands, steps, lists.
    ['30 3 * * mon-fri', '30 3 * * mon-fri', 'daily', 'cron "30 3 * * mon-fri"'],
    ['0 4 * * MON-FRI', '0 4 * * MON-FRI', 'daily', 'cron "0 4 * * MON-FRI"'],
    ['@daily', '@daily', 'daily', 'cron "@daily"'],
    ['@Weekly', '@weekly', 'weekly', 'cron "@weekly"'],
    ['@monthly', '@monthly', 'monthly', 'cron "@monthly"'],
    ['@midnight', '@midnight', 'daily', 'cron "@midnight"'],
    ['0 0 1 jan,jul *', '0 0 1 jan,jul *', 'daily', 'cron "0 0 1 jan,jul *"'],
    ['*/20 9-17 * * 1-5', '*/20 9-17 * * 1-5', 'daily', 'cron "*/20 9-17 * * 1-5"'],
    ['0 2 * jan-mar sun', '0 2 * jan-mar sun', 'daily', 'cron "0 2 * jan-mar sun"'],
    ['0 0 * * mon-fri/2', '0 0 * * mon-fri/2', 'daily', 'cron "0 0 * * mon-fri/2"'],
    ['0 4 1-7 * sat', '0 4 1-7 * sat', 'daily', 'cron "0 4 1-7 * sat"'],
  ])('%s', (input, expr, type, words) => {
    expect(parseSchedule(input)).toEqual({ expr, type, words });
  });

  it.each([
    ['hourly', /'hourly' is not a schedule: use daily, weekly, monthly, a cron expression with 5 fields/],
    ['* * * *', /'\* \* \* \*' is not a schedule/],
    ['61 * * * *', /'61' is not a valid minute \(0-59\) in '61 \* \* \* \*'/],
    ['* 24 * * *', /'24' is not a valid hour \(0-23\)/],
    ['* * 0 * *', /'0' is not a valid day of month \(1-31\)/],
    ['*/0 * * * *', /'\*\/0' is not a valid minute/],
    ['5-1 * * * *', /'5-1' is not a valid minute/],
    ['a b c d e', /'a' is not a valid minute \(0-59\) in 'a b c d e': not a cron field/],
    ['0 2 * * 8', /'8' is not a valid day of week \(0-7 or sun-sat\)/],
    ['0 2 * * monday', /'monday' is not a valid day of week/],
    ['0 0 jan * *', /'jan' is not a valid day of month/],
    ['0 2 * foo *', /'foo' is not a valid month/],
    ['0 0 * * fri-mon', /'fri-mon' is not a valid day of week/],
    // cron-parser extensions that crontab refuses
    ['0 0 0 * * *', /is not a schedule/], // seconds
    ['0 0 L * *', /'L' is not a valid day of month/],
    ['0 0 * * 1#1', /'1#1' is not a valid day of week/],
    ['H * * * *', /'H' is not a valid minute/],
    ['? * * * *', /'\?' is not a valid minute/],
    ['@weekdays', /'@weekdays' is not one of cron's shorthands/],
    ['@reboot', /'@reboot' runs only when the machine starts, so it has no next run/],
    ['0 2 30 2 *', /'0 2 30 2 \*' never fires/],
  ])('rejects %j with exit 2 and one sentence', (input, message) => {
    let error: unknown;
    try {
      parseSchedule(input);
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ exitCode: 2 });
    const text = (error as Error).message;
    expect(text).toMatch(message);
    expect(text.split(/\.(\s|$)/).filter((s) => s.trim()).length, text).toBe(1); // one sentence
  });

  it('keeps an explicit type for a cron expression', () => {
    expect(parseSchedule('0 4 * * 6', 'weekly').type).toBe('weekly');
    expect(parseSchedule('@daily', 'monthly').type).toBe('monthly');
  });

  it('reads the schedule back from the crontab line it wrote', () => {
    expect(cronOfLine('30 3 * * mon-fri umask 077 && ./bot.sh scheduler run # stackvault-scheduler')).toBe('30 3 * * mon-fri');
    expect(cronOfLine('@weekly umask 077 && ./bot.sh scheduler run # stackvault-scheduler')).toBe('@weekly');
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
    ['30 3 * * mon-fri', '2026-11-21T12:00:00', '2026-11-23T03:30:00'], // Saturday -> Monday
    ['0 0 * * sat,sun', '2026-11-23T12:00:00', '2026-11-28T00:00:00'],
    ['0 6 1 jan,jul *', '2026-11-21T00:00:00', '2027-01-01T06:00:00'],
    ['@daily', '2026-11-21T12:00:00', '2026-11-22T00:00:00'],
    ['@weekly', '2026-11-21T12:00:00', '2026-11-22T00:00:00'],
    ['@monthly', '2026-11-21T12:00:00', '2026-12-01T00:00:00'],
    ['@yearly', '2026-11-21T12:00:00', '2027-01-01T00:00:00'],
    ['@hourly', '2026-11-21T12:30:00', '2026-11-21T13:00:00'],
    ['5-59/20 * * * *', '2026-11-21T12:26:00', '2026-11-21T12:45:00'],
  ])('%s after %s is %s', (expr, from, expected) => {
    expect(nextRun(expr, new Date(`${from}Z`)).toISOString()).toBe(new Date(`${expected}Z`).toISOString());
  });
});
