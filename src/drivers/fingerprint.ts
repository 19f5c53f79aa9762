import { createHash, hash } from 'node:crypto';
import { Murmur128 } from '../util/murmur128.js';

/**
 * A store's content, summarised so that two copies can be compared without trusting the path
 * that made one from the other. `parts` maps a readable name (a table, a key space, a
 * collection, a file) to a digest of its content; physical order never matters. `method`
 * names how the parts were computed: only fingerprints of the same method are compared.
 */
export interface Fingerprint {
  method: string;
  parts: Record<string, string>;
}

/**
 * How each item of a multiset is hashed. Fingerprint methods name theirs, so a fingerprint in an
 * old manifest is recomputed the same way: `sha256` (the first methods) or `murmur3-128` (7x
 * faster on short items such as rows; see util/murmur128.ts for why that is enough here).
 */
export type ItemHash = 'sha256' | 'murmur3-128';

/**
 * A fingerprint method's versions and how each hashes its items, newest last. A backup is
 * checked with the method its manifest recorded (an older one still computes the same way);
 * anything else, or nothing recorded, gets the current method.
 */
export function methodVersions(itemHashes: Record<string, ItemHash>) {
  const current = Object.keys(itemHashes).at(-1)!;
  return {
    current,
    methodFor: (recorded: Fingerprint | undefined) => (recorded && itemHashes[recorded.method] ? recorded.method : current),
    itemHash: (method: string) => itemHashes[method]!,
  };
}

/**
 * An order-independent digest of a multiset of items (rows, keys, files): each item's digest
 * is added into 32-bit lanes modulo 2^32, so the same items in any order give the same sum,
 * and a duplicated or missing item changes it (unlike XOR, where pairs cancel).
 */
export class MultisetDigest {
  private readonly lanes: Uint32Array;
  count = 0;

  constructor(readonly itemHash: ItemHash = 'sha256') {
    this.lanes = new Uint32Array(itemHash === 'sha256' ? 8 : 4);
  }

  /** Adds an item by its digest (as long as this digest's item hash gives). */
  add(itemDigest: Uint8Array): void {
    const d = itemDigest;
    for (let i = 0, j = 0; i < this.lanes.length; i++, j += 4) {
      this.lanes[i] = (this.lanes[i]! + ((d[j]! << 24) | (d[j + 1]! << 16) | (d[j + 2]! << 8) | d[j + 3]!)) >>> 0;
    }
    this.count++;
  }

  /** Adds a whole item given as its bytes. */
  addBytes(bytes: Uint8Array): void {
    if (this.itemHash === 'sha256') return this.add(hash('sha256', bytes, 'buffer'));
    SHARED_MURMUR.reset().update(bytes).digestInto(SCRATCH);
    this.add(SCRATCH);
  }

  /** Streams one item in pieces (a row may arrive in several chunks). */
  item(): ItemHasher {
    return new ItemHasher(this);
  }

  toString(): string {
    return `n=${this.count} ${Buffer.from(this.lanes.buffer).toString('hex')}`;
  }
}

// One hasher and one digest buffer for all one-shot items: JS runs one item at a time.
const SHARED_MURMUR = new Murmur128();
const SCRATCH = new Uint8Array(16);

/**
 * One item's digest, fed in pieces. Most items (rows) arrive whole in one piece: those are
 * hashed in one call, without a hasher object per item (twice as fast on millions of rows).
 */
export class ItemHasher {
  private first: Uint8Array | undefined;
  private streaming: { update(b: Uint8Array): unknown; digest(): Buffer } | undefined;
  constructor(private readonly into: MultisetDigest) {}
  update(piece: Uint8Array): this {
    if (this.streaming) this.streaming.update(piece);
    else if (this.first === undefined) this.first = piece;
    else {
      this.streaming = this.into.itemHash === 'sha256' ? createHash('sha256') : new Murmur128();
      this.streaming.update(this.first);
      this.streaming.update(piece);
    }
    return this;
  }
  end(): void {
    if (this.streaming) this.into.add(this.streaming.digest());
    else this.into.addBytes(this.first ?? EMPTY);
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * The first difference between an expected and an actual fingerprint, as a sentence naming
 * the part (table, key space, collection, file), or undefined when they are equal.
 */
export function firstDifference(expected: Fingerprint, actual: Fingerprint): string | undefined {
  if (expected.method !== actual.method) return `the fingerprints were made differently (${expected.method} vs ${actual.method})`;
  const names = [...new Set([...Object.keys(expected.parts), ...Object.keys(actual.parts)])].sort();
  for (const name of names) {
    const want = expected.parts[name];
    const got = actual.parts[name];
    if (want === got) continue;
    if (got === undefined) return `${readable(name)} is missing`;
    if (want === undefined) return `${readable(name)} is there but was not in the backup`;
    return `${readable(name)} differs (backup: ${short(want)}; now: ${short(got)})`;
  }
  return undefined;
}

/** Part names are kept as the store's bytes seen through latin1; show them as UTF-8 when they are. */
function readable(name: string): string {
  const bytes = Buffer.from(name, 'latin1');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return name;
  }
}

const short = (digest: string) => (digest.length > 40 ? `${digest.slice(0, 37)}...` : digest);

/**
 * A fingerprint as it must still hold at `at`, for a driver whose stores change by themselves
 * (Driver.fingerprintAt); as it is for every other driver. undefined: it cannot be compared
 * any more, and the backup's side must be computed again.
 */
export function fingerprintAt(
  driver: { fingerprintAt?(fp: Fingerprint, at: Date, other?: Fingerprint): Fingerprint | undefined },
  fp: Fingerprint | undefined,
  at: Date,
  other?: Fingerprint,
): Fingerprint | undefined {
  if (!fp) return undefined;
  return driver.fingerprintAt ? driver.fingerprintAt(fp, at, other) : fp;
}

/** Raised when what was restored is not what was backed up; restore reports it as exit 5. */
export class ContentMismatchError extends Error {
  constructor(readonly difference: string) {
    super(`the restored content differs from the backup: ${difference}`);
  }
}

/** One digest over all parts, for display and quick equality. */
export function summaryDigest(fp: Fingerprint): string {
  const h = createHash('sha256').update(fp.method);
  for (const name of Object.keys(fp.parts).sort()) h.update(`\0${name}\0${fp.parts[name]}`);
  return h.digest('hex');
}
