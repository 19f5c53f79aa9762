import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ItemLanes, itemDigest, KEYS_LOOP, type RedisScanner, redisFingerprint, redisFingerprintAt, SCAN_LOOP } from '../../src/drivers/redis-fingerprint.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const T0 = Date.parse('2026-12-05T10:00:00Z');

interface Key {
  name: string;
  value: string;
  /** Absolute expiry in ms; undefined: none. */
  expiresAt?: number;
}

/**
 * A server holding `keys` in db 0, read at `now` the way the Lua step reports each key: its hex
 * name, then `-` (expires within a day), or a value digest and the absolute expiry (-1: none).
 * Keys already expired are gone. `twice` sends those keys a second time, as SCAN can while the
 * server rehashes.
 */
function serverAt(keys: Key[], now: number, twice: string[] = []) {
  const live = keys.filter((k) => k.expiresAt === undefined || k.expiresAt > now);
  let reads = 0;
  const cli = async () => `# Keyspace\r\n${live.length ? `db0:keys=${live.length},expires=0,avg_ttl=0\r\n` : ''}`;
  const scan: RedisScanner = async (_loop, _args, onLine) => {
    const sent = reads++ === 0 ? [...live, ...live.filter((k) => twice.includes(k.name))] : live;
    onLine('#');
    onLine('0');
    onLine('10000');
    for (const k of sent) {
      onLine(Buffer.from(k.name).toString('hex'));
      if (k.expiresAt !== undefined && k.expiresAt - now < DAY) onLine('-');
      else onLine(`${k.value} ${k.expiresAt ?? -1}`);
    }
  };
  return { cli, scan };
}

const fingerprintAt = async (keys: Key[], now: number, twice: string[] = []) => {
  const { cli, scan } = serverAt(keys, now, twice);
  return redisFingerprint(cli, scan);
};

describe('Redis fingerprint: keys that expire', () => {
  it('sums keys with an expiry per day of it, and names keys without one', async () => {
    const fp = await fingerprintAt(
      [
        { name: 'plain', value: 'a' },
        { name: 'in three days', value: 'b', expiresAt: T0 + 3 * DAY },
        { name: 'also in three days', value: 'c', expiresAt: T0 + 3 * DAY + 1000 },
        { name: 'in an hour', value: 'd', expiresAt: T0 + 3_600_000 },
      ],
      T0,
    );
    expect(Object.keys(fp.parts).sort()).toEqual(['db0 expiring 2026-12-08', 'db0 key plain']);
    expect(fp.parts['db0 expiring 2026-12-08']).toMatch(/^n=2 /);
  });

  it.each([
    ['a day whose keys have expired', '2026-12-04', false],
    ['today', '2026-12-05', false],
    ['tomorrow (left out: they may expire between two readings)', '2026-12-06', false],
    ['the day after tomorrow', '2026-12-07', true],
    ['a later day', '2027-01-01', true],
    ['a day Redis < 7 does not tell', 'on a day Redis < 7 does not tell', false],
  ])('compared at a time, keys expiring on %s: kept %s', (_what, day, kept) => {
    const fp = { method: 'redis-v5', parts: { db0: 'n=1 x', 'db0 key k expiring 2020-01-01': 'v', [`db0 expiring ${day}`]: 'n=1 y' } };
    const at = redisFingerprintAt(fp, new Date(T0))!;
    expect(Object.keys(at.parts).includes(`db0 expiring ${day}`)).toBe(kept);
    expect(at.parts.db0).toBe('n=1 x');
    expect(at.parts['db0 key k expiring 2020-01-01']).toBe('v'); // a key's name, not a day
  });

  it('compared with a fingerprint from Redis < 7 (expiry days unknown), keys that expire are left out on both sides', () => {
    const known = { method: 'redis-v5', parts: { db0: 'n=1 x', 'db0 expiring 2027-01-01': 'n=2 y' } };
    const unknown = { method: 'redis-v5', parts: { db0: 'n=1 x', 'db0 expiring on a day Redis < 7 does not tell': 'n=2 z' } };
    const at = new Date(T0);
    expect(redisFingerprintAt(known, at, unknown)).toEqual(redisFingerprintAt(unknown, at, known));
    expect(redisFingerprintAt(known, at)!.parts['db0 expiring 2027-01-01']).toBe('n=2 y'); // kept when both sides know the days
  });

  it('an expiry in the year 10000 or later is summed on the last day there is, not sorted before every date', async () => {
    const fp = await fingerprintAt(
      [
        { name: 'far', value: 'a', expiresAt: 9e15 },
        { name: 'farther', value: 'b', expiresAt: 253402300800000 + DAY },
      ],
      T0,
    );
    expect(Object.keys(fp.parts)).toEqual(['db0 expiring 9999-12-31']);
    expect(redisFingerprintAt(fp, new Date(T0))!.parts['db0 expiring 9999-12-31']).toMatch(/^n=2 /);
  });

  it("a hash's field that expires is an item under its own day, not a key: the hash is named by its lasting fields", async () => {
    const h = Buffer.from('h').toString('hex');
    const lines = ['#', '0', '10000', h, 'abc -1', `${h}:${Buffer.from('f').toString('hex')}`, `def ${T0 + 3 * DAY}`];
    const fp = await redisFingerprint(
      async () => 'db0:keys=1,expires=0,avg_ttl=0,subexpiry=1',
      async (_loop, _args, onLine) => {
        for (const l of lines) onLine(l);
      },
    );
    expect(Object.keys(fp.parts).sort()).toEqual(['db0 expiring 2026-12-08', 'db0 key h']);
  });

  it('cannot compare a redis-v2 fingerprint, which left keys out by when it was made', () => {
    expect(redisFingerprintAt({ method: 'redis-v2', parts: { db0: 'n=1 x' } }, new Date(T0))).toBeUndefined();
  });

  it('a key SCAN gives twice is counted once, whether or not it expires', async () => {
    const keys: Key[] = [
      { name: 'plain', value: 'a' },
      { name: 'later', value: 'b', expiresAt: T0 + 5 * DAY },
    ];
    expect(await fingerprintAt(keys, T0, ['later', 'plain'])).toEqual(await fingerprintAt(keys, T0));
  });

  it('a fingerprint made at any time compares equal later, as both hold then, however the keys expire; a changed value still differs', async () => {
    const key = fc.record({
      name: fc.string({ minLength: 1, maxLength: 6 }),
      value: fc.constantFrom('v1', 'v2', 'v3'),
      expiresIn: fc.option(fc.integer({ min: -2 * DAY, max: 10 * DAY }), { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(key, { selector: (k) => k.name, maxLength: 30 }), fc.integer({ min: 0, max: 6 * DAY }), async (spec, later) => {
        const keys = spec.map((k) => ({ name: k.name, value: k.value, ...(k.expiresIn !== undefined ? { expiresAt: T0 + k.expiresIn } : {}) }));
        const recorded = await fingerprintAt(keys, T0);
        const now = T0 + later;
        const readNow = await fingerprintAt(keys, now);
        expect(redisFingerprintAt(recorded, new Date(now))).toEqual(redisFingerprintAt(readNow, new Date(now)));
        // A key that still counts then, with another value, is told apart. Days up to the one
        // after now and an hour are left out: that day ends at most 2 days and an hour after now.
        const counted = keys.find((k) => k.expiresAt === undefined || k.expiresAt >= now + 2 * DAY + HOUR);
        if (counted) {
          const changed = keys.map((k) => (k === counted ? { ...k, value: `${k.value}!` } : k));
          expect(redisFingerprintAt(await fingerprintAt(changed, now), new Date(now))).not.toEqual(redisFingerprintAt(readNow, new Date(now)));
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('Redis fingerprint: a big set read in steps', () => {
  const digests = ['a', 'b', 'c'].map((m) => itemDigest(Buffer.from(m)));
  const sumOf = (ds: string[]) => {
    const lanes = new ItemLanes();
    for (const d of ds) lanes.add(d);
    return lanes.hex();
  };
  const key = Buffer.from('big').toString('hex');
  /** A server whose SCAN finds one big set, and whose steps give `stepItems` (the member digests) per mode. */
  const server = (stepItems: { sum: string[]; each: string[] }) => {
    const modes: string[] = [];
    const scan: RedisScanner = async (loop, args, onLine) => {
      const lines =
        loop === SCAN_LOOP
          ? ['#', '0', '100', key, '+set -1']
          : args[3] === 'sum'
            ? ['@', key, '#', 'end', `s ${stepItems.sum.length} ${sumOf(stepItems.sum)}`, `c ${stepItems.sum.length}`, 'n 3']
            : ['@', key, '#', 'end', ...stepItems.each.map((d) => `i ${d}`), `c ${stepItems.each.length}`, 'n 3'];
      if (loop !== SCAN_LOOP) modes.push(args[3]!);
      for (const l of lines) onLine(l);
    };
    return { fp: () => redisFingerprint(async () => 'db0:keys=1,expires=0,avg_ttl=0', scan), modes };
  };

  it('sums its members once; one SSCAN gave twice is read again member by member and counted once', async () => {
    const once = server({ sum: digests, each: [] });
    const twice = server({ sum: [...digests, digests[1]!], each: [...digests, digests[1]!] });
    const expected = await once.fp();
    expect(once.modes).toEqual(['sum']);
    expect(await twice.fp()).toEqual(expected);
    expect(twice.modes).toEqual(['sum', 'each']);
    expect(expected.parts['db0 key big']).toMatch(/^[0-9a-f]{40} -1$/);
  });

  it('an unknown line from a step is an error, not a digest', async () => {
    const scan: RedisScanner = async (loop, _args, onLine) => {
      for (const l of loop === SCAN_LOOP ? ['#', '0', '100', key, '+list -1'] : ['@', key, '#', 'end', 'BUSY Redis is busy']) onLine(l);
    };
    await expect(redisFingerprint(async () => 'db0:keys=1', scan)).rejects.toThrow(/unexpected line "BUSY/);
  });
});

describe('Redis fingerprint: keys a SCAN step leaves past its budget', () => {
  const hex = (s: string) => Buffer.from(s).toString('hex');
  const value = (n: number) => `${String(n).repeat(40).slice(0, 40)} -1`;

  it('are read afterwards many to a script, as often as SCAN gave them, and a big one among them in steps', async () => {
    const calls: string[][] = [];
    const scan: RedisScanner = async (loop, args, onLine) => {
      calls.push(loop === SCAN_LOOP ? ['scan'] : [loop === KEYS_LOOP ? 'keys' : 'piece', ...args.slice(3)]);
      const lines =
        loop === SCAN_LOOP
          ? ['#', '0', '100', hex('a'), value(1), hex('b'), '>', hex('c'), '>', hex('b'), '>']
          : loop === KEYS_LOOP
            ? ['#', '2', '', hex('b'), value(2), hex('c'), '+list -1', '#', '1', '', hex('b'), value(2)]
            : ['@', hex('c'), '#', 'end', `d 3 ${'d'.repeat(40)}`];
      for (const l of lines) onLine(l);
    };
    const fp = await redisFingerprint(async () => 'db0:keys=3,expires=0,avg_ttl=0', scan);
    // b twice: the database is read again, remembering keys, and counts b once.
    expect(calls.map((c) => c.join(' '))).toEqual([
      'scan',
      `keys ${hex('b')} ${hex('c')} ${hex('b')}`,
      `piece sum ${hex('c')} list`,
      'scan',
      `keys ${hex('b')} ${hex('c')} ${hex('b')}`,
      `piece sum ${hex('c')} list`,
    ]);
    expect(Object.keys(fp.parts).sort()).toEqual(['db0 key a', 'db0 key b', 'db0 key c']);
    expect(fp.parts['db0 key b']).toBe(value(2));
    expect(fp.parts['db0 key c']).toMatch(/^[0-9a-f]{40} -1$/);
  });
});
