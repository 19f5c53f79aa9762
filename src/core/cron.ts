import { CronExpressionParser, type CronExpression } from 'cron-parser';
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

/**
 * cron's own shorthands (crontab(5)). `@reboot` is cron's too, but has no next run, so a
 * scheduled backup cannot be built on it. cron-parser's extra ones (`@weekdays`, `@minutely`)
 * are not cron's: crontab refuses them, so they are refused here as well.
 */
const MACROS: Record<string, { expr: string; type: Schedule['type'] }> = {
  '@yearly': { expr: '0 0 1 1 *', type: 'monthly' },
  '@annually': { expr: '0 0 1 1 *', type: 'monthly' },
  '@monthly': { expr: '0 0 1 * *', type: 'monthly' },
  '@weekly': { expr: '0 0 * * 0', type: 'weekly' },
  '@daily': { expr: '0 0 * * *', type: 'daily' },
  '@midnight': { expr: '0 0 * * *', type: 'daily' },
  '@hourly': { expr: '0 * * * *', type: 'daily' },
};

const FIELDS = [
  { name: 'minute', range: '0-59', names: false },
  { name: 'hour', range: '0-23', names: false },
  { name: 'day of month', range: '1-31', names: false },
  { name: 'month', range: '1-12 or jan-dec', names: true },
  { name: 'day of week', range: '0-7 or sun-sat', names: true },
] as const;

/** Words for an installed expression: the named schedule it is, or the expression itself. */
export function describeSchedule(expr: string): string {
  return Object.values(NAMED).find((n) => n.expr === expr)?.words ?? `cron "${expr}"`;
}

/** `daily`, `weekly`, `monthly`, or a cron expression (with `type` for the backups it makes). */
export function parseSchedule(input: string, type?: Schedule['type']): Schedule {
  const named = NAMED[input.trim().toLowerCase()];
  if (named) return { ...named, type: type ?? named.type };
  const expr = normalise(input);
  parseCron(expr);
  return { expr, type: type ?? MACROS[expr]?.type ?? 'daily', words: describeSchedule(expr) };
}

const normalise = (input: string) => {
  const expr = input.trim().split(/\s+/).join(' ');
  return expr.startsWith('@') ? expr.toLowerCase() : expr;
};

/**
 * The schedule part of one crontab line: `@daily` or the first five fields. Used to read
 * back the line `install` wrote.
 */
export function cronOfLine(line: string): string {
  const words = line.trim().split(/\s+/);
  return words[0]?.startsWith('@') ? words[0] : words.slice(0, 5).join(' ');
}

/**
 * Validates an expression the way crontab(5) reads it: five fields of numbers, `*`, lists,
 * ranges and steps, month and day names (`jan`, `mon-fri`), or one of cron's `@` shorthands.
 * Parsing and next-run arithmetic are cron-parser's. Anything crontab would refuse (seconds,
 * `L`, `#`, `H`, `?`) is refused here in one sentence, before it reaches the crontab.
 */
export function parseCron(input: string): CronExpression {
  const { expr, fields } = cronFields(input);
  try {
    return CronExpressionParser.parse(fields);
  } catch (err) {
    // Every field alone was valid: only a combination that never happens remains (30 February).
    throw usageError(`'${expr}' never fires: ${libraryReason(err)}.`);
  }
}

/** The five fields cron-parser reads, from a checked expression or shorthand. */
function cronFields(input: string): { expr: string; fields: string } {
  const expr = normalise(input);
  const hint = 'use daily, weekly, monthly, a cron expression with 5 fields ("30 3 * * mon-fri"), or @hourly, @daily, @weekly, @monthly, @yearly';
  let fields: string;
  if (expr.startsWith('@')) {
    if (expr === '@reboot') throw usageError(`'@reboot' runs only when the machine starts, so it has no next run: ${hint}.`);
    const macro = MACROS[expr];
    if (!macro) throw usageError(`'${expr}' is not one of cron's shorthands: ${hint}.`);
    fields = macro.expr;
  } else {
    const parts = expr.split(' ');
    if (parts.length !== 5) throw usageError(`'${expr}' is not a schedule: ${hint}.`);
    for (const [i, part] of parts.entries()) checkField(part, i, expr);
    fields = expr;
  }
  return { expr, fields };
}

/** One field, alone: cron's characters only, then cron-parser's own range checks. */
function checkField(part: string, index: number, expr: string): void {
  const f = FIELDS[index]!;
  const allowed = f.names ? /^[0-9*,/a-zA-Z-]+$/ : /^[0-9*,/-]+$/;
  const names = part.match(/[a-zA-Z]+/g) ?? [];
  const bad = !allowed.test(part) || names.some((n) => n.length !== 3);
  const alone = ['*', '*', '*', '*', '*'];
  alone[index] = part;
  let why = bad ? 'not a cron field' : undefined;
  if (!why) {
    try {
      CronExpressionParser.parse(alone.join(' '));
    } catch (err) {
      why = libraryReason(err);
    }
  }
  if (why) throw usageError(`'${part}' is not a valid ${f.name} (${f.range}) in '${expr}': ${why}.`);
}

/** cron-parser's message as the tail of our sentence. */
function libraryReason(err: unknown): string {
  const text = (err instanceof Error ? err.message : String(err)).replace(/^(Constraint|Validation) error, /, '').replace(/[.\s]+$/, '');
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/** The next time (after `from`, local time, as cron uses) the expression fires. */
export function nextRun(expr: string, from: Date): Date {
  parseCron(expr);
  return CronExpressionParser.parse(cronFields(expr).fields, { currentDate: from }).next().toDate();
}

/** How long after a scheduled time a run may be missing before status calls it overdue. */
export function expectedIntervalMs(expr: string, from: Date): number {
  const a = nextRun(expr, from);
  return nextRun(expr, a).getTime() - a.getTime();
}
