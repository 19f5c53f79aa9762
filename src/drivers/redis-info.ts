/** Pure helpers for Redis' INFO output and command line; table-tested. */

export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** Total keys from INFO keyspace lines like `db0:keys=3,expires=1,avg_ttl=0`. */
export function keyCount(info: Record<string, string>): number {
  return keyspaceSum(info, 'keys');
}

/**
 * Of those, the keys that may go by themselves: with an expiry (`expires=`), or hashes with
 * fields that expire (`subexpiry=`, Redis 7.4+; a hash with both counts twice, so fewer keys
 * are taken for lasting ones, never more).
 */
export function expiringKeyCount(info: Record<string, string>): number {
  return keyspaceSum(info, 'expires') + keyspaceSum(info, 'subexpiry');
}

function keyspaceSum(info: Record<string, string>, field: 'keys' | 'expires' | 'subexpiry'): number {
  let total = 0;
  for (const [k, v] of Object.entries(info)) {
    if (!/^db\d+$/.test(k)) continue;
    const m = new RegExp(`(?:^|,)${field}=(\\d+)`).exec(v);
    if (m) total += Number(m[1]);
  }
  return total;
}

export interface KeyCounts {
  keys: number;
  /** Of which have an expiry; unknown in manifests from before it was recorded. */
  expiring?: number;
}

/**
 * Why the keys an RDB loads do not match those seen at backup time, or undefined when they do.
 * Keys that expired since are not loaded (a server drops them while it reads the RDB), so only
 * the keys without an expiry must all be there; with no count of those recorded, the loaded
 * keys can only be no more than the backup's.
 */
export function keyCountProblem(atBackup: KeyCounts, loaded: Required<KeyCounts>): string | undefined {
  const lasting = (c: KeyCounts) => (c.expiring === undefined ? undefined : c.keys - c.expiring);
  if (loaded.keys > atBackup.keys) return `the RDB loads ${loaded.keys} keys, the backup saw ${atBackup.keys}`;
  const want = lasting(atBackup);
  if (want !== undefined && lasting(loaded)! < want) return `the RDB loads ${lasting(loaded)} keys without an expiry, the backup saw ${want}`;
  return undefined;
}

/** The password from `--requirepass X`, `--requirepass=X`, or the usual environment variables. */
export function redisPassword(cmd: string[], env: Record<string, string>): string | undefined {
  for (let i = 0; i < cmd.length; i++) {
    const arg = cmd[i]!;
    if (arg === '--requirepass' && i + 1 < cmd.length) return cmd[i + 1];
    if (arg.startsWith('--requirepass=')) return arg.slice('--requirepass='.length);
  }
  return env.REDIS_PASSWORD || env.REDISCLI_AUTH || undefined;
}

export interface SaveState {
  inProgress: boolean;
  lastStatusOk: boolean;
  lastSaveTime: number;
  saves?: number;
}

export function saveState(info: Record<string, string>): SaveState {
  return {
    inProgress: info.rdb_bgsave_in_progress === '1',
    lastStatusOk: info.rdb_last_bgsave_status === 'ok',
    lastSaveTime: Number(info.rdb_last_save_time ?? 0),
    saves: info.rdb_saves !== undefined ? Number(info.rdb_saves) : undefined,
  };
}

/**
 * Whether a save finished after our request. LASTSAVE has 1 s resolution, so the caller makes
 * sure the request is sent in a later second than `before.lastSaveTime`; the rdb_saves
 * counter (Redis >= 7) is used when present.
 */
export function saveIsNewer(before: SaveState, now: SaveState): boolean {
  if (now.inProgress) return false;
  if (now.saves !== undefined && before.saves !== undefined) return now.saves > before.saves;
  return now.lastSaveTime > before.lastSaveTime;
}

/**
 * Whether the RDB on disk is that of the save that was running (or had just ended) at
 * `atStart`: 'ours', 'wait' while ours still runs, or 'replaced' once another save has ended.
 * Redis counts a save when it starts and runs one at a time, so ours is number
 * `atStart.saves`; the next one may have started, but renames nothing until it ends. Without
 * the count (Redis < 7) the first state without a save in progress is taken as ours.
 */
export function rdbOnDisk(atStart: SaveState, now: SaveState): 'ours' | 'wait' | 'replaced' {
  if (atStart.saves === undefined || now.saves === undefined) return now.inProgress ? 'wait' : 'ours';
  if (now.saves === atStart.saves) return now.inProgress ? 'wait' : 'ours';
  return now.saves === atStart.saves + 1 && now.inProgress ? 'ours' : 'replaced';
}
