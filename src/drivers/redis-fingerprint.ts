import { hash } from 'node:crypto';
import { type Fingerprint, MultisetDigest } from './fingerprint.js';

/**
 * redis-v4: a stream's entries are counted, and each entry's fields, so where one entry ends is
 * in the digest (redis-v3 listed ids, fields and values flat: one entry holding fields named
 * like ids looked like several entries). redis-v3: keys that expire are summed per day of their
 * expiry, so what a fingerprint says of them can be compared at any later time (see
 * fingerprintAt); redis-v2 left out the keys that expired within a day of when it was made.
 * A fingerprint of an older method is not compared: it is computed again from the artifact.
 */
export const REDIS_FINGERPRINT_METHOD = 'redis-v4';

/** Up to this many keys in a database are listed one by one, so a difference names the key. */
const NAMED_KEYS_MAX = 1000;
const SCAN_COUNT = 10_000;
export const DAY_MS = 86_400_000;

/**
 * Runs inside Redis (EVAL): one SCAN step, and for each key a digest of its type, its value in
 * a canonical form (sets and hashes sorted, lists and streams in order, stream groups with
 * their last delivered id and pending counts, sorted-set scores written by Lua itself: Redis
 * 7.0 answers 0.10000000000000001 where 7.2 and later answer 0.1) and its absolute expiry in ms (`ttl` before
 * Redis 7, which cannot tell it). Keys come back hex-encoded, so binary keys survive
 * redis-cli's line-based output. A key that expires within a day gets `-` and its value is
 * not read: sessions and caches expire between two readings, and fingerprintAt leaves out
 * every key that expires by the day after the comparison anyway.
 */
const SCRIPT = `
local res = redis.call('SCAN', ARGV[1], 'COUNT', ARGV[2])
local call, sha1hex, gsub, format, tostring, concat, sort = redis.call, redis.sha1hex, string.gsub, string.format, tostring, table.concat, table.sort
local out = {res[1]}
local n = 1
local hexd = {}
for i = 0, 255 do hexd[string.char(i)] = string.format('%02x', i) end
local now = call('TIME')
local nowms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
-- PEXPIRETIME from 7.0, hash fields that expire (HPEXPIRETIME) from 7.4; Valkey 8 says 7.2.
-- Lua compares strings with strcoll, and Redis 7.2+ takes its collation from its environment
-- (locale-collate ""): under en_US.UTF-8 'a' < 'B'. Members and fields are sorted by their
-- bytes either way; through their hex form where the collation is not the bytes' own.
local bytewise = ('B' < 'a') and ('Z' < '_') and ('_' < 'a') and ('a' < '\\128') and ('a' < 'a\\0')
local function sortBytes(list, keyOf)
  if bytewise then
    if keyOf then sort(list, function(a, b) return keyOf(a) < keyOf(b) end) else sort(list) end
    return
  end
  for i, v in ipairs(list) do list[i] = {(gsub(keyOf and keyOf(v) or v, '.', hexd)), v} end
  sort(list, function(a, b) return a[1] < b[1] end)
  for i, v in ipairs(list) do list[i] = v[2] end
end
local version = redis.REDIS_VERSION_NUM or 0
local absolute, fieldsExpire = version >= 0x070000, version >= 0x070400
for _, k in ipairs(res[2]) do
  local t = call('TYPE', k)['ok']
  local exp, pttl = -1, nil
  if absolute then
    local e = call('PEXPIRETIME', k)
    if e >= 0 then exp = e; pttl = e - nowms end
  else
    -- Before 7.0 a key that expired while the script runs answers 0 here, and still counts.
    local e = call('PTTL', k)
    if e >= 0 then exp = 'ttl'; pttl = e end
  end
  -- A hash's fields that expire (7.4+): each is an item of its own, under the day it expires;
  -- the hash itself is its lasting fields, and goes with its last field when it has none.
  local h, fieldExp
  if t == 'hash' then
    h = call('HGETALL', k)
    if fieldsExpire and #h > 0 then
      for i = 1, #h, 2000 do
        local names = {}
        for j = i, math.min(i + 1999, #h), 2 do names[#names + 1] = h[j] end
        for j, e in ipairs(call('HPEXPIRETIME', k, 'FIELDS', #names, unpack(names))) do
          if e >= 0 then fieldExp = fieldExp or {}; fieldExp[names[j]] = e end
        end
      end
    end
  end
  local hexk = gsub(k, '.', hexd)
  n = n + 1
  out[n] = hexk
  n = n + 1
  local slot = n -- the key's value line; items of its fields that expire follow it
  if pttl ~= nil and pttl < ${DAY_MS} then
    out[slot] = '-'
  else
    local enc
    if t == 'string' then
      local v = call('GET', k)
      enc = '6:string' .. #v .. ':' .. v
    else
      local p = {#t .. ':' .. t}
      local m = 1
      local function add(v) v = tostring(v); m = m + 1; p[m] = #v .. ':' .. v end
      if t == 'list' then for _, v in ipairs(call('LRANGE', k, 0, -1)) do add(v) end
      elseif t == 'set' then local s = call('SMEMBERS', k); sortBytes(s); for _, v in ipairs(s) do add(v) end
      elseif t == 'zset' then
        local z = call('ZRANGE', k, 0, -1, 'WITHSCORES')
        for i = 1, #z, 2 do add(z[i]); add(format('%.17g', tonumber(z[i + 1]))) end
      elseif t == 'hash' then
        local f = {}
        for i = 1, #h, 2 do
          if fieldExp and fieldExp[h[i]] then
            if fieldExp[h[i]] - nowms >= ${DAY_MS} then
              n = n + 1
              out[n] = hexk .. ':' .. gsub(h[i], '.', hexd)
              n = n + 1
              out[n] = sha1hex(#h[i] .. ':' .. h[i] .. #h[i + 1] .. ':' .. h[i + 1]) .. ' ' .. format('%d', fieldExp[h[i]])
            end
          else
            f[#f + 1] = {h[i], h[i + 1]}
          end
        end
        sortBytes(f, function(e) return e[1] end)
        for _, e in ipairs(f) do add(e[1]); add(e[2]) end
        -- No lasting field, or none at all: its fields expired (Redis 7.4+ keeps them until reaped).
        if #f == 0 and (fieldExp or #h == 0) then p = nil end
      elseif t == 'stream' then
        local entries = call('XRANGE', k, '-', '+')
        add(#entries)
        for _, e in ipairs(entries) do add(e[1]); add(#e[2]); for _, v in ipairs(e[2]) do add(v) end end
        local info = call('XINFO', 'STREAM', k)
        for i = 1, #info, 2 do if info[i] == 'last-generated-id' then add(info[i + 1]) end end
        for _, g in ipairs(call('XINFO', 'GROUPS', k)) do
          for i = 1, #g, 2 do if g[i] == 'name' or g[i] == 'pending' or g[i] == 'last-delivered-id' then add(g[i]); add(g[i + 1]) end end
        end
      else add(call('DUMP', k)) end
      enc = p and concat(p)
    end
    out[slot] = enc and (sha1hex(enc) .. ' ' .. ((type(exp) == 'number' and exp >= 0) and format('%d', exp) or tostring(exp))) or '-'
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
 * value and absolute expiry (small databases list each key; keys that expire are summed per
 * day of their expiry). Server-side, in SCAN steps, streamed: a big database is summed as it
 * is read, never held.
 */
export async function redisFingerprint(cli: RedisCliRunner, scan: RedisScanner): Promise<Fingerprint> {
  const keyspace = await cli('INFO', 'keyspace');
  const dbs = [...keyspace.matchAll(/^db(\d+):keys=(\d+)/gm)].map((m) => ({ db: Number(m[1]), keys: Number(m[2]) }));
  const parts: Record<string, string> = {};
  for (const { db, keys: count } of dbs) {
    // Summed without remembering keys; only if SCAN gave back more or fewer keys than the
    // database holds (a key twice while the server rehashed) is it read again, remembering.
    let keys = await readKeySpace(scan, db, false);
    if (keys.scanned !== count) keys = await readKeySpace(scan, db, true);
    keySpaceParts(db, keys, parts);
  }
  return { method: REDIS_FINGERPRINT_METHOD, parts };
}

/** A database's parts of the fingerprint: its keys by name or summed, and those that expire per day. */
export function keySpaceParts(db: number, keys: KeySpace, parts: Record<string, string>): void {
  if (keys.named) for (const [k, value] of keys.named) parts[`db${db} key ${Buffer.from(k, 'hex').toString('latin1')}`] = value;
  else if (keys.sum) parts[`db${db}`] = keys.sum.toString();
  for (const [day, sum] of keys.expiring) parts[`db${db} expiring ${day}`] = sum.toString();
}

/**
 * A sorted-set score as C's printf("%.17g") writes it, which the Lua uses (format('%.17g')):
 * 17 significant digits rounded half to even on the exact binary value, fixed notation for
 * exponents -4 to 16, trailing zeros dropped. JavaScript's toExponential rounds exact ties
 * up, so a tie (the exact value has 18 digits, the last a 5) is rounded here.
 */
export function formatScore(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  if (Number.isSafeInteger(x)) return String(x); // below 2^53 < 1e17: the integer, as %.17g writes it
  const sign = x < 0 ? '-' : '';
  const { digits, exp } = seventeenDigits(Math.abs(x));
  const trim = (s: string) => s.replace(/0+$/, '');
  if (exp < -4 || exp >= 17) {
    const frac = trim(digits.slice(1));
    return `${sign}${digits[0]}${frac ? `.${frac}` : ''}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${trim(digits)}`;
  const frac = trim(digits.slice(exp + 1));
  return `${sign}${digits.slice(0, exp + 1)}${frac ? `.${frac}` : ''}`;
}

function seventeenDigits(x: number): { digits: string; exp: number } {
  const [m, e] = x.toExponential(16).split('e') as [string, string];
  // A tie needs an exact value of 18 significant digits, the last a 5: toPrecision(18) then
  // gives it back exactly (and ends in 5); toExponential(99) tells whether that is all of it.
  const p18 = x.toPrecision(18);
  if (/5(e|$)/.test(p18) && Number(p18) === x) {
    const [exactM, exactE] = x.toExponential(99).split('e') as [string, string];
    const exact = exactM.replace('.', '');
    if (exact[17] === '5' && /^0*$/.test(exact.slice(18)) && Number(exact[16]) % 2 === 0) return { digits: exact.slice(0, 17), exp: Number(exactE) };
  }
  return { digits: m.replace('.', ''), exp: Number(e) };
}

/** The part name's day for keys whose expiry Redis < 7 cannot tell (no PEXPIRETIME). */
const UNKNOWN_DAY = 'on a day Redis < 7 does not tell';

/**
 * What of a fingerprint must still hold at `at`: keys that expire by the end of the next day
 * (and an hour, for a server's clock ahead of ours) are left out: by then they may be gone, or
 * were not read (see SCRIPT). Keys whose expiry Redis < 7 cannot tell are left out, and when
 * the fingerprint it is compared with (`other`) comes from such a server, so are all keys that
 * expire. undefined for a redis-v2 fingerprint: it left out keys by when it was made, so it
 * cannot be compared later.
 */
export function redisFingerprintAt(fp: Fingerprint, at: Date, other?: Fingerprint): Fingerprint | undefined {
  if (fp.method !== REDIS_FINGERPRINT_METHOD) return undefined;
  const lastDayLeftOut = dayOf(at.getTime() + DAY_MS + CLOCK_SKEW_MS);
  const daysUnknown = [fp, other].some((f) => f && Object.keys(f.parts).some((name) => expiryDay(name) === UNKNOWN_DAY));
  const holds = ([name]: [string, string]) => {
    const day = expiryDay(name);
    return day === undefined || (!daysUnknown && day > lastDayLeftOut);
  };
  return { method: fp.method, parts: Object.fromEntries(Object.entries(fp.parts).filter(holds)) };
}

const CLOCK_SKEW_MS = 3_600_000;
const expiryDay = (part: string) => /^db\d+ expiring (.*)$/.exec(part)?.[1];

/** The UTC day of a time in ms; one day for everything from the year 10000 on (ISO writes those +010000-..., which would sort first). */
const dayOf = (ms: number) => (ms >= LAST_DAY_MS ? LAST_DAY : new Date(ms).toISOString().slice(0, 10));
const LAST_DAY = '9999-12-31';
const LAST_DAY_MS = Date.UTC(9999, 11, 31);

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
 * One database's keys. Those without an expiry: named one by one up to NAMED_KEYS_MAX, then
 * summed. Those with one, and hash fields that expire: summed per day of their expiry (UTC).
 * A key whose value is `-` (it expires within a day) is counted, not compared. With `dedupe`, an item seen before (by 48
 * bits of its digest) is not added again.
 */
export class KeySpace {
  named: Map<string, string> | undefined = new Map();
  sum: MultisetDigest | undefined;
  readonly expiring = new Map<string, MultisetDigest>();
  scanned = 0;
  private readonly seen: Set<number> | undefined;

  constructor(dedupe: boolean) {
    if (dedupe) this.seen = new Set();
  }

  add(key: string, value: string): void {
    // `key:field` (hex, both): a hash's field that expires, an item of its own; not a key.
    const field = key.includes(':');
    if (!field) this.scanned++;
    if (value === '-') return;
    const expiry = value.slice(value.indexOf(' ') + 1); // absolute ms, -1 (none) or ttl (Redis < 7)
    if (expiry !== '-1' || field) return this.addTo(this.expiringOn(expiry === 'ttl' ? UNKNOWN_DAY : dayOf(Number(expiry))), key, value);
    if (this.named && (this.named.size < NAMED_KEYS_MAX || this.named.has(key))) {
      this.named.set(key, value);
      return;
    }
    if (this.named) {
      this.sum = new MultisetDigest();
      for (const [k, v] of this.named) this.addTo(this.sum, k, v);
      this.named = undefined;
    }
    this.addTo(this.sum!, key, value);
  }

  private expiringOn(day: string): MultisetDigest {
    let sum = this.expiring.get(day);
    if (!sum) this.expiring.set(day, (sum = new MultisetDigest()));
    return sum;
  }

  private addTo(sum: MultisetDigest, key: string, value: string): void {
    const item = hash('sha256', `${key} ${value}`, 'buffer');
    if (this.seen) {
      const id = item.readUIntBE(0, 6) * 32 + (item[6]! >> 3); // 53 bits: 1 in 9,000 that two of a million keys collide
      if (this.seen.has(id)) return;
      this.seen.add(id);
    }
    sum.add(item);
  }
}
