/** Helpers to build RDB bytes by hand, hostile ones included (lengths, LZF, ziplists, listpacks). */
export const len = (n: number): Buffer => {
  if (n < 64) return Buffer.from([n]);
  if (n < 16384) return Buffer.from([0x40 | (n >> 8), n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = 0x80;
  b.writeUInt32BE(n, 1);
  return b;
};
/** A plain RDB string. */
export const raw = (s: Buffer | string): Buffer => {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
  return Buffer.concat([len(b.length), b]);
};
/**
 * A tiny LZF compressor for repetitive data: literals, and back references at distances
 * 1..16 (enough for "aaaa", "0201 0201 ..." patterns). Produces what lzf_decompress reads.
 */
export function lzf(input: Buffer): Buffer {
  const out: number[] = [];
  let lit: number[] = [];
  const flush = () => {
    for (let i = 0; i < lit.length; i += 32) {
      const part = lit.slice(i, i + 32);
      out.push(part.length - 1, ...part);
    }
    lit = [];
  };
  let i = 0;
  while (i < input.length) {
    let bestLen = 0;
    let bestDist = 0;
    for (let d = 1; d <= 16 && d <= i; d++) {
      let l = 0;
      while (i + l < input.length && l < 264 && input[i + l] === input[i + l - d]) l++;
      if (l > bestLen) [bestLen, bestDist] = [l, d];
      if (l === 264) break;
    }
    if (bestLen >= 3) {
      flush();
      const off = bestDist - 1;
      const n = bestLen - 2;
      if (n < 7) out.push((n << 5) | (off >> 8), off & 0xff);
      else out.push((7 << 5) | (off >> 8), n - 7, off & 0xff);
      i += bestLen;
    } else lit.push(input[i++]!);
  }
  flush();
  return Buffer.from(out);
}
/** An RDB string, LZF-compressed (encoding 0xc3). */
export const lzfStr = (plain: Buffer): Buffer => {
  const c = lzf(plain);
  return Buffer.concat([Buffer.from([0xc3]), len(c.length), len(plain.length), c]);
};
/** A ziplist of 1-byte immediate integers (0xf1 = 0), `n` entries. */
export function ziplistOfZeros(n: number): Buffer {
  const body = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) {
    body[2 * i] = i === 0 ? 0 : 2;
    body[2 * i + 1] = 0xf1;
  }
  const head = Buffer.alloc(10);
  head.writeUInt32LE(10 + body.length + 1, 0);
  head.writeUInt16LE(Math.min(n, 65535), 8);
  return Buffer.concat([head, body, Buffer.from([0xff])]);
}
/** A listpack of the given entries (each already encoded with its back-length). */
export function listpackOf(entries: Buffer[]): Buffer {
  const body = Buffer.concat([...entries, Buffer.from([0xff])]);
  const head = Buffer.alloc(6);
  head.writeUInt32LE(6 + body.length, 0);
  head.writeUInt16LE(Math.min(entries.length, 65535), 4);
  return Buffer.concat([head, body]);
}
const backLen = (n: number): Buffer => {
  if (n <= 127) return Buffer.from([n]);
  if (n < 16383) return Buffer.from([n >> 7, (n & 127) | 128]);
  if (n < 2097151) return Buffer.from([n >> 14, ((n >> 7) & 127) | 128, (n & 127) | 128]);
  return Buffer.from([n >> 21, ((n >> 14) & 127) | 128, ((n >> 7) & 127) | 128, (n & 127) | 128]);
};
/** A listpack entry: a small int (0..127) or a string. */
export const lpInt = (v: number) => Buffer.from([v, 1]);
export function lpStr(s: Buffer | string): Buffer {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
  let head: Buffer;
  if (b.length < 64) head = Buffer.from([0x80 | b.length]);
  else if (b.length < 4096) head = Buffer.from([0xe0 | (b.length >> 8), b.length & 0xff]);
  else {
    head = Buffer.alloc(5);
    head[0] = 0xf0;
    head.writeUInt32LE(b.length, 1);
  }
  return Buffer.concat([head, b, backLen(head.length + b.length)]);
}
/** An RDB of version 11: body, end marker, a zero CRC. */
export const rdb = (...body: Buffer[]) => Buffer.concat([Buffer.from('REDIS0011'), ...body, Buffer.from([0xff]), Buffer.alloc(8)]);
