import { createHash } from 'node:crypto';
import { type Fingerprint, MultisetDigest } from './fingerprint.js';

export const REDIS_FINGERPRINT_METHOD = 'redis-v2';

/** Up to this many keys in a database are listed one by one, so a difference names the key. */
const NAMED_KEYS_MAX = 1000;
const SCAN_COUNT = 1000;

/**
 * Runs inside Redis (EVAL): one SCAN step, and for each key a digest of its type, its value in
 * a canonical form (sets and hashes sorted, lists and streams in order, stream groups with
 * their last delivered id and pending counts) and its absolute expiry in ms. Keys come back
 * hex-encoded, so binary keys survive redis-cli's line-based output.
 */
const SCRIPT = `
local res = redis.call('SCAN', ARGV[1], 'COUNT', ARGV[2])
local out = {res[1]}
local function hex(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end
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
  if not ok then exp = (redis.call('PTTL', k) > 0) and 'ttl' or -1 end
  -- Keys that expire within a day are left out: sessions and caches expire between the two
  -- readings of a restore check, and would make a good restore look different.
  local pttl = redis.call('PTTL', k)
  if pttl > 0 and pttl < 86400000 then p = nil end
  if p then
    local enc = {}
    for _, v in ipairs(p) do enc[#enc + 1] = #v .. ':' .. v end
    out[#out + 1] = hex(k)
    out[#out + 1] = redis.sha1hex(table.concat(enc)) .. ' ' .. tostring(exp)
  end
end
return out
`;

/** Runs `redis-cli` with these arguments (and the password in its environment). */
export type RedisCliRunner = (...args: string[]) => Promise<string>;

/**
 * Redis's content, read through the server itself: per logical database, every key's type,
 * value and absolute expiry (small databases list each key). Server-side, in SCAN steps.
 */
export async function redisFingerprint(cli: RedisCliRunner): Promise<Fingerprint> {
  const keyspace = await cli('INFO', 'keyspace');
  const dbs = [...keyspace.matchAll(/^db(\d+):keys=(\d+)/gm)].map((m) => ({ db: Number(m[1]), keys: Number(m[2]) }));
  const parts: Record<string, string> = { databases: JSON.stringify(dbs.filter((d) => d.keys > 0).map((d) => d.db)) };
  for (const { db } of dbs) {
    // SCAN may return a key twice (while the server rehashes): keep one entry per key.
    const keys = new Map<string, string>();
    let cursor = '0';
    do {
      const lines = (await cli('-n', String(db), 'EVAL', SCRIPT, '0', cursor, String(SCAN_COUNT))).split('\n');
      cursor = lines[0]!.trim();
      for (let i = 1; i + 1 < lines.length; i += 2) keys.set(lines[i]!.trim(), lines[i + 1]!.trim());
    } while (cursor !== '0');
    if (keys.size <= NAMED_KEYS_MAX) {
      for (const [key, value] of keys) parts[`db${db} key ${Buffer.from(key, 'hex').toString('latin1')}`] = value;
      continue;
    }
    const digest = new MultisetDigest();
    for (const [key, value] of keys) digest.add(createHash('sha256').update(`${key} ${value}`).digest());
    parts[`db${db}`] = digest.toString();
  }
  return { method: REDIS_FINGERPRINT_METHOD, parts };
}
