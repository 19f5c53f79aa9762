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

// ---------------------------------------------------------------------------------------------
// The crontab line: what cron does to its command part (crontab(5), Debian cron's do_command.c).

/** The first control character in `value` (newline, CR, anything below 0x20, DEL), shown as \xNN. */
export function controlCharacterIn(value: string): string | undefined {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
  const c = /[\x00-\x1f\x7f]/.exec(value)?.[0];
  return c === undefined ? undefined : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

/**
 * One value as one shell word for a crontab line: single-quoted, and a `%` always right after
 * an empty `''`, so no `%` of the command follows a backslash (cron cannot pass `\%` through:
 * see `cronEscape`). Values must hold no control character (crontab is line-based).
 */
export const cronQuote = (value: string) => `'${value.replaceAll("'", "'\\''").replaceAll('%', "''%")}'`;

/**
 * A shell command as the command part of a crontab line: cron ends the command at the first `%`
 * and turns `\%` into `%`, so every `%` is written `\%`. A `%` right after a backslash cannot be
 * written at all (cron reads `\\%` as `\\` and an end), which `cronQuote` never produces.
 */
export function cronEscape(command: string): string {
  if (/\\%/.test(command)) throw new Error(`a % after a backslash cannot be written into a crontab line: ${command}`);
  return command.replaceAll('%', '\\%');
}

/**
 * What cron runs for the command part of a line, and what it writes to its stdin: up to the
 * first `%` not escaped by a backslash, `\%` read as `%` (any other backslash pair kept as is),
 * the rest after `%` as stdin with each further `%` a newline. Debian cron's rule, as a function.
 */
export function cronCommand(commandPart: string): { command: string; stdin?: string } {
  let out = '';
  let escaped = false;
  for (let i = 0; i < commandPart.length; i++) {
    const c = commandPart[i]!;
    if (escaped) {
      out = c === '%' ? `${out.slice(0, -1)}%` : out + c;
      escaped = false;
    } else if (c === '%') {
      return { command: out, stdin: commandPart.slice(i + 1).replaceAll('%', '\n') };
    } else {
      escaped = c === '\\';
      out += c;
    }
  }
  return { command: out };
}

/** The command part of one crontab line: what follows the five fields or the `@` shorthand. */
export function commandPartOf(line: string): string {
  const m = /^\s*(?:@\S+|(?:\S+[ \t]+){4}\S+)[ \t]+(.*)$/s.exec(line);
  return m?.[1] ?? '';
}

/**
 * The shell words of a command as stackvault writes it (single quotes, backslash escapes, a
 * `#` comment at the end), enough to read back its own line's values. Double quotes are not
 * stackvault's and are kept as plain characters.
 */
export function shellWords(command: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (c === "'") {
      const end = command.indexOf("'", i + 1);
      word = (word ?? '') + command.slice(i + 1, end < 0 ? undefined : end);
      i = end < 0 ? command.length : end;
    } else if (c === '\\' && i + 1 < command.length) {
      word = (word ?? '') + command[++i];
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === '#' && word === undefined) {
      break;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** Whether a line ends outside single quotes when read from `quoted` (inside quotes or not) on. */
function endsQuoted(line: string, quoted: boolean): boolean {
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) quoted = c !== "'";
    else if (c === '\\') i++;
    else if (c === "'") quoted = true;
  }
  return quoted;
}

/**
 * Where the entries `isOurs` claims are among a crontab's lines. An entry starts at a line
 * `startsEntry` accepts and, when a quoted value held a newline (lines an older stackvault
 * wrote), goes on over the following lines until its quotes close; it is ours when that last
 * line carries the marker. A marked line outside any such entry is one too.
 */
export function entrySpans(lines: readonly string[], startsEntry: (line: string) => boolean, isOurs: (line: string) => boolean): Array<{ start: number; end: number }> {
  const spans: Array<{ start: number; end: number }> = [];
  for (let i = 0; i < lines.length; i++) {
    if (startsEntry(lines[i]!)) {
      let end = i;
      let quoted = endsQuoted(lines[i]!, false);
      while (quoted && end + 1 < lines.length) quoted = endsQuoted(lines[++end]!, quoted);
      if (!quoted && isOurs(lines[end]!)) {
        spans.push({ start: i, end });
        i = end;
        continue;
      }
    }
    if (isOurs(lines[i]!)) spans.push({ start: i, end: i });
  }
  return spans;
}

/** The crontab's lines without the entries `entrySpans` finds; blank lines and everything else kept. */
export function withoutEntries(lines: readonly string[], startsEntry: (line: string) => boolean, isOurs: (line: string) => boolean): string[] {
  const spans = entrySpans(lines, startsEntry, isOurs);
  return lines.filter((_, i) => !spans.some((s) => i >= s.start && i <= s.end));
}
