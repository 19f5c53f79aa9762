import { type BackupType, FUTURE_SKEW_MS } from './manifest.js';

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

/**
 * The backup that every removal spares: the newest whose status is ok. One dated in the future
 * (beyond a clock's skew) cannot be it: a catalog refuses such a manifest anyway, and a planted
 * one must not move this protection away from the real newest backup.
 */
export function newestOk(backups: readonly RetentionItem[], now: Date): RetentionItem | undefined {
  return backups
    .filter((b) => b.status === 'ok' && b.createdAt.getTime() <= now.getTime() + FUTURE_SKEW_MS)
    .reduce<RetentionItem | undefined>((best, b) => (!best || b.createdAt.getTime() > best.createdAt.getTime() ? b : best), undefined);
}

/**
 * Which backups the policy keeps, each with the reason. Pure: (backups, policy, now) -> decisions,
 * one per backup, in input order. Ages are measured in UTC, so DST changes do not move them.
 * The newest successful backup is always kept, whatever its type and age.
 */
export function applyRetention(backups: readonly RetentionItem[], policy: RetentionPolicy, now: Date): Decision[] {
  const newest = newestOk(backups, now);
  const preUpdateRank = new Map(
    backups
      .filter((b) => b.type === 'pre-update')
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
      .map((b, i) => [b.id, i]),
  );
  return backups.map((b) => {
    if (b === newest) return { id: b.id, keep: true, reason: 'newest successful backup' };
    if (PROTECTED_TYPES.includes(b.type)) return { id: b.id, keep: true, reason: `${b.type} backups are never removed automatically` };
    const age = now.getTime() - b.createdAt.getTime();
    switch (b.type) {
      case 'daily': {
        const keep = age < policy.dailyDays * DAY;
        return { id: b.id, keep, reason: `daily: ${keep ? 'younger' : 'older'} than ${policy.dailyDays} days` };
      }
      case 'weekly': {
        const keep = age < policy.weeklyWeeks * 7 * DAY;
        return { id: b.id, keep, reason: `weekly: ${keep ? 'younger' : 'older'} than ${policy.weeklyWeeks} weeks` };
      }
      case 'monthly': {
        const keep = b.createdAt.getTime() > minusMonths(now, policy.monthlyMonths).getTime();
        return { id: b.id, keep, reason: `monthly: ${keep ? 'younger' : 'older'} than ${policy.monthlyMonths} months` };
      }
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
  const newest = newestOk(backups, now);
  return backups.map((b) => {
    if (b === newest) return { id: b.id, keep: true, reason: 'newest successful backup' };
    if (PROTECTED_TYPES.includes(b.type)) return { id: b.id, keep: true, reason: `${b.type} backups are never removed automatically` };
    const keep = now.getTime() - b.createdAt.getTime() < days * DAY;
    return { id: b.id, keep, reason: keep ? `younger than ${days} days` : `older than ${days} days` };
  });
}
