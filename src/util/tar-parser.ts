import { Parser, Pax } from 'tar';

/**
 * node-tar's Parser, with two of its readings of long names made exact. Every tar stackvault
 * reads (an artifact being checked, fingerprinted, filtered for Docker or restored) goes
 * through this one class.
 *
 * 1. node-tar gathers a PAX or GNU long-name entry's text as strings, chunk by chunk
 *    (`meta += chunk`): a UTF-8 character cut by a chunk boundary became two U+FFFD, the
 *    record's length no longer matched, and the name fell back to the header's first 100
 *    bytes. Names of over about 500 bytes in Cyrillic, Greek or CJK broke that way, or not,
 *    depending on how the engine's stream happened to be cut. Each such entry is now handed to
 *    node-tar in one piece.
 * 2. node-tar splits PAX records at every newline (its own comment says values with '\n'
 *    fail): a name of over 100 bytes holding a newline lost its record the same way. Records
 *    are now read by their lengths (see `exactPaxParse`).
 *
 * Nothing else changes: the same bytes reach node-tar in the same order, only cut elsewhere.
 */
export class TarParser extends Parser {
  private readonly gatherer = new MetaGatherer();

  constructor() {
    super({ strict: true });
  }

  override write(buffer: Uint8Array | string, cb?: (err?: Error | null) => void): boolean;
  override write(str: string, encoding?: BufferEncoding, cb?: (err?: Error | null) => void): boolean;
  override write(chunk: Uint8Array | string, encoding?: BufferEncoding | ((err?: Error | null) => void), cb?: (err?: Error | null) => void): boolean {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, encoding ?? 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    // node-tar's end() writes an empty chunk to finish judging a stream too short to sniff.
    if (bytes.length === 0) return super.write(bytes, cb);
    let room = true;
    for (const piece of this.gatherer.push(bytes)) room = super.write(piece);
    cb?.();
    return room;
  }

  override end(cb?: () => void): this;
  override end(data: string | Buffer, cb?: () => void): this;
  override end(str: string, encoding?: BufferEncoding, cb?: () => void): this;
  override end(chunk?: string | Buffer | (() => void), encoding?: BufferEncoding | (() => void), cb?: () => void): this {
    if (typeof chunk === 'function') return this.end(undefined as never, undefined, chunk);
    if (typeof encoding === 'function') return this.end(chunk as string, undefined, encoding);
    if (chunk !== undefined) this.write(chunk as string, encoding);
    // An entry cut off inside: node-tar gets what there is and says the archive is truncated, as before.
    for (const piece of this.gatherer.flush()) super.write(piece);
    return super.end(cb);
  }
}

/** PAX extended headers (per file, global) and GNU long names and link names: text node-tar gathers. */
const META_TYPES = new Set(['x', 'g', 'L', 'K'].map((t) => t.charCodeAt(0)));
/** node-tar ignores meta entries over 1 MiB (its maxMetaEntrySize): larger ones are passed on as they come, never held. */
const HELD_META_MAX = 1024 * 1024;
const BLOCK = 512;

/**
 * Follows a tar's blocks and holds the text of each meta entry that a chunk boundary cuts,
 * until it is whole; everything else passes on at once, in as few pieces as it came. A header
 * whose size is unreadable ends the following: the rest passes on as it comes. Checksums are
 * not checked: a stream this follows wrongly (damaged, or not a tar) is only cut elsewhere,
 * and node-tar judges it as before.
 */
export class MetaGatherer {
  /** The held text of a meta entry, once a chunk boundary cut it. */
  private held: Buffer[] = [];
  /** A header cut by a chunk boundary, copied for judging (its bytes have passed on). */
  private headerParts: Buffer[] = [];
  /** Bytes until the header, meta text or other content being read is complete. */
  private need = BLOCK;
  private state: 'header' | 'meta' | 'body' | 'off' = 'header';

  /** The pieces to hand on for `chunk`, in order. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    /** Where the bytes of this chunk not passed on or held yet begin. */
    let passFrom = 0;
    let at = 0;
    while (at < chunk.length && this.state !== 'off') {
      const n = Math.min(this.need, chunk.length - at);
      if (this.state === 'meta' && (this.held.length > 0 || n < this.need)) {
        // Cut by a boundary: what came before it passes on, the text is held until whole.
        if (this.held.length === 0 && at > passFrom) out.push(chunk.subarray(passFrom, at));
        this.held.push(Buffer.from(chunk.subarray(at, at + n)));
        at += n;
        passFrom = at;
        this.need -= n;
        if (this.need === 0) {
          out.push(Buffer.concat(this.held));
          this.held = [];
          this.expectHeader();
        }
        continue;
      }
      at += n;
      this.need -= n;
      if (this.state === 'header') {
        if (this.need > 0) {
          this.headerParts.push(Buffer.from(chunk.subarray(at - n, at)));
          continue;
        }
        const block = this.headerParts.length ? Buffer.concat([...this.headerParts, chunk.subarray(at - n, at)]) : chunk.subarray(at - BLOCK, at);
        this.headerParts = [];
        this.judgeHeader(block);
      } else if (this.need === 0) this.expectHeader(); // a meta text whole in this chunk, or other content, passed on
    }
    if (passFrom < chunk.length) out.push(passFrom === 0 ? chunk : chunk.subarray(passFrom));
    return out;
  }

  /** What is held, at the end of the stream. */
  flush(): Buffer[] {
    const rest = this.held.length ? [Buffer.concat(this.held)] : [];
    this.held = [];
    return rest;
  }

  private judgeHeader(block: Buffer): void {
    const size = entrySize(block);
    if (size === undefined) {
      this.state = 'off';
      return;
    }
    const body = Math.ceil(size / BLOCK) * BLOCK;
    if (body === 0) return this.expectHeader();
    this.state = META_TYPES.has(block[156]!) && body <= HELD_META_MAX ? 'meta' : 'body';
    this.need = body;
  }

  private expectHeader(): void {
    this.state = 'header';
    this.need = BLOCK;
  }
}

/** The size field: octal text, or base-256 when its first byte has the high bit set (as node-tar reads it); undefined when unreadable. */
function entrySize(block: Buffer): number | undefined {
  const field = block.subarray(124, 136);
  if (field[0]! & 0x80) {
    if (field[0] !== 0x80) return undefined; // negative
    let n = 0;
    for (const b of field.subarray(1)) n = n * 256 + b;
    return Number.isSafeInteger(n) ? n : undefined;
  }
  // Octal digits between spaces, ended by NUL or space (read byte by byte: this runs for every entry).
  let i = 0;
  while (i < 12 && field[i] === 0x20) i++;
  let n = 0;
  for (; i < 12 && field[i]! >= 0x30 && field[i]! <= 0x37; i++) n = n * 8 + field[i]! - 0x30;
  for (; i < 12; i++) if (field[i] !== 0 && field[i] !== 0x20) return undefined;
  return n;
}

/** PAX keys whose values are text: the ones that may hold a newline (others are numbers). */
const TEXT_KEYS = new Set(['path', 'linkpath', 'type', 'charset', 'comment', 'gname', 'uname']);

interface PaxRecord {
  key: string;
  value: string;
  /** The whole record, as node-tar's own parser reads one line. */
  line: string;
}

/**
 * The records of a PAX text read by their lengths, as POSIX defines them ("LEN key=value\n",
 * LEN counting its own digits, in bytes); undefined when the text is not exactly such records
 * (a name that was not UTF-8 no longer has its bytes here: node-tar's own reading stands then).
 */
export function paxRecords(text: string): PaxRecord[] | undefined {
  const bytes = Buffer.from(text, 'utf8');
  const records: PaxRecord[] = [];
  let at = 0;
  while (at < bytes.length) {
    const space = bytes.indexOf(0x20, at);
    const digits = space < 0 ? '' : bytes.subarray(at, space).toString('latin1');
    if (!/^[1-9][0-9]{0,8}$/.test(digits)) return undefined;
    const end = at + Number(digits);
    if (end > bytes.length || bytes[end - 1] !== 0x0a || end <= space + 1) return undefined;
    const body = bytes.subarray(space + 1, end - 1);
    const eq = body.indexOf(0x3d);
    if (eq < 1) return undefined;
    records.push({ key: body.subarray(0, eq).toString('utf8'), value: body.subarray(eq + 1).toString('utf8'), line: bytes.subarray(at, end).toString('utf8') });
    at = end;
  }
  return records;
}

const nodeTarPaxParse = Pax.parse.bind(Pax);

/**
 * Pax.parse, exact for values holding a newline: node-tar reads every record it can (with its
 * own typing of dates and numbers), and a text value with a newline that is the last record
 * of its key is then set as it is, NUL and after dropped as node-tar does.
 */
export function exactPaxParse(text: string, ex?: Record<string, unknown>, global = false): Pax {
  const records = paxRecords(text);
  if (!records?.some((r) => r.value.includes('\n'))) return nodeTarPaxParse(text, ex as never, global);
  const pax = nodeTarPaxParse(
    records
      .filter((r) => !r.value.includes('\n'))
      .map((r) => r.line)
      .join(''),
    ex as never,
    global,
  );
  const last = new Map(records.map((r) => [r.key, r]));
  for (const [key, r] of last) if (TEXT_KEYS.has(key) && r.value.includes('\n')) (pax as unknown as Record<string, string>)[key] = r.value.replace(/\0.*/s, '');
  return pax;
}

// node-tar's Parser calls Pax.parse for every PAX entry it meets.
Pax.parse = exactPaxParse;
