import { hash } from 'node:crypto';
import { type Fingerprint, MultisetDigest } from './fingerprint.js';

/**
 * redis-v5: a set's or hash's items are summed in any order (each item's SHA-1 added in three
 * 52-bit lanes), and a list's, sorted set's or stream's items are hashed in pieces of
 * PIECE_ITEMS, in order: a key of millions of items is then read in short steps, not one script
 * that holds the server (redis-v4 sorted sets and hashes and hashed every key whole: the
 * restored server answered BUSY for minutes). redis-v4: a stream's entries are counted, and
 * each entry's fields. redis-v3: keys that expire are summed per day of their expiry, so what
 * a fingerprint says of them can be compared at any later time (see fingerprintAt).
 * A fingerprint of an older method is not compared: it is computed again from the artifact.
 */
export const REDIS_FINGERPRINT_METHOD = 'redis-v5';

/** Up to this many keys in a database are listed one by one, so a difference names the key. */
const NAMED_KEYS_MAX = 1000;
/**
 * Items (or KiB of a string) one SCAN step reads at most before it leaves the rest of its keys
 * to KEYS_SCRIPT, which reads them many to a script up to as many again; the next step asks SCAN
 * for as many keys as fit, from the first 100 up to 10,000. A step of 10,000 keys of 1,000
 * items each held the server for seconds.
 */
const STEP_ITEMS = 10_000;
const FIRST_SCAN_COUNT = 100;
export const DAY_MS = 86_400_000;
/** A list's, sorted set's or stream's items are hashed in pieces of this many, in order. */
export const PIECE_ITEMS = 1000;
/**
 * A collection of more items is read in steps of PIECE_STEP_ITEMS, a script each (a few ms
 * of the server); one of up to this many is read by the SCAN step that finds it.
 */
const INLINE_ITEMS_MAX = 10_000;
const PIECE_STEP_ITEMS = 10 * PIECE_ITEMS;
/** A key named by more bytes than an argument holds (hex-encoded; Linux: 128 KiB) is read whole by the SCAN step that finds it. */
const PIECE_KEY_BYTES_MAX = 32 * 1024;

/**
 * The value encoding both scripts share (and redis-rdb.ts writes on the host): an item is its
 * length, a colon and its bytes; a value is its type, then its items' count, then a set's or
 * hash's lanes, or a list's, sorted set's or stream's piece digests (a stream then its last
 * id and its consumer groups' name, pending count and last delivered id, as XINFO says them).
 * Sorted-set scores are written by Lua itself (%.17g): Redis 7.0 answers 0.10000000000000001
 * where 7.2 and later answer 0.1.
 */
const LUA_ENCODING = `
local call, sha1hex, gsub, format, tostring, tonumber, concat, sub, min = redis.call, redis.sha1hex, string.gsub, string.format, tostring, tonumber, table.concat, string.sub, math.min
local hexd = {}
for i = 0, 255 do hexd[string.char(i)] = format('%02x', i) end
local function unhex(h) return (gsub(h, '..', function(x) return string.char(tonumber(x, 16)) end)) end
local now = call('TIME')
local nowms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
-- PEXPIRETIME from 7.0, hash fields that expire (HPEXPIRETIME) from 7.4; Valkey 8 says 7.2.
local version = redis.REDIS_VERSION_NUM or 0
local absolute, fieldsExpire = version >= 0x070000, version >= 0x070400
local LENGTH = {list = 'LLEN', set = 'SCARD', zset = 'ZCARD', hash = 'HLEN', stream = 'XLEN'}
local function item(v) v = tostring(v); return #v .. ':' .. v end
-- A set's or hash's items are summed in any order: the first 39 hex digits of each item's SHA-1
-- as three 52-bit lanes, each added modulo 2^52 (exact in Lua's doubles; three substrings an item).
local LANE = 4503599627370496
local function addLanes(sum, d)
  sum[1] = (sum[1] + tonumber(sub(d, 1, 13), 16)) % LANE
  sum[2] = (sum[2] + tonumber(sub(d, 14, 26), 16)) % LANE
  sum[3] = (sum[3] + tonumber(sub(d, 27, 39), 16)) % LANE
end
local function lanesHex(sum) return format('%013x%013x%013x', sum[1], sum[2], sum[3]) end
local function listItem(l, j) return item(l[j]) end
local function zsetItem(z, j) return item(z[j]) .. item(format('%.17g', tonumber(z[j + 1]))) end
local function streamItem(s, j)
  local e = s[j]
  local q = {item(e[1]), item(#e[2])}
  for _, v in ipairs(e[2]) do q[#q + 1] = item(v) end
  return concat(q)
end
-- Hands each piece of ${PIECE_ITEMS} items (of \`per\` elements each) over as its digest and item count.
local function pieces(all, per, encode, onPiece)
  for i = 1, #all, ${PIECE_ITEMS} * per do
    local q, m = {}, 0
    for j = i, min(i + ${PIECE_ITEMS} * per - 1, #all), per do m = m + 1; q[m] = encode(all, j) end
    onPiece(sha1hex(concat(q)), m)
  end
end
local function streamTail(k)
  local q = {}
  local info = call('XINFO', 'STREAM', k)
  for i = 1, #info, 2 do if info[i] == 'last-generated-id' then q[#q + 1] = item(info[i + 1]) end end
  for _, g in ipairs(call('XINFO', 'GROUPS', k)) do
    for i = 1, #g, 2 do if g[i] == 'name' or g[i] == 'pending' or g[i] == 'last-delivered-id' then q[#q + 1] = item(g[i]) .. item(g[i + 1]) end end
  end
  return concat(q)
end
-- The absolute expiry (ms) of each of a hash's fields that expire (7.4+), from a flat field/value list; nil for none.
local function fieldExpiries(k, h)
  if not fieldsExpire or #h == 0 then return nil end
  local fe
  for i = 1, #h, 2000 do
    local names = {}
    for j = i, min(i + 1999, #h), 2 do names[#names + 1] = h[j] end
    for j, e in ipairs(call('HPEXPIRETIME', k, 'FIELDS', #names, unpack(names))) do
      if e >= 0 then fe = fe or {}; fe[names[j]] = e end
    end
  end
  return fe
end
`;

/**
 * Runs inside Redis: readKey(k) appends a key's lines to \`out\`: its name hex-encoded (binary
 * keys survive redis-cli's line-based output), then a digest of its type, its value
 * (LUA_ENCODING) and its absolute expiry in ms (\`ttl\` before Redis 7, which cannot tell it).
 * A key that expires within a day gets \`-\` and its value is not read: sessions and caches
 * expire between two readings, and fingerprintAt leaves out every key that expires by the day
 * after the comparison anyway. A collection of over INLINE_ITEMS_MAX items gets \`+type expiry\`:
 * it is read afterwards by PIECE_SCRIPT. A hash's field that expires (7.4+) is an item of its
 * own (\`key:field\`, its digest and expiry), under the day it expires; the hash itself is its
 * lasting fields, and goes with its last field when it has none. \`spent\` counts the items (or
 * KiB of a string) read, \`inline\` the keys read.
 */
const READ_KEY = `
local out, n, spent, inline = {}, 0, 0, 0
local function readKey(k)
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
  local expText = (type(exp) == 'number' and exp >= 0) and format('%d', exp) or tostring(exp)
  local hexk = gsub(k, '.', hexd)
  n = n + 1
  out[n] = hexk
  n = n + 1
  local slot = n -- the key's value line; items of its fields that expire follow it
  -- 'none': gone since the SCAN step that found it and left it to KEYS_SCRIPT (it expired, or a
  -- client deleted it), so not held now, as one that expires within the day is not compared.
  if t == 'none' or (pttl ~= nil and pttl < ${DAY_MS}) then
    out[slot] = '-'
    inline = inline + 1
  elseif #k <= ${PIECE_KEY_BYTES_MAX} and LENGTH[t] and call(LENGTH[t], k) > ${INLINE_ITEMS_MAX} then
    out[slot] = '+' .. t .. ' ' .. expText
  else
    local enc
    inline = inline + 1
    if t == 'string' then
      local v = call('GET', k)
      spent = spent + 1 + #v / 1024
      enc = '6:string' .. #v .. ':' .. v -- item(t) .. item(v), without two calls for the commonest key
    elseif t == 'set' then
      local sum, s = {0, 0, 0}, call('SMEMBERS', k)
      for _, v in ipairs(s) do addLanes(sum, sha1hex(#v .. ':' .. v)) end
      spent = spent + #s
      enc = item(t) .. item(#s) .. item(lanesHex(sum))
    elseif t == 'hash' then
      local h = call('HGETALL', k)
      spent = spent + #h / 2
      local fe = fieldExpiries(k, h)
      local sum, lasting = {0, 0, 0}, 0
      for i = 1, #h, 2 do
        local f, v = h[i], h[i + 1]
        local d = sha1hex(#f .. ':' .. f .. #v .. ':' .. v)
        local e = fe and fe[h[i]]
        if not e then lasting = lasting + 1; addLanes(sum, d)
        elseif e - nowms >= ${DAY_MS} then
          n = n + 1
          out[n] = hexk .. ':' .. gsub(h[i], '.', hexd)
          n = n + 1
          out[n] = d .. ' ' .. format('%d', e)
        end
      end
      -- No lasting field, or none at all: its fields expired (Redis 7.4+ keeps them until reaped).
      if lasting > 0 or not (fe or #h == 0) then enc = item(t) .. item(lasting) .. item(lanesHex(sum)) end
    elseif LENGTH[t] then
      local all, per, encode
      if t == 'list' then all, per, encode = call('LRANGE', k, 0, -1), 1, listItem
      elseif t == 'zset' then all, per, encode = call('ZRANGE', k, 0, -1, 'WITHSCORES'), 2, zsetItem
      else all, per, encode = call('XRANGE', k, '-', '+'), 1, streamItem end
      spent = spent + #all / per
      local q = {item(t), item(#all / per)}
      pieces(all, per, encode, function(d) q[#q + 1] = item(d) end)
      if t == 'stream' then q[#q + 1] = streamTail(k) end
      enc = concat(q)
    else
      local v = call('DUMP', k)
      spent = spent + 1 + (v and #v or 0) / 1024
      enc = item(t) .. item(v)
    end
    out[slot] = enc and (sha1hex(enc) .. ' ' .. expText) or '-'
  end
end
`;

/**
 * Runs inside Redis (EVAL): one SCAN step, each key read by readKey (READ_KEY) until the step's
 * budget of items (ARGV[3]) is spent; each key after that gets \`>\` and is read afterwards by
 * KEYS_SCRIPT, many to a script. The second line says how many keys the next step asks SCAN for.
 */
const SCRIPT = `
local count, budget = tonumber(ARGV[2]), tonumber(ARGV[3])
local res = redis.call('SCAN', ARGV[1], 'COUNT', count)
${LUA_ENCODING}
${READ_KEY}
out[1], out[2], n = res[1], '', 2
for _, k in ipairs(res[2]) do
  if spent >= budget and #k <= ${PIECE_KEY_BYTES_MAX} then
    out[n + 1] = gsub(k, '.', hexd)
    out[n + 2] = '>'
    n = n + 2
  else readKey(k) end
end
-- As many keys next time as fit the budget at this step's items per key (at most twice as many).
out[2] = format('%d', math.max(16, math.min(10000, count * 2, math.floor(budget * inline / math.max(spent, 1)))))
return out
`;

/**
 * Runs inside Redis (EVAL): the keys a SCAN step left (ARGV[2...], hex-encoded), each read by
 * readKey until the budget of items (ARGV[1]) is spent, the first one always. The first line
 * says how many it read; then their lines, as a SCAN step's.
 */
const KEYS_SCRIPT = `
${LUA_ENCODING}
${READ_KEY}
local budget = tonumber(ARGV[1])
out[1], out[2], n = '0', '', 2
local read = 0
for i = 2, #ARGV do
  if read > 0 and spent >= budget then break end
  readKey(unhex(ARGV[i]))
  read = read + 1
end
out[1] = format('%d', read)
return out
`;

/**
 * Runs inside Redis (EVAL): one step of reading a big collection (ARGV: its name hex-encoded,
 * its type, the step's state: \`start\` or what the step before returned, how many items,
 * \`each\` to have every set member's or lasting hash field's digest rather than their sum).
 * Returns the next state (\`end\` after the last step), then lines:
 *   s COUNT LANES    a set's or hash's lasting items read in this step, summed
 *   i DIGEST         one of them (\`each\`)
 *   f FIELD DIGEST EXPIRY   a hash's field that expires after the next day
 *   c COUNT          items this step read (SCAN steps may give an item twice)
 *   n COUNT          the server's count, after the last step
 *   d COUNT DIGEST   a piece of a list, sorted set or stream, in order
 *   t TAIL           a stream's last id and groups, hex-encoded, after its last entry
 *   changed          the key is gone, or of another type
 */
const PIECE_SCRIPT = `
${LUA_ENCODING}
local k = unhex(ARGV[1])
local t, state, budget, each = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5] == 'each'
local out = {'end'}
local function emit(line) out[#out + 1] = line end
if call('TYPE', k)['ok'] ~= t then emit('changed'); return out end
if t == 'set' or t == 'hash' then
  local r = call(t == 'set' and 'SSCAN' or 'HSCAN', k, state == 'start' and '0' or state, 'COUNT', budget)
  if r[1] ~= '0' then out[1] = r[1] end
  local all, per, sum, lasting = r[2], t == 'set' and 1 or 2, {0, 0, 0}, 0
  local fe = t == 'hash' and fieldExpiries(k, all) or nil
  for i = 1, #all, per do
    local d = sha1hex(per == 1 and item(all[i]) or (item(all[i]) .. item(all[i + 1])))
    local e = fe and fe[all[i]]
    if not e then
      lasting = lasting + 1
      if each then emit('i ' .. d) else addLanes(sum, d) end
    elseif e - nowms >= ${DAY_MS} then
      emit('f ' .. gsub(all[i], '.', hexd) .. ' ' .. d .. ' ' .. format('%d', e))
    end
  end
  emit('c ' .. (#all / per))
  if not each then emit('s ' .. lasting .. ' ' .. lanesHex(sum)) end
  if out[1] == 'end' then emit('n ' .. call(t == 'set' and 'SCARD' or 'HLEN', k)) end
elseif t == 'list' or t == 'zset' then
  local start = state == 'start' and 0 or tonumber(state)
  local per = t == 'list' and 1 or 2
  local all = t == 'list' and call('LRANGE', k, start, start + budget - 1) or call('ZRANGE', k, start, start + budget - 1, 'WITHSCORES')
  pieces(all, per, t == 'list' and listItem or zsetItem, function(d, m) emit('d ' .. m .. ' ' .. d) end)
  if #all / per == budget then out[1] = format('%d', start + budget) end
else
  -- From the last entry read, which comes again first (ids may not be made one past another).
  local all = call('XRANGE', k, state == 'start' and '-' or state, '+', 'COUNT', budget + 1)
  local got = {}
  local first = (state ~= 'start' and all[1] and all[1][1] == state) and 2 or 1
  for i = first, min(#all, first + budget - 1) do got[#got + 1] = all[i] end
  pieces(got, 1, streamItem, function(d, m) emit('d ' .. m .. ' ' .. d) end)
  if #got == budget then out[1] = got[#got][1] else emit('t ' .. gsub(streamTail(k), '.', hexd)) end
end
return out
`;

/** Runs `redis-cli` with these arguments (and the password in its environment). */
export type RedisCliRunner = (...args: string[]) => Promise<string>;

/**
 * Runs a shell loop (SCAN_LOOP, PIECE_LOOP) in the container with these arguments, and hands
 * each line of its output over as it comes.
 */
export type RedisScanner = (loop: string, args: string[], onLine: (line: string) => void) => Promise<void>;

/**
 * A step's answer starts with a cursor or state: digits, a stream id or \`end\`. Anything else is
 * the server's refusal (ERR, NOPERM, BUSY, LOADING, MASTERDOWN on a replica cut off from its
 * master, ...), said on stderr: one not known here went round as the next cursor and was refused
 * again, forever.
 */
const SERVER_REFUSED = `case "$out" in [0-9]*|end*) ;; *) printf '%s\\n' "\${out:-no answer from redis-cli}" >&2; exit 3;; esac`;

/**
 * Every SCAN step of SCRIPT in one exec (an exec per step costs about 100 ms, minutes for a
 * million keys). Arguments: db, script, first count, budget. A line `#` starts a step, the
 * next two are its cursor and the next count, then key and value lines.
 */
export const SCAN_LOOP = `set -e
cursor=0
count=$3
while :; do
  out=$(redis-cli --no-auth-warning -n "$1" EVAL "$2" 0 "$cursor" "$count" "$4")
  ${SERVER_REFUSED}
  printf '#\\n%s\\n' "$out"
  cursor=$(printf '%s\\n' "$out" | head -n 1)
  count=$(printf '%s\\n' "$out" | sed -n 2p)
  [ "$cursor" = 0 ] && break
done`;

/**
 * Every step of PIECE_SCRIPT for each big key given, in one exec. Arguments: db, script,
 * items per step, mode, then the keys (hex name, type). A line `@` starts a key, the next line
 * is its name; a line `#` starts a step, the next line is its state, then its lines.
 */
export const PIECE_LOOP = `set -e
db=$1 script=$2 budget=$3 mode=$4
shift 4
while [ $# -gt 1 ]; do
  key=$1 type=$2
  shift 2
  printf '@\\n%s\\n' "$key"
  state=start
  while :; do
    out=$(redis-cli --no-auth-warning -n "$db" EVAL "$script" 0 "$key" "$type" "$state" "$budget" "$mode")
    ${SERVER_REFUSED}
    printf '#\\n%s\\n' "$out"
    state=$(printf '%s\\n' "$out" | head -n 1)
    [ "$state" = end ] && break
  done
done`;

/** Big keys read by one exec of PIECE_LOOP (their names are its arguments, up to 64 KiB each). */
const PIECE_KEYS_PER_EXEC = 16;

/**
 * Every step of KEYS_SCRIPT over the keys given, in one exec: each step is given every key not
 * read yet and says how many it read. Arguments: db, script, budget, then the keys (hex). A
 * line \`#\` starts a step, the next two are its count and an empty line, then key and value lines.
 */
export const KEYS_LOOP = `set -e
db=$1 script=$2 budget=$3
shift 3
while [ $# -gt 0 ]; do
  out=$(redis-cli --no-auth-warning -n "$db" EVAL "$script" 0 "$budget" "$@")
  ${SERVER_REFUSED}
  printf '#\\n%s\\n' "$out"
  shift "$(printf '%s\\n' "$out" | head -n 1)"
done`;

/**
 * Hex characters of key names given to one exec of KEYS_LOOP: each of its steps gets them all
 * again (Linux holds 2 MiB of arguments; a name is at most 64 KiB of hex).
 */
const KEYS_HEX_PER_EXEC = 256 * 1024;

/**
 * Redis's content, read through the server itself: per logical database, every key's type,
 * value and absolute expiry (small databases list each key; keys that expire are summed per
 * day of their expiry). Server-side, in SCAN steps, streamed: a big database is summed as it
 * is read, never held; a big collection is read in steps of its own, between which the server
 * answers its clients.
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
  /** Collections read in steps of their own, after the SCAN: type, expiry and how often SCAN gave each. */
  const big = new Map<string, { type: string; expiry: string; times: number }>();
  /** Keys a SCAN step left past its budget, as often as SCAN gave each. */
  const left: string[] = [];
  let header = 0; // lines of a step's header still to skip: its cursor and next count
  let key: string | undefined;
  const onLine = (raw: string) => {
    const line = raw.trim();
    if (line === '#') header = 2;
    else if (header > 0) header--;
    else if (key === undefined) key = line;
    else {
      if (line === '>') left.push(key);
      else if (line.startsWith('+')) {
        const [type = '', expiry = '-1'] = line.slice(1).split(' ');
        const seen = big.get(key);
        if (seen) seen.times++;
        else big.set(key, { type, expiry, times: 1 });
      } else keys.add(key, line);
      key = undefined;
    }
  };
  await scan(SCAN_LOOP, [String(db), SCRIPT, String(FIRST_SCAN_COUNT), String(STEP_ITEMS)], onLine);
  for (let i = 0; i < left.length; ) {
    const batch: string[] = [];
    for (let hex = 0; i < left.length && (batch.length === 0 || hex + left[i]!.length <= KEYS_HEX_PER_EXEC); i++) {
      hex += left[i]!.length;
      batch.push(left[i]!);
    }
    await scan(KEYS_LOOP, [String(db), KEYS_SCRIPT, String(STEP_ITEMS), ...batch], onLine);
  }
  const read = await readBigKeys(scan, db, big);
  for (const [hex, { times }] of big) {
    const lines = read.get(hex);
    if (!lines) throw new Error(`reading Redis key by key: the big key ${hex.slice(0, 60)} (hex) was not read in steps`);
    for (let i = 0; i < times; i++) for (const [k, v] of lines) keys.add(k, v);
  }
  return keys;
}

/**
 * Reads each big collection in steps (PIECE_SCRIPT), PIECE_KEYS_PER_EXEC to an exec: its value
 * line, and (a hash) its fields that expire. A set or hash whose steps gave more or fewer items
 * than the server holds (one twice while it rehashed) is read again, its items one by one.
 */
async function readBigKeys(scan: RedisScanner, db: number, big: Map<string, { type: string; expiry: string }>): Promise<Map<string, Array<[string, string]>>> {
  const lines = new Map<string, Array<[string, string]>>();
  let pending = [...big.keys()];
  for (const mode of ['sum', 'each'] as const) {
    const again: string[] = [];
    for (let i = 0; i < pending.length; i += PIECE_KEYS_PER_EXEC) {
      const batch = pending.slice(i, i + PIECE_KEYS_PER_EXEC);
      const readings: BigKeyReading[] = [];
      let next: 'key' | 'state' | undefined;
      let unexpected: string | undefined;
      const args = [String(db), PIECE_SCRIPT, String(PIECE_STEP_ITEMS), mode, ...batch.flatMap((hex) => [hex, big.get(hex)!.type])];
      await scan(PIECE_LOOP, args, (raw) => {
        const line = raw.trim();
        if (line === '@' || line === '#') {
          next = line === '@' ? 'key' : 'state';
          return;
        }
        if (next === 'key') readings.push(new BigKeyReading(line, big.get(line)?.type ?? '', mode === 'each'));
        else if (next === undefined) {
          // Not thrown here: this runs inside the exec's output stream.
          if (!readings.at(-1)?.add(line)) unexpected ??= line;
        }
        next = undefined;
      });
      if (unexpected !== undefined) throw new Error(`reading a big Redis key in steps: an unexpected line ${JSON.stringify(unexpected.slice(0, 60))}`);
      for (const reading of readings) {
        const read = reading.lines(big.get(reading.hex)!.expiry);
        if (read) lines.set(reading.hex, read);
        else again.push(reading.hex);
      }
    }
    pending = again;
  }
  return lines;
}

/** What the steps of one big collection said (PIECE_SCRIPT's lines), made into its value line. */
class BigKeyReading {
  private readonly lanes = new ItemLanes();
  private read = 0;
  private serverCount: number | undefined;
  private readonly pieces: string[] = [];
  private pieceItems = 0;
  private tail = '';
  private readonly fields = new Map<string, string>();
  private readonly seen: Set<number> | undefined;
  private changed = false;

  constructor(
    readonly hex: string,
    private readonly type: string,
    each: boolean,
  ) {
    if (each) this.seen = new Set();
  }

  /** Takes one of its lines; false for a line it does not know. */
  add(line: string): boolean {
    const [tag, a = '', b = '', c = ''] = line.split(' ');
    if (tag === 's') return this.lanes.addSum(b, Number(a));
    if (tag === 'i') {
      const id = Number.parseInt(a.slice(0, 13), 16); // 52 bits: two of 5 M items collide 1 in 300, then read as a mismatch
      if (!this.seen || !/^[0-9a-f]{40}$/.test(a)) return false;
      if (!this.seen.has(id)) {
        this.seen.add(id);
        this.lanes.add(a);
      }
    } else if (tag === 'f') this.fields.set(a, `${b} ${c}`);
    else if (tag === 'c') this.read += Number(a);
    else if (tag === 'n') this.serverCount = Number(a);
    else if (tag === 'd') {
      this.pieceItems += Number(a);
      this.pieces.push(b);
    } else if (tag === 't') this.tail = a;
    else if (tag === 'changed') this.changed = true;
    else return false;
    return true;
  }

  /** Its lines for the key space; undefined when it must be read again, item by item. */
  lines(expiry: string): Array<[string, string]> | undefined {
    // Written to while it was read: said as a value no backup has, so the check names the key.
    if (this.changed) return [[this.hex, `changed-while-read ${expiry}`]];
    if (this.type !== 'set' && this.type !== 'hash') return [[this.hex, `${orderedDigest(this.type, this.pieceItems, this.pieces, Buffer.from(this.tail, 'hex'))} ${expiry}`]];
    if (!this.seen && this.read !== this.serverCount) return undefined;
    const value = this.type === 'hash' && this.lanes.count === 0 ? '-' : `${unorderedDigest(this.type, this.lanes)} ${expiry}`;
    return [[this.hex, value], ...[...this.fields].map(([field, line]): [string, string] => [`${this.hex}:${field}`, line])];
  }
}

/** An item of the value encoding (LUA_ENCODING): its length, a colon, its bytes. */
export const encodedItem = (v: Buffer | string): Buffer[] => {
  const bytes = typeof v === 'string' ? Buffer.from(v) : v;
  return [Buffer.from(`${bytes.length}:`), bytes];
};

export const sha1Hex = (pieces: Buffer[]) => hash('sha1', Buffer.concat(pieces), 'hex');

/** An item's digest, as the Lua takes it: the SHA-1 (hex) of its encoded parts (a member; a field and its value). */
export const itemDigest = (...parts: Buffer[]): string => sha1Hex(parts.flatMap(encodedItem));

const LANE = 2 ** 52;

/** A set's or hash's items summed as the Lua sums them (LUA_ENCODING): three 52-bit lanes of each item's SHA-1, added mod 2^52. */
export class ItemLanes {
  private readonly lanes = [0, 0, 0];
  count = 0;

  /** Adds an item by its digest (40 hex digits). */
  add(digest: string): void {
    this.addLanes(digest);
    this.count++;
  }

  /** Adds a sum the Lua made of `count` items (39 hex digits); false for one that is not. */
  addSum(hex: string, count: number): boolean {
    if (!/^[0-9a-f]{39}$/.test(hex) || !Number.isSafeInteger(count)) return false;
    this.addLanes(hex);
    this.count += count;
    return true;
  }

  private addLanes(hex: string): void {
    for (let i = 0; i < 3; i++) this.lanes[i] = (this.lanes[i]! + Number.parseInt(hex.slice(i * 13, i * 13 + 13), 16)) % LANE;
  }

  hex(): string {
    return this.lanes.map((lane) => lane.toString(16).padStart(13, '0')).join('');
  }
}

/** A set's or hash's value digest: its type, its (lasting) items' count and their lanes. */
export const unorderedDigest = (type: string, lanes: ItemLanes): string => sha1Hex([...encodedItem(type), ...encodedItem(String(lanes.count)), ...encodedItem(lanes.hex())]);

/** A list's, sorted set's or stream's value digest: its type, its items' count, its pieces' digests in order, then (a stream) its tail. */
export const orderedDigest = (type: string, count: number, pieces: string[], tail: Buffer = Buffer.alloc(0)): string =>
  sha1Hex([...encodedItem(type), ...encodedItem(String(count)), ...pieces.flatMap((d) => encodedItem(d)), tail]);

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
