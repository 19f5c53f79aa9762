/**
 * One page of Chroma's `get` answer, read as its bytes arrive: a JSON object whose values are
 * mostly parallel arrays (ids, embeddings, documents, metadatas, uris). Parsed whole, a page of
 * 500 records of 384-d embeddings is about 4 MB of text and a tree of 500 arrays, garbage that
 * V8 frees only at a full collection: reading one collection took a process to 170 MB. Here
 * each array item is parsed on its own (by JSON.parse, so numbers and strings read exactly as
 * before), and an embedding is kept as float32, which is what Chroma stores and the fingerprint
 * hashes.
 *
 * The scanner tracks only strings (and their escapes) and nesting: JSON's structural bytes are
 * ASCII and never occur inside a UTF-8 sequence, so items are cut at the right bytes whatever
 * the text holds, and each item is decoded whole.
 */
export interface ChromaPage {
  /** Top-level arrays, item by item; an embedding of numbers is a Float32Array. */
  arrays: Map<string, unknown[]>;
  /** Top-level values that are not arrays (null, a string, an object). */
  values: Map<string, unknown>;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const isSpace = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

/** Where the scanner is in the top-level object. */
type Phase = 'start' | 'key' | 'colon' | 'value' | 'items' | 'after' | 'done';

/**
 * One key, item or value, at most: a hostile server could otherwise fill memory until the
 * request's timeout (V8 cannot make a string of 2^29 characters anyway).
 */
const MAX_TOKEN_BYTES = 256 * 2 ** 20;

const malformed = (what: string) => new Error(`Chroma's answer is not well-formed JSON: ${what}`);
/** A key as error messages quote it: a hostile one may be huge. */
const quoted = (key: string) => JSON.stringify(key.length > 100 ? `${key.slice(0, 100)}…` : key);

export class ChromaPageReader {
  private phase: Phase = 'start';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private key = '';
  /** The bytes of the token being collected (a key, an item, a value), from earlier chunks. */
  private parts: Buffer[] = [];
  private partBytes = 0;
  private collecting = false;
  private items: unknown[] = [];
  private readonly page: ChromaPage = { arrays: new Map(), values: new Map() };

  /** `maxItems`: more items in one array is refused (a page asked with a limit never has more). */
  constructor(private readonly maxItems = Number.POSITIVE_INFINITY) {}

  push(chunk: Buffer): void {
    let from = this.collecting ? 0 : -1;
    const begin = (i: number) => {
      this.collecting = true;
      from = i;
    };
    const take = (end: number): string => {
      const bytes = this.parts.length ? Buffer.concat([...this.parts, chunk.subarray(from, end)]) : chunk.subarray(from, end);
      this.parts = [];
      this.partBytes = 0;
      this.collecting = false;
      from = -1;
      return bytes.toString('utf8');
    };
    for (let i = 0; i < chunk.length; i++) {
      let b = chunk[i]!;
      // Inside an item's own array or object (an embedding's numbers): only strings and
      // brackets matter, so skip to the next of them in a tight loop.
      if (this.depth > 2 && !this.inString) {
        while (b !== QUOTE && b !== OPEN_ARRAY && b !== CLOSE_ARRAY && b !== OPEN_OBJECT && b !== CLOSE_OBJECT && ++i < chunk.length) b = chunk[i]!;
        if (i === chunk.length) break;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (b === BACKSLASH) this.escaped = true;
        else if (b === QUOTE) {
          this.inString = false;
          if (this.phase === 'key') {
            this.key = JSON.parse(take(i + 1)) as string;
            if (this.page.arrays.has(this.key) || this.page.values.has(this.key)) throw malformed(`the key ${quoted(this.key)} twice`); // JSON.parse would keep the last; a server never repeats one
            this.phase = 'colon';
          }
        }
        continue;
      }
      if (isSpace(b)) continue;
      switch (this.phase) {
        case 'start':
          if (b !== OPEN_OBJECT) throw malformed('it is not an object');
          this.depth = 1;
          this.phase = 'key';
          continue;
        case 'key':
          if (b === CLOSE_OBJECT && !this.page.arrays.size && !this.page.values.size) {
            this.depth = 0;
            this.phase = 'done';
            continue;
          }
          if (b !== QUOTE) throw malformed('a key was expected');
          begin(i);
          this.inString = true;
          continue;
        case 'colon':
          if (b !== COLON) throw malformed(`no ':' after the key ${quoted(this.key)}`);
          this.phase = 'value';
          continue;
        case 'value':
          if (this.depth === 1 && !this.collecting) {
            if (b === OPEN_ARRAY) {
              this.depth = 2;
              this.items = [];
              this.phase = 'items';
              continue;
            }
            begin(i);
          }
          if (this.depth === 1 && (b === COMMA || b === CLOSE_OBJECT)) {
            this.page.values.set(this.key, JSON.parse(take(i)));
            this.afterValue(b);
            continue;
          }
          this.nest(b);
          continue;
        case 'items':
          if (this.depth === 2 && (b === COMMA || b === CLOSE_ARRAY)) {
            if (this.collecting) {
              this.items.push(item(this.key, take(i)));
              if (this.items.length > this.maxItems) throw malformed(`more than ${this.maxItems} items in ${quoted(this.key)}`);
            } else if (b === COMMA || this.items.length) throw malformed(`an empty item in ${quoted(this.key)}`);
            if (b === CLOSE_ARRAY) {
              this.depth = 1;
              this.page.arrays.set(this.key, this.items);
              this.phase = 'after';
            }
            continue;
          }
          if (this.depth === 2 && !this.collecting) begin(i);
          this.nest(b);
          continue;
        case 'after':
          if (b !== COMMA && b !== CLOSE_OBJECT) throw malformed(`',' or '}' expected after ${quoted(this.key)}`);
          this.afterValue(b);
          continue;
        case 'done':
          throw malformed('bytes after its end');
      }
    }
    if (this.collecting) {
      this.parts.push(chunk.subarray(from));
      this.partBytes += chunk.length - from;
      if (this.partBytes > MAX_TOKEN_BYTES) throw malformed(`one key, item or value of more than ${MAX_TOKEN_BYTES / 2 ** 20} MiB`);
    }
  }

  /** The page, once every byte was pushed. */
  end(): ChromaPage {
    if (this.phase !== 'done') throw malformed('it ended early');
    return this.page;
  }

  /** Inside a value or an item: strings and nesting. */
  private nest(b: number): void {
    if (b === QUOTE) this.inString = true;
    else if (b === OPEN_ARRAY || b === OPEN_OBJECT) this.depth++;
    else if (b === CLOSE_ARRAY || b === CLOSE_OBJECT) {
      if (--this.depth < 2 && this.phase === 'items') throw malformed('unbalanced brackets');
      if (this.depth < 1) throw malformed('unbalanced brackets');
    }
  }

  private afterValue(b: number): void {
    if (b === CLOSE_OBJECT) {
      this.depth = 0;
      this.phase = 'done';
    } else this.phase = 'key';
  }
}

/** One item of a top-level array; an embedding of numbers becomes float32 (exact: the same rounding as DataView.setFloat32). */
function item(key: string, text: string): unknown {
  const value: unknown = JSON.parse(text);
  if (key === 'embeddings' && Array.isArray(value) && value.every((x) => typeof x === 'number')) return Float32Array.from(value as number[]);
  return value;
}

/** The page's bytes (a fetch body) read through ChromaPageReader. */
export async function readChromaPage(body: AsyncIterable<Uint8Array>, maxItems?: number): Promise<ChromaPage> {
  const reader = new ChromaPageReader(maxItems);
  for await (const chunk of body) reader.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  return reader.end();
}
