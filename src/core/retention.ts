import { aheadOfClock, type BackupType } from './manifest.js';

export interface RetentionPolicy {
  dailyDays: number;
  weeklyWeeks: number;
  monthlyMonths: number;
  preUpdateKeep: number;
}

export const DEFAULT_POLICY: RetentionPolicy = { dailyDays: 7, weeklyWeeks: 4, monthlyMonths: 12, preUpdateKeep: 5 };

/** Never removed automatically. */
export const PROTECTED_TYPES: readonly BackupType[] = ['manual', 'restore-point'];

export interface RetentionItem {
  id: string;
  type: BackupType;
  createdAt: Date;
  status: 'ok' | 'partial';
  /**
   * False when the backup is known not to be whole although its manifest says ok: an artifact
   * missing or of another size than recorded, or its last verification failed. Undefined when
   * nobody looked (the restic repository's records, backups older than the newest whole one).
   */
  intact?: boolean;
}

export interface Decision {
  id: string;
  keep: boolean;
  reason: string;
}

const DAY = 86_400_000;

/** `date` minus whole calendar months in UTC, clamped to the month's last day (Mar 31 - 1 = Feb 28/29). */
export function minusMonths(date: Date, months: number): Date {
  const y = date.getUTCFullYear();
  const m = date.getUTCMonth() - months;
  const target = new Date(Date.UTC(y, m, 1, date.getUTCHours(), date.getUTCMinutes(), date.getUTCSeconds(), date.getUTCMilliseconds()));
  const lastDay = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(date.getUTCDate(), lastDay));
  return target;
}

/** Dated ahead of `now` by more than two clocks may differ (as the catalog's `ahead`). */
const ahead = (b: RetentionItem, now: Date) => aheadOfClock(b.createdAt, now);

/**
 * The backup that every removal spares: the newest whose status is ok. One dated in the future
 * (beyond a clock's skew) cannot be it: the catalog sets such a backup apart (never removed by
 * age), and a planted one must not move this protection away from the real newest backup.
 */
export function newestOk(backups: readonly RetentionItem[], now: Date): RetentionItem | undefined {
  return backups.filter((b) => b.status === 'ok' && !ahead(b, now)).reduce<RetentionItem | undefined>((best, b) => (!best || b.createdAt.getTime() > best.createdAt.getTime() ? b : best), undefined);
}

/**
 * The backups every removal spares, with why: the newest successful one and, when its files are
 * known to be damaged (intact false), also the newest successful one not known to be: a manifest
 * saying ok over a missing artifact must not cost the last backup that can be restored.
 */
function spared(backups: readonly RetentionItem[], now: Date): Map<RetentionItem, string> {
  const newest = newestOk(backups, now);
  const whole = newestOk(
    backups.filter((b) => b.intact !== false),
    now,
  );
  const spare = new Map<RetentionItem, string>();
  if (newest) spare.set(newest, 'newest successful backup');
  if (whole && whole !== newest) spare.set(whole, 'newest successful backup whose files are whole (a newer one is damaged)');
  return spare;
}

/**
 * Whether a backup `age` ms old is past `limitMs`: only when both are numbers and it is. A limit
 * too large for a date (`--keep-monthly 9999999` reaches before year -275 000, where a Date is
 * NaN) keeps everything, as a large number means, instead of comparing false and removing all.
 */
const olderThan = (age: number, limitMs: number) => Number.isFinite(age) && Number.isFinite(limitMs) && age >= limitMs;

/**
 * Each backup's place among `backups` that `counts`, newest first: one place per backup, not per
 * record (a restic repository may hold two records of one upload).
 */
function newestRanks(backups: readonly RetentionItem[], counts: (b: RetentionItem) => boolean): Map<string, number> {
  const rank = new Map<string, number>();
  for (const b of backups.filter(counts).sort((x, y) => y.createdAt.getTime() - x.createdAt.getTime())) {
    if (!rank.has(b.id)) rank.set(b.id, rank.size);
  }
  return rank;
}

/**
 * Which backups the policy keeps, each with the reason. Pure: (backups, policy, now) -> decisions,
 * one per backup, in input order. Ages are measured in UTC, so DST changes do not move them.
 * The newest successful backup is always kept, whatever its type and age.
 *
 * Ages depend on this clock agreeing with the clocks that dated the backups, and nothing here can
 * tell a clock that jumped years ahead (or backups dated by one years behind) from a long pause:
 * by age alone, one run under such a clock removed every daily, weekly and monthly backup but
 * the newest. So a daily, weekly or monthly backup goes only when it is past its age AND at least
 * as many newer successful ones of its type exist as the policy's number (7 daily backups for 7
 * days): with one backup of a type per day, week or month, as scheduled, that is the same rule,
 * and a lying clock, or a schedule that stopped for a while, costs no history.
 */
export function applyRetention(backups: readonly RetentionItem[], policy: RetentionPolicy, now: Date): Decision[] {
  const spare = spared(backups, now);
  const preUpdateRank = newestRanks(backups, (x) => x.type === 'pre-update');
  // Among the successful ones of a type, not dated ahead of this clock (as newestOk): a partial
  // backup does not stand in for a whole one, and a future one is not newer than the real ones.
  const okRank = (type: BackupType) => newestRanks(backups, (x) => x.type === type && x.status === 'ok' && !ahead(x, now));
  const ranks = { daily: okRank('daily'), weekly: okRank('weekly'), monthly: okRank('monthly') };
  const byAge = (b: RetentionItem, type: 'daily' | 'weekly' | 'monthly', limitMs: number, limit: number, unit: string): Decision => {
    const age = now.getTime() - b.createdAt.getTime();
    if (!olderThan(age, limitMs)) return { id: b.id, keep: true, reason: `${type}: younger than ${limit} ${unit}` };
    const rank = ranks[type].get(b.id);
    if (rank !== undefined && rank < limit) return { id: b.id, keep: true, reason: `${type}: older than ${limit} ${unit}, but one of the newest ${limit} successful ${type} backups` };
    return { id: b.id, keep: false, reason: `${type}: older than ${limit} ${unit}${rank !== undefined ? ` and ${limit} newer successful ${type} backups exist` : ''}` };
  };
  return backups.map((b) => {
    const why = spare.get(b);
    if (why) return { id: b.id, keep: true, reason: why };
    if (PROTECTED_TYPES.includes(b.type)) return { id: b.id, keep: true, reason: `${b.type} backups are never removed automatically` };
    switch (b.type) {
      case 'daily':
        return byAge(b, 'daily', policy.dailyDays * DAY, policy.dailyDays, 'days');
      case 'weekly':
        return byAge(b, 'weekly', policy.weeklyWeeks * 7 * DAY, policy.weeklyWeeks, 'weeks');
      case 'monthly':
        return byAge(b, 'monthly', now.getTime() - minusMonths(now, policy.monthlyMonths).getTime(), policy.monthlyMonths, 'months');
      case 'pre-update': {
        const rank = preUpdateRank.get(b.id)!;
        const keep = rank < policy.preUpdateKeep;
        return { id: b.id, keep, reason: `pre-update: ${keep ? `one of the last ${policy.preUpdateKeep}` : `older than the last ${policy.preUpdateKeep}`}` };
      }
      default:
        return { id: b.id, keep: true, reason: `unknown type ${String(b.type)}: kept` };
    }
  });
}

/**
 * `backup cleanup DAYS`: removes what is older than DAYS, except protected types and the
 * newest successful backup. Pure, like applyRetention.
 */
export function applyAgeLimit(backups: readonly RetentionItem[], days: number, now: Date): Decision[] {
  const spare = spared(backups, now);
  return backups.map((b) => {
    const why = spare.get(b);
    if (why) return { id: b.id, keep: true, reason: why };
    if (PROTECTED_TYPES.includes(b.type)) return { id: b.id, keep: true, reason: `${b.type} backups are never removed automatically` };
    const keep = !olderThan(now.getTime() - b.createdAt.getTime(), days * DAY);
    return { id: b.id, keep, reason: keep ? `younger than ${days} days` : `older than ${days} days` };
  });
}
