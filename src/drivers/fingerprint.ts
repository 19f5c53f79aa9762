import { createHash, type Hash, hash } from 'node:crypto';

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
 * An order-independent digest of a multiset of items (rows, keys, files): each item's SHA-256
 * is added into eight 32-bit lanes modulo 2^32, so the same items in any order give the same
 * sum, and a duplicated or missing item changes it (unlike XOR, where pairs cancel).
 */
export class MultisetDigest {
  private readonly lanes = new Uint32Array(8);
  count = 0;

  add(itemDigest: Buffer): void {
    for (let i = 0; i < 8; i++) this.lanes[i] = (this.lanes[i]! + itemDigest.readUInt32BE(i * 4)) >>> 0;
    this.count++;
  }

  /** Streams one item in pieces (a row may arrive in several chunks). */
  item(): ItemHasher {
    return new ItemHasher(this);
  }

  toString(): string {
    return `n=${this.count} ${Buffer.from(this.lanes.buffer).toString('hex')}`;
  }
}

/**
 * One item's SHA-256, fed in pieces. Most items (rows) arrive whole in one piece: those are
 * hashed in one call, without a Hash object per item (twice as fast on millions of rows).
 */
export class ItemHasher {
  private first: Buffer | undefined;
  private hash: Hash | undefined;
  constructor(private readonly into: MultisetDigest) {}
  update(piece: Buffer): this {
    if (this.hash) this.hash.update(piece);
    else if (this.first === undefined) this.first = piece;
    else this.hash = createHash('sha256').update(this.first).update(piece);
    return this;
  }
  end(): void {
    this.into.add(this.hash ? this.hash.digest() : hash('sha256', this.first ?? EMPTY, 'buffer'));
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
