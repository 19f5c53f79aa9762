/**
 * MurmurHash3 x86_128 (Austin Appleby's public-domain reference, seed 0), in plain JS.
 *
 * Why not SHA-256: content fingerprints hash every row of a store one by one (1.7 M rows for a
 * 400 MB Postgres dump), and a native `crypto.hash` call costs ~2 µs each however short the row:
 * 3.6 s against 0.4 s for this on the same rows. The fingerprint guards against accidents
 * (a restore that changed bytes), not against someone who holds the backup, who could change
 * both sides anyway; 128 bits make an accidental match of two different rows negligible.
 *
 * `update` may be called with any split of the input: the digest is that of the concatenation.
 */
export class Murmur128 {
  private h1 = 0;
  private h2 = 0;
  private h3 = 0;
  private h4 = 0;
  private length = 0;
  /** Up to 15 bytes carried over until a 16-byte block is whole. */
  private readonly tail = new Uint8Array(16);
  private tailLength = 0;

  /** Back to the empty input, so one instance can hash millions of short items without allocating. */
  reset(): this {
    this.h1 = this.h2 = this.h3 = this.h4 = 0;
    this.length = 0;
    this.tailLength = 0;
    return this;
  }

  update(bytes: Uint8Array): this {
    let i = 0;
    const n = bytes.length;
    this.length += n;
    if (this.tailLength) {
      while (this.tailLength < 16 && i < n) this.tail[this.tailLength++] = bytes[i++]!;
      if (this.tailLength < 16) return this;
      this.blocks(this.tail, 0, 16);
      this.tailLength = 0;
    }
    const whole = i + ((n - i) & ~15);
    this.blocks(bytes, i, whole);
    for (i = whole; i < n; i++) this.tail[this.tailLength++] = bytes[i]!;
    return this;
  }

  /** Writes the 16-byte digest (h1..h4, each big-endian, as the reference prints it) into `out` at `at`. */
  digestInto(out: Uint8Array, at = 0): void {
    let { h1, h2, h3, h4 } = this;
    const b = this.tail;
    let k1 = 0;
    let k2 = 0;
    let k3 = 0;
    let k4 = 0;
    // The reference's fall-through switch on the tail length, unrolled as ifs.
    const t = this.tailLength;
    if (t >= 13) {
      if (t >= 15) k4 ^= b[14]! << 16;
      if (t >= 14) k4 ^= b[13]! << 8;
      k4 ^= b[12]!;
      h4 ^= Math.imul(rotl(Math.imul(k4, C4), 18), C1);
    }
    if (t >= 9) {
      if (t >= 12) k3 ^= b[11]! << 24;
      if (t >= 11) k3 ^= b[10]! << 16;
      if (t >= 10) k3 ^= b[9]! << 8;
      k3 ^= b[8]!;
      h3 ^= Math.imul(rotl(Math.imul(k3, C3), 17), C4);
    }
    if (t >= 5) {
      if (t >= 8) k2 ^= b[7]! << 24;
      if (t >= 7) k2 ^= b[6]! << 16;
      if (t >= 6) k2 ^= b[5]! << 8;
      k2 ^= b[4]!;
      h2 ^= Math.imul(rotl(Math.imul(k2, C2), 16), C3);
    }
    if (t >= 1) {
      if (t >= 4) k1 ^= b[3]! << 24;
      if (t >= 3) k1 ^= b[2]! << 16;
      if (t >= 2) k1 ^= b[1]! << 8;
      k1 ^= b[0]!;
      h1 ^= Math.imul(rotl(Math.imul(k1, C1), 15), C2);
    }
    // The reference mixes in the length as a 32-bit value (it takes an int).
    const len = this.length | 0;
    h1 ^= len;
    h2 ^= len;
    h3 ^= len;
    h4 ^= len;
    h1 = (h1 + h2 + h3 + h4) | 0;
    h2 = (h2 + h1) | 0;
    h3 = (h3 + h1) | 0;
    h4 = (h4 + h1) | 0;
    h1 = fmix(h1);
    h2 = fmix(h2);
    h3 = fmix(h3);
    h4 = fmix(h4);
    h1 = (h1 + h2 + h3 + h4) | 0;
    h2 = (h2 + h1) | 0;
    h3 = (h3 + h1) | 0;
    h4 = (h4 + h1) | 0;
    writeBE(out, at, h1);
    writeBE(out, at + 4, h2);
    writeBE(out, at + 8, h3);
    writeBE(out, at + 12, h4);
  }

  digest(): Buffer {
    const out = Buffer.alloc(16);
    this.digestInto(out);
    return out;
  }

  private blocks(b: Uint8Array, from: number, to: number): void {
    let { h1, h2, h3, h4 } = this;
    for (let i = from; i < to; i += 16) {
      const k1 = b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
      const k2 = b[i + 4]! | (b[i + 5]! << 8) | (b[i + 6]! << 16) | (b[i + 7]! << 24);
      const k3 = b[i + 8]! | (b[i + 9]! << 8) | (b[i + 10]! << 16) | (b[i + 11]! << 24);
      const k4 = b[i + 12]! | (b[i + 13]! << 8) | (b[i + 14]! << 16) | (b[i + 15]! << 24);
      h1 ^= Math.imul(rotl(Math.imul(k1, C1), 15), C2);
      h1 = (Math.imul(rotl(h1, 19) + h2, 5) + 0x561ccd1b) | 0;
      h2 ^= Math.imul(rotl(Math.imul(k2, C2), 16), C3);
      h2 = (Math.imul(rotl(h2, 17) + h3, 5) + 0x0bcaa747) | 0;
      h3 ^= Math.imul(rotl(Math.imul(k3, C3), 17), C4);
      h3 = (Math.imul(rotl(h3, 15) + h4, 5) + 0x96cd1c35) | 0;
      h4 ^= Math.imul(rotl(Math.imul(k4, C4), 18), C1);
      h4 = (Math.imul(rotl(h4, 13) + h1, 5) + 0x32ac3b17) | 0;
    }
    this.h1 = h1;
    this.h2 = h2;
    this.h3 = h3;
    this.h4 = h4;
  }
}

const C1 = 0x239b961b;
const C2 = 0xab0e9789;
const C3 = 0x38b34ae5;
const C4 = 0xa1e38b93;

const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function writeBE(out: Uint8Array, at: number, v: number): void {
  out[at] = v >>> 24;
  out[at + 1] = (v >>> 16) & 0xff;
  out[at + 2] = (v >>> 8) & 0xff;
  out[at + 3] = v & 0xff;
}

/** One-shot digest of whole bytes. */
export const murmur128 = (bytes: Uint8Array): Buffer => new Murmur128().update(bytes).digest();
