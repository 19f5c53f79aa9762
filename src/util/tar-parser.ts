import { Parser, Pax, ReadEntry } from 'tar';

/**
 * node-tar's Parser, with two of its readings of long names made exact. Every tar stackvault
 * reads (an artifact being checked, fingerprinted, filtered for Docker or restored) goes
 * through this one class.
 *
 * 1. node-tar gathers a meta entry's text (PAX header, GNU long name or link) as strings, piece
 *    by piece (`meta += chunk`): a UTF-8 character cut between two pieces became two U+FFFD,
 *    the record's length no longer matched, and the name fell back to the header's first 100
 *    bytes. Names of over about 500 bytes in Cyrillic, Greek or CJK broke that way, or not,
 *    depending on how the engine's stream happened to be cut. Each meta entry now hands its
 *    text on in one piece (see `wholeMetaWrite`).
 * 2. node-tar splits PAX records at every newline (its own comment says values with '\n'
 *    fail): a name of over 100 bytes holding a newline lost its record the same way. Records
 *    are now read by their lengths (see `exactPaxParse`).
 *
 * Both are made to node-tar itself when this module loads (ReadEntry.write and Pax.parse), so
 * they hold for any node-tar parser in the process; this class is the one stackvault uses.
 */
export class TarParser extends Parser {
  constructor() {
    super({ strict: true });
  }
}

/** A meta entry's text node-tar has written so far, and the counts it had before the first piece. */
interface HeldMeta {
  pieces: Buffer[];
  remain: number;
  blockRemain: number;
}
const heldMeta = new WeakMap<ReadEntry, HeldMeta>();
const entryWrite = ReadEntry.prototype.write;

/**
 * ReadEntry.write, holding a meta entry's text until its last piece and then writing it whole.
 * It is done inside node-tar's own entry (not by re-cutting the stream before node-tar) so that
 * what counts as meta text is exactly what node-tar reads as such, whatever sizes, PAX size
 * records or entry types the archive holds. The counts node-tar steers by advance with each
 * piece as its own write advances them; at the last piece they are set back and node-tar's
 * write runs once on the whole text. A stream cut off inside the text never hands it on:
 * node-tar never reads the text of such an entry either (it reports the archive truncated).
 * Content of files and meta entries node-tar ignores (over 1 MiB) pass as before.
 */
function wholeMetaWrite(this: ReadEntry, data: Buffer): boolean {
  if (!this.meta || this.ignore || data.length > this.blockRemain) return entryWrite.call(this, data);
  const held = heldMeta.get(this);
  if (!held && data.length === this.blockRemain) return entryWrite.call(this, data);
  const state = held ?? { pieces: [], remain: this.remain, blockRemain: this.blockRemain };
  state.pieces.push(Buffer.from(data));
  if (data.length < this.blockRemain) {
    heldMeta.set(this, state);
    this.remain = Math.max(0, this.remain - data.length);
    this.blockRemain -= data.length;
    return true;
  }
  heldMeta.delete(this);
  this.remain = state.remain;
  this.blockRemain = state.blockRemain;
  return entryWrite.call(this, Buffer.concat(state.pieces));
}

// node-tar's Parser writes every entry's blocks through ReadEntry.write.
ReadEntry.prototype.write = wholeMetaWrite;

/**
 * PAX keys whose values are text, that node-tar keeps: the ones that may hold a newline (others
 * are numbers). Not 'type': node-tar reads it but never keeps it (set, a newline in it made the
 * entry invalid).
 */
const TEXT_KEYS = new Set(['path', 'linkpath', 'charset', 'comment', 'gname', 'uname']);

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
