import { hash } from 'node:crypto';
import { type Fingerprint, MultisetDigest } from './fingerprint.js';

export const REDIS_FINGERPRINT_METHOD = 'redis-v2';

/** Up to this many keys in a database are listed one by one, so a difference names the key. */
const NAMED_KEYS_MAX = 1000;
const SCAN_COUNT = 10_000;

/**
 * Runs inside Redis (EVAL): one SCAN step, and for each key a digest of its type, its value in
 * a canonical form (sets and hashes sorted, lists and streams in order, stream groups with
 * their last delivered id and pending counts) and its absolute expiry in ms. Keys come back
 * hex-encoded, so binary keys survive redis-cli's line-based output.
 */
const SCRIPT = `
local res = redis.call('SCAN', ARGV[1], 'COUNT', ARGV[2])
local out = {res[1]}
local hexd = {}
for i = 0, 255 do hexd[string.char(i)] = string.format('%02x', i) end
local function hex(s) return (string.gsub(s, '.', hexd)) end
local now = redis.call('TIME')
local nowms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
for _, k in ipairs(res[2]) do
  local t = redis.call('TYPE', k)['ok']
  local p = {t}
  local function add(v) p[#p + 1] = tostring(v) end
  if t == 'string' then add(redis.call('GET', k))
  elseif t == 'list' then for _, v in ipairs(redis.call('LRANGE', k, 0, -1)) do add(v) end
  elseif t == 'set' then local m = redis.call('SMEMBERS', k); table.sort(m); for _, v in ipairs(m) do add(v) end
  elseif t == 'zset' then for _, v in ipairs(redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')) do add(v) end
  elseif t == 'hash' then
    local h = redis.call('HGETALL', k); local f = {}
    for i = 1, #h, 2 do f[#f + 1] = {h[i], h[i + 1]} end
    table.sort(f, function(a, b) return a[1] < b[1] end)
    for _, e in ipairs(f) do add(e[1]); add(e[2]) end
  elseif t == 'stream' then
    for _, e in ipairs(redis.call('XRANGE', k, '-', '+')) do add(e[1]); for _, v in ipairs(e[2]) do add(v) end end
    local info = redis.call('XINFO', 'STREAM', k)
    for i = 1, #info, 2 do if info[i] == 'last-generated-id' then add(info[i + 1]) end end
    for _, g in ipairs(redis.call('XINFO', 'GROUPS', k)) do
      for i = 1, #g, 2 do if g[i] == 'name' or g[i] == 'pending' or g[i] == 'last-delivered-id' then add(g[i]); add(g[i + 1]) end end
    end
  else add(redis.call('DUMP', k)) end
  local ok, exp = pcall(redis.call, 'PEXPIRETIME', k)
  local pttl
  if ok then pttl = (exp > 0) and (exp - nowms) or -1
  else pttl = redis.call('PTTL', k); exp = (pttl > 0) and 'ttl' or -1 end
  -- Keys that expire within a day are left out: sessions and caches expire between the two
  -- readings of a restore check, and would make a good restore look different.
  if pttl > 0 and pttl < 86400000 then p = nil end
  out[#out + 1] = hex(k)
  if p then
    local enc = {}
    for _, v in ipairs(p) do enc[#enc + 1] = #v .. ':' .. v end
    out[#out + 1] = redis.sha1hex(table.concat(enc)) .. ' ' .. tostring(exp)
  else
    out[#out + 1] = '-'
  end
end
return out
`;

/** Runs `redis-cli` with these arguments (and the password in its environment). */
export type RedisCliRunner = (...args: string[]) => Promise<string>;

/**
 * Runs every SCAN step of `script` in database `db` and hands each output line over as it
 * comes: a line `#` starts a step, the next line is its cursor, then key and value lines.
 */
export type RedisScanner = (db: number, script: string, count: number, onLine: (line: string) => void) => Promise<void>;

/**
 * The shell loop a RedisScanner runs in the container: all steps in one exec (an exec per
 * step costs about 100 ms, minutes for a million keys). Arguments: db, script, count.
 */
export const SCAN_LOOP = `set -e
cursor=0
while :; do
  out=$(redis-cli --no-auth-warning -n "$1" EVAL "$2" 0 "$cursor" "$3")
  case "$out" in ERR*|NOAUTH*|WRONGPASS*|NOPERM*|NOSCRIPT*) printf '%s\n' "$out" >&2; exit 3;; esac
  printf '#\n%s\n' "$out"
  cursor=$(printf '%s\n' "$out" | head -n 1)
  [ "$cursor" = 0 ] && break
done`;

/**
 * Redis's content, read through the server itself: per logical database, every key's type,
 * value and absolute expiry (small databases list each key). Server-side, in SCAN steps,
 * streamed: a big database is summed as it is read, never held.
 */
export async function redisFingerprint(cli: RedisCliRunner, scan: RedisScanner): Promise<Fingerprint> {
  const keyspace = await cli('INFO', 'keyspace');
  const dbs = [...keyspace.matchAll(/^db(\d+):keys=(\d+)/gm)].map((m) => ({ db: Number(m[1]), keys: Number(m[2]) }));
  const parts: Record<string, string> = { databases: JSON.stringify(dbs.filter((d) => d.keys > 0).map((d) => d.db)) };
  for (const { db, keys: count } of dbs) {
    // Summed without remembering keys; only if SCAN gave back more or fewer keys than the
    // database holds (a key twice while the server rehashed) is it read again, remembering.
    let keys = await readKeySpace(scan, db, false);
    if (!keys.named && keys.scanned !== count) keys = await readKeySpace(scan, db, true);
    if (keys.named) for (const [k, value] of keys.named) parts[`db${db} key ${Buffer.from(k, 'hex').toString('latin1')}`] = value;
    else parts[`db${db}`] = keys.sum!.toString();
  }
  return { method: REDIS_FINGERPRINT_METHOD, parts };
}

async function readKeySpace(scan: RedisScanner, db: number, dedupe: boolean): Promise<KeySpace> {
  const keys = new KeySpace(dedupe);
  let cursorNext = false;
  let key: string | undefined;
  await scan(db, SCRIPT, SCAN_COUNT, (raw) => {
    const line = raw.trim();
    if (line === '#') cursorNext = true;
    else if (cursorNext) cursorNext = false;
    else if (key === undefined) key = line;
    else {
      keys.add(key, line);
      key = undefined;
    }
  });
  return keys;
}

/**
 * One database's keys: named one by one up to NAMED_KEYS_MAX, then summed. A key whose value
 * is `-` (it expires within a day) is counted, not compared. With `dedupe`, an item seen
 * before (by 48 bits of its digest) is not added again.
 */
class KeySpace {
  named: Map<string, string> | undefined = new Map();
  sum: MultisetDigest | undefined;
  scanned = 0;
  private readonly seen: Set<number> | undefined;

  constructor(dedupe: boolean) {
    if (dedupe) this.seen = new Set();
  }

  add(key: string, value: string): void {
    this.scanned++;
    if (value === '-') return;
    if (this.named && (this.named.size < NAMED_KEYS_MAX || this.named.has(key))) {
      this.named.set(key, value);
      return;
    }
    if (this.named) {
      this.sum = new MultisetDigest();
      for (const [k, v] of this.named) this.addToSum(k, v);
      this.named = undefined;
    }
    this.addToSum(key, value);
  }

  private addToSum(key: string, value: string): void {
    const item = hash('sha256', `${key} ${value}`, 'buffer');
    if (this.seen) {
      const id = item.readUIntBE(0, 6);
      if (this.seen.has(id)) return;
      this.seen.add(id);
    }
    this.sum!.add(item);
  }
}
