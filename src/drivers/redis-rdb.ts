import type { Readable } from 'node:stream';
import {
  DAY_MS,
  encodedItem,
  sha1Hex,
  formatScore,
  ItemLanes,
  itemDigest,
  KeySpace,
  keySpaceParts,
  orderedDigest,
  PIECE_ITEMS,
  REDIS_FINGERPRINT_METHOD,
  unorderedDigest,
} from './redis-fingerprint.js';
import type { Fingerprint } from './fingerprint.js';

/**
 * Reads a Redis RDB file on the host and gives the same fingerprint (REDIS_FINGERPRINT_METHOD) as the Lua that
 * reads a server key by key (redis-fingerprint.ts), without a server: a restore or a deep
 * verify then needs no throwaway Redis to load a million keys and answer for each (30-40 s of
 * CPU on a 1 M-key RDB, against about 5 s here). It is also a reader that shares nothing with
 * Redis's own loader, which the restored server's side goes through.
 *
 * It reads what Redis 2.6 to 8 and Valkey 8 write for strings, lists, sets, sorted sets,
 * hashes (with fields that expire) and streams (with consumer groups). Anything else (module
 * types, module aux data, zipmaps, opcodes or versions it does not know, keys past its limits)
 * throws RdbNotReadHere: the caller then asks a server.
 * Memory: one key at a time (a key's whole value is held while it is read).
 */
export class RdbNotReadHere extends Error {}

/**
 * One key is held whole while it is read (a sorted set's or stream's items sorted): a key past
 * these (a real 10 M-member set, or a crafted file of a million empty items, which would grow
 * Node's heap past its limit and abort the process) is left to a server.
 */
const MAX_KEY_BYTES = 64 * 1024 * 1024;
const MAX_KEY_ITEMS = 250_000;
/** Buffers one key holds at once (a hash of MAX_KEY_ITEMS fields holds two per field; a stream, its entries' fields). */
const MAX_KEY_HELD = 4 * MAX_KEY_ITEMS;
const tooBig = (what: string) => new RdbNotReadHere(`a key holds ${what}, more than this reader holds at once`);

/** The RDB's content as a fingerprint of the current method, read as of `now` (which keys expire within a day). */
export async function rdbFingerprint(rdb: AsyncIterable<Buffer> | Readable, size: number, now = Date.now()): Promise<Fingerprint> {
  const keyspaces = new Map<number, KeySpace>();
  const parser = new RdbParser(now, (db) => {
    let keys = keyspaces.get(db);
    if (!keys) keyspaces.set(db, (keys = new KeySpace(false)));
    return keys;
  });
  await feed(rdb, size, parser);
  const parts: Record<string, string> = {};
  for (const db of [...keyspaces.keys()].sort((a, b) => a - b)) keySpaceParts(db, keyspaces.get(db)!, parts);
  return { method: REDIS_FINGERPRINT_METHOD, parts };
}

/** Thrown by a read past the bytes at hand: the step is read again from its start once `need` bytes are there. */
class NeedMore {
  constructor(readonly need: number) {}
}

const corrupt = (what: string) => new Error(`the RDB is not well formed: ${what}`);

/**
 * Feeds the stream to the parser one step (a header, an opcode, a key) at a time. A step that
 * runs past the bytes at hand is read again once more have come: at least as many as it asked
 * for and twice what it had, so a big key is read again a few times, never once per chunk.
 */
async function feed(rdb: AsyncIterable<Buffer>, size: number, parser: RdbParser): Promise<void> {
  let buf: Buffer = Buffer.alloc(0);
  const pending: Buffer[] = [];
  let pendingBytes = 0;
  let want = 0;
  let consumed = 0;
  const step = () => {
    for (;;) {
      parser.reset(buf);
      try {
        if (!parser.step()) {
          buf = buf.subarray(parser.pos);
          return true;
        }
      } catch (err) {
        if (!(err instanceof NeedMore)) throw err;
        if (consumed + err.need > size) throw corrupt(`a value runs past the file's end (byte ${consumed + err.need} of ${size})`);
        if (err.need > MAX_KEY_BYTES) throw tooBig(`over ${MAX_KEY_BYTES / 1024 / 1024} MiB`);
        want = Math.max(err.need, Math.min(2 * buf.length, size - consumed));
        return false;
      }
      consumed += parser.pos;
      buf = buf.subarray(parser.pos);
    }
  };
  let done = false;
  let trailing = 0; // bytes after the end marker
  for await (const chunk of rdb) {
    if (done) {
      trailing += chunk.length;
      continue;
    }
    pending.push(chunk);
    pendingBytes += chunk.length;
    if (buf.length + pendingBytes < want) continue;
    buf = Buffer.concat([buf, ...pending]);
    pending.length = 0;
    pendingBytes = 0;
    done = step();
  }
  if (pendingBytes) {
    buf = Buffer.concat([buf, ...pending]);
    done = step();
  }
  if (!done) throw corrupt('it ends before its end marker');
  trailing += buf.length;
  if (trailing !== parser.trailer) throw corrupt(`${trailing} bytes follow its end marker where ${parser.trailer} were expected`);
}

// Opcodes and value types (Redis's rdb.h).
const OP = { slotInfo: 244, function2: 245, functionPreGa: 246, moduleAux: 247, idle: 248, freq: 249, aux: 250, resizeDb: 251, expireMs: 252, expireSec: 253, selectDb: 254, eof: 255 };
const T = {
  string: 0,
  list: 1,
  set: 2,
  zset: 3,
  hash: 4,
  zset2: 5,
  listZiplist: 10,
  setIntset: 11,
  zsetZiplist: 12,
  hashZiplist: 13,
  listQuicklist: 14,
  hashListpack: 16,
  zsetListpack: 17,
  listQuicklist2: 18,
  setListpack: 20,
  stream: 15,
  stream2: 19,
  stream3: 21,
  hashMetadataPreGa: 22,
  hashListpackExPreGa: 23,
  hashMetadata: 24,
  hashListpackEx: 25,
};
const DAY = DAY_MS;
/** Redis 7.4 and 8.0 write version 12. */
const NEWEST_VERSION = 12;

/** A key's value as its canonical items (see the Lua in redis-fingerprint.ts). */
type Value =
  | { type: 'string'; value: Buffer }
  | { type: 'list' | 'set'; items: Buffer[] }
  | { type: 'zset'; pairs: Array<[Buffer, number]> }
  | { type: 'hash'; fields: Array<[Buffer, Buffer, number | undefined]> }
  /** Already the Lua's items in its order: each entry's id, field count, fields and values; then the last id and the groups. */
  | { type: 'stream'; entries: Buffer[][]; tail: Buffer[] };

class RdbParser {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  /** Bytes after the end marker: the CRC64 from RDB version 5. */
  trailer = 0;
  private version = -1;
  private db = 0;
  private expiry: number | undefined;
  /** What the step being read holds so far: bytes as decoded (LZF expands up to 88 times) and Buffers. */
  private heldBytes = 0;
  private heldItems = 0;

  constructor(
    private readonly now: number,
    private readonly keysOf: (db: number) => KeySpace,
  ) {}

  reset(buf: Buffer): void {
    this.buf = buf;
    this.pos = 0;
  }

  /** Reads one step; false once the end marker is read. */
  step(): boolean {
    if (this.version < 0) {
      const magic = this.take(9).toString('latin1');
      if (!/^REDIS\d{4}$/.test(magic)) throw corrupt('it does not start with REDIS and a version');
      this.version = Number(magic.slice(5));
      if (this.version > NEWEST_VERSION) throw new RdbNotReadHere(`the RDB is of version ${this.version}, newer than this reader knows (${NEWEST_VERSION})`);
      this.trailer = this.version >= 5 ? 8 : 0;
      return true;
    }
    this.heldBytes = 0;
    this.heldItems = 0;
    const op = this.byte();
    switch (op) {
      case OP.eof:
        return false;
      case OP.selectDb:
        this.db = this.length();
        return true;
      case OP.resizeDb:
        this.length();
        this.length();
        return true;
      case OP.slotInfo:
        this.length();
        this.length();
        this.length();
        return true;
      case OP.aux:
        this.string();
        this.string();
        return true;
      case OP.function2:
        this.string();
        return true;
      case OP.expireMs: {
        // Signed, as Redis reads it: -1 is no expiry, any other time before now an expired key.
        const at = this.take(8).readBigInt64LE(0);
        this.expiry = at === -1n ? undefined : Number(at);
        return true;
      }
      case OP.expireSec:
        this.expiry = this.take(4).readInt32LE(0) * 1000;
        return true;
      case OP.freq:
        this.byte();
        return true;
      case OP.idle:
        this.length();
        return true;
      case OP.moduleAux:
      case OP.functionPreGa:
        throw new RdbNotReadHere(`the RDB holds ${op === OP.moduleAux ? "a module's own data" : "a Redis 7.0 release candidate's functions"}`);
    }
    const key = this.string();
    const value = this.value(op);
    const expiry = this.expiry;
    this.expiry = undefined;
    this.add(key, value, expiry);
    return true;
  }

  /** Adds a key as the Lua reads it: a value line, then (hash fields that expire) an item per field. */
  private add(key: Buffer, value: Value, expiry: number | undefined): void {
    const keys = this.keysOf(this.db);
    const hexKey = key.toString('hex');
    if (value.type === 'hash' && value.fields.length === 0) return; // Redis drops an empty key when loading
    if ((value.type === 'list' || value.type === 'set') && value.items.length === 0) return;
    if (value.type === 'zset' && value.pairs.length === 0) return;
    if (expiry !== undefined && expiry - this.now < DAY) return keys.add(hexKey, '-');
    const line = (digest: string) => `${digest} ${expiry === undefined ? '-1' : integer(expiry)}`;
    switch (value.type) {
      case 'string':
        return keys.add(hexKey, line(sha1Hex([STRING_ITEM, ...encodedItem(value.value)])));
      case 'list':
        return keys.add(hexKey, line(orderedDigest('list', value.items.length, pieceDigests(value.items, encodedItem))));
      case 'set': {
        const lanes = new ItemLanes();
        for (const member of value.items) lanes.add(itemDigest(member));
        return keys.add(hexKey, line(unorderedDigest('set', lanes)));
      }
      case 'zset': {
        value.pairs.sort((a, b) => a[1] - b[1] || Buffer.compare(a[0], b[0]));
        const pieces = pieceDigests(value.pairs, ([m, s]) => [...encodedItem(m), ...encodedItem(formatScore(s))]);
        return keys.add(hexKey, line(orderedDigest('zset', value.pairs.length, pieces)));
      }
      case 'stream':
        return keys.add(
          hexKey,
          line(
            orderedDigest(
              'stream',
              value.entries.length,
              pieceDigests(value.entries, (e) => e.flatMap(encodedItem)),
              Buffer.concat(value.tail.flatMap(encodedItem)),
            ),
          ),
        );
      case 'hash': {
        const lanes = new ItemLanes();
        const fieldItems: Array<[string, string]> = [];
        let expiring = 0;
        for (const [field, v, at] of value.fields) {
          if (at === undefined) {
            lanes.add(itemDigest(field, v));
            continue;
          }
          expiring++;
          if (at - this.now >= DAY) fieldItems.push([`${hexKey}:${field.toString('hex')}`, `${itemDigest(field, v)} ${integer(at)}`]);
        }
        keys.add(hexKey, lanes.count === 0 && expiring > 0 ? '-' : line(unorderedDigest('hash', lanes)));
        for (const [item, itemLine] of fieldItems) keys.add(item, itemLine);
        return;
      }
    }
  }

  private value(type: number): Value {
    switch (type) {
      case T.string:
        return { type: 'string', value: this.string() };
      case T.list:
      case T.set: {
        const n = this.count();
        const items: Buffer[] = [];
        for (let i = 0; i < n; i++) items.push(this.string());
        return { type: type === T.list ? 'list' : 'set', items };
      }
      case T.zset:
      case T.zset2: {
        const n = this.count();
        const pairs: Array<[Buffer, number]> = [];
        for (let i = 0; i < n; i++) pairs.push([this.string(), type === T.zset2 ? this.take(8).readDoubleLE(0) : this.textScore()]);
        return { type: 'zset', pairs };
      }
      case T.hash:
      case T.hashMetadata:
      case T.hashMetadataPreGa: {
        const minExpire = type === T.hashMetadata ? this.millis() : 0;
        const n = this.count();
        const fields: Array<[Buffer, Buffer, number | undefined]> = [];
        for (let i = 0; i < n; i++) {
          const ttl = type === T.hash ? 0 : this.length();
          const at = ttl === 0 ? undefined : type === T.hashMetadata ? ttl + minExpire - 1 : ttl;
          fields.push([this.string(), this.string(), at]);
        }
        return { type: 'hash', fields };
      }
      case T.listZiplist:
        return { type: 'list', items: ziplist(this.string()) };
      case T.listQuicklist: {
        const n = this.count();
        const items: Buffer[] = [];
        for (let i = 0; i < n; i++) {
          for (const item of ziplist(this.string())) items.push(item);
          if (items.length > MAX_KEY_ITEMS) throw tooBig(`${items.length} items`);
        }
        return { type: 'list', items };
      }
      case T.listQuicklist2: {
        const n = this.count();
        const items: Buffer[] = [];
        for (let i = 0; i < n; i++) {
          const container = this.length();
          const node = this.string();
          if (container === 1) items.push(node);
          else if (container === 2) for (const item of listpack(node)) items.push(item);
          else throw corrupt(`a list node of kind ${container}`);
          if (items.length > MAX_KEY_ITEMS) throw tooBig(`${items.length} items`);
        }
        return { type: 'list', items };
      }
      case T.setIntset:
        return { type: 'set', items: intset(this.string()) };
      case T.setListpack:
        return { type: 'set', items: listpack(this.string()) };
      case T.zsetZiplist:
      case T.zsetListpack: {
        const flat = type === T.zsetZiplist ? ziplist(this.string()) : listpack(this.string());
        return { type: 'zset', pairs: pairsOf(flat, 2).map(([m, s]) => [m!, parseScore(s!)]) };
      }
      case T.hashZiplist:
      case T.hashListpack:
        return { type: 'hash', fields: pairsOf(type === T.hashZiplist ? ziplist(this.string()) : listpack(this.string()), 2).map(([f, v]) => [f!, v!, undefined]) };
      case T.hashListpackEx:
      case T.hashListpackExPreGa: {
        if (type === T.hashListpackEx) this.millis();
        const triples = pairsOf(listpack(this.string()), 3);
        return {
          type: 'hash',
          fields: triples.map(([f, v, ttl]) => {
            const at = Number(ttl!.toString('latin1'));
            if (!Number.isSafeInteger(at) || at < 0) throw corrupt('a hash field has no valid expiry');
            return [f!, v!, at === 0 ? undefined : at];
          }),
        };
      }
      case T.stream:
      case T.stream2:
      case T.stream3:
        return this.stream(type);
      default:
        throw new RdbNotReadHere(`the RDB holds a value of type ${type} (a module's type, or one this reader does not know)`);
    }
  }

  /**
   * A stream (types 15, 19 from Redis 7.0, 21 from 7.2), as the Lua reads it: XRANGE's entries
   * (id, then fields and values), XINFO STREAM's last-generated-id, and per consumer group in
   * name order XINFO GROUPS's name, pending (its PEL's size) and last-delivered-id. Entries sit
   * in listpacks, each after a master entry whose fields an entry may share (t_stream.c).
   */
  private stream(type: number): Value {
    const entries: Array<{ ms: bigint; seq: bigint; fields: Buffer[] }> = [];
    const nodes = this.count();
    for (let n = 0; n < nodes; n++) {
      const master = this.string();
      if (master.length !== 16) throw corrupt('a stream node whose key is not an id');
      const [masterMs, masterSeq] = [master.readBigUInt64BE(0), master.readBigUInt64BE(8)];
      const lp = listpack(this.string());
      let i = 0;
      const next = () => {
        const e = lp[i++];
        if (e === undefined) throw corrupt('a stream node ends inside an entry');
        return e;
      };
      const int = () => {
        const t = next().toString('latin1');
        if (!/^-?\d{1,20}$/.test(t)) throw corrupt(`a stream node's integer ${JSON.stringify(t.slice(0, 40))}`);
        return BigInt(t);
      };
      const live = int();
      const deleted = int();
      const masterFields = Array.from({ length: Number(int()) }, next);
      if (int() !== 0n) throw corrupt("a stream node's master entry does not end");
      for (let k = 0n; k < live + deleted; k++) {
        const flags = Number(int());
        const ms = BigInt.asUintN(64, masterMs + int());
        const seq = BigInt.asUintN(64, masterSeq + int());
        const same = (flags & 2) !== 0;
        const fieldCount = same ? masterFields.length : Number(int());
        const fields: Buffer[] = [];
        for (let f = 0; f < fieldCount; f++) {
          const field = same ? masterFields[f]! : next();
          fields.push(field, next());
        }
        int(); // lp-count, for reading backwards
        if ((flags & 1) === 0) {
          entries.push({ ms, seq, fields });
          this.hold(fields.length);
        }
        if (entries.length > MAX_KEY_ITEMS) throw tooBig(`${entries.length} entries`);
      }
      if (i !== lp.length) throw corrupt('a stream node holds more than its entries');
    }
    this.length(); // the number of entries, which they give
    const lastId = this.streamId();
    if (type !== T.stream) {
      this.streamId(); // the first id
      this.streamId(); // the greatest deleted id
      this.bigLength(); // entries added
    }
    const groups: Array<{ name: Buffer; lastId: string; pending: number }> = [];
    const groupCount = this.count();
    for (let g = 0; g < groupCount; g++) {
      const name = this.string();
      const groupLastId = this.streamId();
      if (type !== T.stream) this.bigLength(); // entries read
      const pending = this.count();
      for (let p = 0; p < pending; p++) {
        this.take(16 + 8); // the entry's id, when it was delivered
        this.length(); // how often
      }
      const consumers = this.count();
      for (let c = 0; c < consumers; c++) {
        this.string(); // name
        this.take(type === T.stream3 ? 16 : 8); // seen (and active) time
        this.take(16 * this.count()); // its pending ids
      }
      groups.push({ name, lastId: groupLastId, pending });
    }
    entries.sort((a, b) => (a.ms === b.ms ? (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0) : a.ms < b.ms ? -1 : 1));
    groups.sort((a, b) => Buffer.compare(a.name, b.name));
    const text = (t: string | number) => Buffer.from(String(t));
    // As the Lua: each entry's id, how many fields and values, and those; the last id; the groups.
    return {
      type: 'stream',
      entries: entries.map((e) => [text(`${e.ms}-${e.seq}`), text(e.fields.length), ...e.fields]),
      tail: [text(lastId), ...groups.flatMap((g) => [text('name'), g.name, text('pending'), text(g.pending), text('last-delivered-id'), text(g.lastId)])],
    };
  }

  /** A stream id written as two lengths (ms, seq), as XINFO writes it. */
  private streamId(): string {
    return `${this.bigLength()}-${this.bigLength()}`;
  }

  /** A length of up to 64 bits, whole. */
  private bigLength(): bigint {
    const first = this.buf[this.pos];
    if (first === 0x81) {
      this.pos++;
      return this.take(8).readBigUInt64BE(0);
    }
    return BigInt(this.length());
  }

  /** Counts Buffers the key being read holds, refused past MAX_KEY_HELD. */
  private hold(items: number): void {
    this.heldItems += items;
    if (this.heldItems > MAX_KEY_HELD) throw tooBig(`over ${MAX_KEY_HELD} items`);
  }

  /** Counts bytes the key being read holds as decoded, refused past MAX_KEY_BYTES (checked before they are made). */
  private holdBytes(n: number): void {
    this.heldBytes += n;
    if (this.heldBytes > MAX_KEY_BYTES) throw tooBig(`over ${MAX_KEY_BYTES / 1024 / 1024} MiB decoded`);
  }

  /** A count of items in one key, refused past MAX_KEY_ITEMS (each is an object while the key is read). */
  private count(): number {
    const n = this.length();
    if (n > MAX_KEY_ITEMS) throw tooBig(`${n} items`);
    return n;
  }

  private take(n: number): Buffer {
    if (this.pos + n > this.buf.length) throw new NeedMore(this.pos + n);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  private byte(): number {
    return this.take(1)[0]!;
  }

  private millis(): number {
    return Number(this.take(8).readBigUInt64LE(0));
  }

  /** A length, or (encoded) the kind of special string that follows: { special }. */
  private lengthOrSpecial(): { length: number } | { special: number } {
    const first = this.byte();
    switch (first >> 6) {
      case 0:
        return { length: first & 0x3f };
      case 1:
        return { length: ((first & 0x3f) << 8) | this.byte() };
      case 2:
        if (first === 0x80) return { length: this.take(4).readUInt32BE(0) };
        if (first === 0x81) {
          const n = this.take(8).readBigUInt64BE(0);
          if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(`a length of ${n}`);
          return { length: Number(n) };
        }
        throw corrupt(`a length starting with byte ${first}`);
      default:
        return { special: first & 0x3f };
    }
  }

  private length(): number {
    const l = this.lengthOrSpecial();
    if ('special' in l) throw corrupt('an encoded string where a length belongs');
    return l.length;
  }

  /** A string: plain, an integer written small (as its decimal text), or LZF-compressed. */
  private string(): Buffer {
    const l = this.lengthOrSpecial();
    if ('length' in l) return this.take(l.length);
    switch (l.special) {
      case 0:
        return Buffer.from(String(this.take(1).readInt8(0)));
      case 1:
        return Buffer.from(String(this.take(2).readInt16LE(0)));
      case 2:
        return Buffer.from(String(this.take(4).readInt32LE(0)));
      case 3: {
        const compressed = this.length();
        const length = this.length();
        this.holdBytes(length);
        return lzfDecompress(this.take(compressed), length);
      }
      default:
        throw corrupt(`a string of encoding ${l.special}`);
    }
  }

  /** A score written as text (RDB type 3): a length byte, or 253-255 for nan, inf, -inf. */
  private textScore(): number {
    const n = this.byte();
    if (n === 253) return Number.NaN;
    if (n === 254) return Number.POSITIVE_INFINITY;
    if (n === 255) return Number.NEGATIVE_INFINITY;
    return parseScore(this.take(n));
  }
}

/** encodedItem('string'), made once: the commonest key's first item. */
const STRING_ITEM = Buffer.concat(encodedItem('string'));

/** The Lua's canonical form of a list, set, sorted set or hash: `#type:type` then `#v:v` per item. */
/** The digest of each PIECE_ITEMS items in order (the Lua's pieces), each item given as its encoded parts. */
function pieceDigests<T>(all: T[], encode: (item: T) => Buffer[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < all.length; i += PIECE_ITEMS) out.push(sha1Hex(all.slice(i, i + PIECE_ITEMS).flatMap(encode)));
  return out;
}

/** An integer as Lua's %d writes the double it has (exact below 2^53, as Lua itself is). */
const integer = (n: number) => BigInt(Math.trunc(n)).toString();

function pairsOf(flat: Buffer[], size: number): Buffer[][] {
  if (flat.length % size !== 0) throw corrupt(`an encoded hash or sorted set of ${flat.length} entries`);
  const out: Buffer[][] = [];
  for (let i = 0; i < flat.length; i += size) out.push(flat.slice(i, i + size));
  return out;
}

/** A score as Redis writes it in text: decimal, or inf/-inf/nan in any case (strtod's words). */
function parseScore(text: Buffer): number {
  // Redis reads at most 127 characters of a score (zzlStrtod) and writes at most 24.
  if (text.length > 127) throw new RdbNotReadHere(`a score written in ${text.length} characters`);
  const s = text.toString('latin1');
  const word = s.trim().toLowerCase();
  if (/^[+]?inf(inity)?$/.test(word)) return Number.POSITIVE_INFINITY;
  if (/^-inf(inity)?$/.test(word)) return Number.NEGATIVE_INFINITY;
  // Decimal only: Number() would also take 0x10 or 0b11, which Redis reads otherwise.
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(s)) throw corrupt(`a score ${JSON.stringify(s.slice(0, 40))}`);
  return Number(s);
}

/** Redis's ziplist (lists, hashes, sorted sets before 7.0): its entries as decimal text or bytes. */
export function ziplist(zl: Buffer): Buffer[] {
  if (zl.length < 11) throw corrupt('a ziplist shorter than its header');
  const out: Buffer[] = [];
  let p = 10;
  const need = (n: number) => {
    if (p + n > zl.length) throw corrupt('a ziplist entry runs past its end');
  };
  for (;;) {
    need(1);
    if (zl[p] === 0xff) break;
    p += zl[p] === 0xfe ? 5 : 1; // the previous entry's length
    need(1);
    const enc = zl[p]!;
    const kind = enc >> 6;
    if (kind === 0) p += stringEntry(zl, p, 1, enc & 0x3f, out, 'ziplist');
    else if (kind === 1) {
      need(2);
      p += stringEntry(zl, p, 2, ((enc & 0x3f) << 8) | zl[p + 1]!, out, 'ziplist');
    } else if (kind === 2) {
      if (enc !== 0x80) throw corrupt(`a ziplist entry of encoding ${enc}`);
      need(5);
      p += stringEntry(zl, p, 5, zl.readUInt32BE(p + 1), out, 'ziplist');
    } else {
      const [value, size] = ziplistInt(zl, p, enc, need);
      out.push(Buffer.from(value));
      p += size;
    }
    if (out.length > MAX_KEY_ITEMS) throw tooBig(`${out.length} items`);
  }
  if (p !== zl.length - 1) throw corrupt('a ziplist ends before its last byte');
  return out;
}

function ziplistInt(zl: Buffer, p: number, enc: number, need: (n: number) => void): [string, number] {
  if (enc >= 0xf1 && enc <= 0xfd) return [String((enc & 0x0f) - 1), 1];
  const size = { 192: 2, 208: 4, 224: 8, 240: 3, 254: 1 }[enc];
  if (size === undefined) throw corrupt(`a ziplist entry of encoding ${enc}`);
  need(1 + size);
  return [readIntLE(zl, p + 1, size), 1 + size];
}

/** A string entry of `n` bytes after its `header` at `p` (ziplist, listpack): pushed onto `out`; its size returned. */
function stringEntry(buf: Buffer, p: number, header: number, n: number, out: Buffer[], what: string): number {
  if (p + header + n > buf.length) throw corrupt(`a ${what} entry runs past its end`);
  out.push(buf.subarray(p + header, p + header + n));
  return header + n;
}

/** A little-endian two's complement integer of 1-8 bytes, as decimal text. */
function readIntLE(b: Buffer, at: number, size: number): string {
  if (size === 8) return b.readBigInt64LE(at).toString();
  return String(b.readIntLE(at, size));
}

/** Redis's listpack (7.0+ small lists, sets, hashes, sorted sets; stream nodes): entries as decimal text or bytes. */
export function listpack(lp: Buffer): Buffer[] {
  if (lp.length < 7 || lp.readUInt32LE(0) !== lp.length) throw corrupt('a listpack whose length is not its size');
  const out: Buffer[] = [];
  let p = 6;
  const need = (n: number) => {
    if (p + n > lp.length) throw corrupt('a listpack entry runs past its end');
  };
  for (;;) {
    need(1);
    const enc = lp[p]!;
    if (enc === 0xff) break;
    let size: number; // the entry without its back-length
    if (enc < 0x80) {
      out.push(Buffer.from(String(enc)));
      size = 1;
    } else if (enc < 0xc0) size = stringEntry(lp, p, 1, enc & 0x3f, out, 'listpack');
    else if (enc < 0xe0) {
      need(2);
      const v = ((enc & 0x1f) << 8) | lp[p + 1]!;
      out.push(Buffer.from(String(v >= 4096 ? v - 8192 : v)));
      size = 2;
    } else if (enc < 0xf0) {
      need(2);
      size = stringEntry(lp, p, 2, ((enc & 0x0f) << 8) | lp[p + 1]!, out, 'listpack');
    } else if (enc === 0xf0) {
      need(5);
      size = stringEntry(lp, p, 5, lp.readUInt32LE(p + 1), out, 'listpack');
    } else {
      const bytes = { 241: 2, 242: 3, 243: 4, 244: 8 }[enc];
      if (bytes === undefined) throw corrupt(`a listpack entry of encoding ${enc}`);
      need(1 + bytes);
      out.push(Buffer.from(readIntLE(lp, p + 1, bytes)));
      size = 1 + bytes;
    }
    p += size + backLengthSize(size);
    if (out.length > MAX_KEY_ITEMS) throw tooBig(`${out.length} items`);
  }
  if (p !== lp.length - 1) throw corrupt('a listpack ends before its last byte');
  const count = lp.readUInt16LE(4);
  if (count !== 65535 && count !== out.length) throw corrupt(`a listpack of ${out.length} entries says ${count}`);
  return out;
}

/** The bytes of an entry's back-length (Redis's lpEncodeBacklen: its limits, one short of the powers of 128). */
const backLengthSize = (n: number) => (n <= 127 ? 1 : n < 16383 ? 2 : n < 2097151 ? 3 : n < 268435455 ? 4 : 5);

/** Redis's intset (small sets of integers): its members as decimal text. */
function intset(is: Buffer): Buffer[] {
  if (is.length < 8) throw corrupt('an intset shorter than its header');
  const width = is.readUInt32LE(0);
  const n = is.readUInt32LE(4);
  if (![2, 4, 8].includes(width) || is.length !== 8 + width * n) throw corrupt('an intset whose size does not match its count');
  if (n > MAX_KEY_ITEMS) throw tooBig(`${n} items`);
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) out.push(Buffer.from(readIntLE(is, 8 + i * width, width)));
  return out;
}

/** LZF (Redis compresses strings over 20 bytes with it when rdbcompression is on). */
export function lzfDecompress(input: Buffer, length: number): Buffer {
  // A back reference of 3 bytes gives at most 264: a crafted length is refused, not allocated.
  if (length > input.length * 88 + 32) throw corrupt(`an LZF string of ${input.length} bytes said to give ${length}`);
  if (length > MAX_KEY_BYTES) throw tooBig(`a string of ${length} bytes`);
  const out = Buffer.allocUnsafe(length);
  let i = 0;
  let o = 0;
  while (i < input.length) {
    const ctrl = input[i++]!;
    if (ctrl < 32) {
      const n = ctrl + 1;
      if (i + n > input.length || o + n > length) throw corrupt('an LZF literal runs past its end');
      input.copy(out, o, i, i + n);
      i += n;
      o += n;
    } else {
      let n = ctrl >> 5;
      if (n === 7) {
        if (i >= input.length) throw corrupt('an LZF reference is cut');
        n += input[i++]!;
      }
      if (i >= input.length) throw corrupt('an LZF reference is cut');
      let ref = o - ((ctrl & 0x1f) << 8) - input[i++]! - 1;
      n += 2;
      if (ref < 0 || o + n > length) throw corrupt('an LZF reference points outside its output');
      for (let k = 0; k < n; k++) out[o++] = out[ref++]!;
    }
  }
  if (o !== length) throw corrupt(`an LZF string of ${o} bytes where ${length} were recorded`);
  return out;
}
