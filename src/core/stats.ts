import type { BackupRecord } from './catalog.js';
import { succeeded } from './manifest.js';

export interface Bucket {
  count: number;
  bytes: number;
  rawBytes: number;
}

export interface Stats {
  backups: number;
  bytes: number;
  rawBytes: number;
  /** rawBytes / bytes: how much compression saved (2 = half the size). */
  compressionRatio: number | null;
  byType: Record<string, Bucket>;
  /** Per service; downtime (stopped or paused for its copy) of its newest backup and at most, when it was ever down. */
  byService: Record<string, Bucket & { failed: number; lastDowntimeMs?: number; maxDowntimeMs?: number; engine?: string }>;
  oldest?: { id: string; createdAt: string };
  newest?: { id: string; createdAt: string };
  /** The newest backup in which every service succeeded (never one dated ahead of this clock). */
  lastSuccessful?: { id: string; createdAt: string; type: string };
  /**
   * Backups dated ahead of this clock (the catalog's `ahead`), newest first: counted in every
   * total above, but not placed as oldest, newest or last successful, which their dates cannot say.
   */
  ahead: Array<{ id: string; createdAt: string }>;
  incomplete: number;
}

const bucket = (): Bucket => ({ count: 0, bytes: 0, rawBytes: 0 });

/**
 * Pure: summarises backups (newest first, as the catalog returns them, validated by
 * manifestProblem), and those dated ahead of this clock (`ahead`), which take up room and hold
 * services like any other but have no place in time.
 */
export function computeStats(backups: BackupRecord[], incomplete: number, ahead: BackupRecord[] = []): Stats {
  const byType: Stats['byType'] = {}; // one of the backup types, which manifestProblem checks
  // Keyed by service names, which are any text: without a prototype, `__proto__` or `toString` is a name like any other.
  const byService: Stats['byService'] = Object.create(null);
  let bytes = 0;
  let rawBytes = 0;
  // Ahead ones last: "newest" per service (lastDowntimeMs, engine) comes from the backups that can be placed.
  for (const { manifest } of [...backups, ...ahead]) {
    const t = (byType[manifest.type] ??= bucket());
    t.count++;
    for (const s of manifest.services) {
      const svc = (byService[s.name] ??= { ...bucket(), failed: 0 });
      if (s.engine) svc.engine ??= s.engine; // where its newest backup came from
      if (s.status !== 'ok') {
        svc.failed++;
        continue;
      }
      svc.count++;
      if (s.downtimeMs !== undefined) {
        svc.lastDowntimeMs ??= s.downtimeMs; // newest first
        svc.maxDowntimeMs = Math.max(svc.maxDowntimeMs ?? 0, s.downtimeMs);
      }
      const [b, raw] = [s.bytes ?? 0, s.rawBytes ?? 0];
      svc.bytes += b;
      svc.rawBytes += raw;
      t.bytes += b;
      t.rawBytes += raw;
      bytes += b;
      rawBytes += raw;
    }
  }
  const brief = (b: BackupRecord | undefined) => (b ? { id: b.manifest.id, createdAt: b.manifest.createdAt } : undefined);
  const good = backups.find((b) => succeeded(b.manifest));
  return {
    backups: backups.length + ahead.length,
    bytes,
    rawBytes,
    compressionRatio: bytes > 0 ? Math.round((rawBytes / bytes) * 100) / 100 : null,
    byType,
    byService,
    oldest: brief(backups.at(-1)),
    newest: brief(backups[0]),
    lastSuccessful: good ? { ...brief(good)!, type: good.manifest.type } : undefined,
    ahead: ahead.map((b) => brief(b)!),
    incomplete,
  };
}
