import { usageError } from '../errors.js';
import type { BackupType } from './manifest.js';

export interface Schedule {
  expr: string;
  type: Extract<BackupType, 'daily' | 'weekly' | 'monthly'>;
  words: string;
}

const NAMED: Record<string, Schedule> = {
  daily: { expr: '0 2 * * *', type: 'daily', words: 'every day at 02:00' },
  weekly: { expr: '0 2 * * 0', type: 'weekly', words: 'every Sunday at 02:00' },
  monthly: { expr: '0 2 1 * *', type: 'monthly', words: 'on the 1st of every month at 02:00' },
};

const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day of week', min: 0, max: 7 },
] as const;

/** Words for an installed expression: the named schedule it is, or the expression itself. */
export function describeSchedule(expr: string): string {
  return Object.values(NAMED).find((n) => n.expr === expr)?.words ?? `cron "${expr}"`;
}

/** `daily`, `weekly`, `monthly`, or a 5-field cron expression (with `type` for the backups it makes). */
export function parseSchedule(input: string, type?: Schedule['type']): Schedule {
  const named = NAMED[input.trim().toLowerCase()];
  if (named) return { ...named, type: type ?? named.type };
  const expr = input.trim().split(/\s+/).join(' ');
  parseCron(expr);
  return { expr, type: type ?? 'daily', words: describeSchedule(expr) };
}

type Parsed = Array<Set<number>>;

/** Validates and expands a 5-field expression: numbers, `*`, lists, ranges and steps. */
export function parseCron(expr: string): Parsed & { domStar: boolean; dowStar: boolean } {
  const parts = expr.trim().split(/\s+/);
  if (parts.length !== 5) throw usageError(`'${expr}' is not a schedule: use daily, weekly, monthly, or a cron expression with 5 fields ("30 3 * * *").`);
  const sets = parts.map((part, i) => {
    const f = FIELDS[i]!;
    const values = new Set<number>();
    for (const item of part.split(',')) {
      const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(item);
      if (!m) throw usageError(`'${item}' is not a valid ${f.name} in '${expr}'.`);
      const step = m[4] ? Number(m[4]) : 1;
      const lo = m[1] === '*' ? f.min : Number(m[2]);
      const hi = m[1] === '*' ? f.max : m[3] !== undefined ? Number(m[3]) : m[4] ? f.max : lo;
      if (lo < f.min || hi > f.max || lo > hi || step < 1) throw usageError(`'${item}' is out of range for ${f.name} (${f.min}-${f.max}) in '${expr}'.`);
      for (let v = lo; v <= hi; v += step) values.add(i === 4 && v === 7 ? 0 : v);
    }
    return values;
  });
  return Object.assign(sets, { domStar: parts[2] === '*', dowStar: parts[4] === '*' });
}

/**
 * The next time (after `from`, local time, as cron uses) the expression fires. Day of month
 * and day of week combine with OR when both are restricted, as in cron.
 */
export function nextRun(expr: string, from: Date): Date {
  const c = parseCron(expr);
  const [min, hour, dom, month, dow] = c;
  const t = new Date(from.getTime());
  t.setSeconds(0, 0);
  t.setMinutes(t.getMinutes() + 1);
  const limit = from.getTime() + 366 * 86_400_000 * 5;
  while (t.getTime() < limit) {
    const dayOk = c.domStar || c.dowStar ? dom!.has(t.getDate()) && dow!.has(t.getDay()) : dom!.has(t.getDate()) || dow!.has(t.getDay());
    if (!month!.has(t.getMonth() + 1) || !dayOk) {
      t.setDate(t.getDate() + 1);
      t.setHours(0, 0, 0, 0);
      continue;
    }
    if (!hour!.has(t.getHours())) {
      t.setHours(t.getHours() + 1, 0, 0, 0);
      continue;
    }
    if (!min!.has(t.getMinutes())) {
      t.setMinutes(t.getMinutes() + 1, 0, 0);
      continue;
    }
    return t;
  }
  throw usageError(`'${expr}' never fires.`);
}

/** How long after a scheduled time a run may be missing before status calls it overdue. */
export function expectedIntervalMs(expr: string, from: Date): number {
  const a = nextRun(expr, from);
  return nextRun(expr, a).getTime() - a.getTime();
}
