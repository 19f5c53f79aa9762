import { Transform, type TransformCallback } from 'node:stream';
import { type LineFacts, PsqlLexer } from './psql-lexer.js';

const NEWLINE = 0x0a;
const COPY_END = Buffer.from('\\.');
const COPY_END_CR = Buffer.from('\\.\r');

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;
const unquote = (s: string) => (s.startsWith('"') ? s.slice(1, -1).replaceAll('""', '"') : s);

/** A role name as psql prints it: UTF-8 when the bytes are UTF-8, else byte for byte. */
function decodeName(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return bytes.toString('latin1');
  }
}

/**
 * Rewrites a `pg_dumpall --clean --if-exists` script on its way into `psql -v ON_ERROR_STOP=1`
 * so that it replays onto a running server:
 *  - in the roles section (before the first \connect) the DROP and CREATE of the superuser we
 *    are connected as are dropped: that role cannot drop itself and already exists;
 *  - DROP DATABASE gets WITH (FORCE) (PostgreSQL >= 13), so an app's open connections do not
 *    stop the restore.
 * It works on bytes, never on decoded text: a dump is in the encoding of each database
 * (UTF8, LATIN1, SQL_ASCII, EUC_*), and a multibyte character may be split across chunks.
 * Lines are cut at the newline byte; a line is looked at (as latin1, which maps bytes 1:1) only
 * outside COPY data, and every byte it does not rewrite goes out exactly as it came in. COPY
 * data is passed through without being held, whatever the length of its lines.
 * It also records the roles the dump creates, so roles made since the backup can be removed.
 */
export class PgRestoreFilter extends Transform {
  readonly roles = new Set<string>();
  /** Bytes of the current line not yet decided on (only outside COPY data, or a possible `\.`). */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Inside COPY data, in the middle of a line that cannot be the terminator: pass bytes on. */
  private copyMidLine = false;
  private inRoles = true;
  private inCopy = false;
  private readonly lexer = new PsqlLexer();

  /**
   * `restrictKey`: psql's own guard (psql 17.6, 16.10, 15.14, 14.19, 13.22 and later). The replay
   * starts with `\restrict KEY`, after which psql refuses every backslash command but
   * `\unrestrict KEY`; the dump's own \restrict and \unrestrict lines are dropped, and each
   * \connect or \encoding it holds is let through between an \unrestrict and a \restrict of
   * ours. The key is random per restore, so no dump can hold it: where this reading and psql's
   * ever disagree about where a line stands (a string, a comment, COPY data), psql still runs
   * no command the dump slipped in.
   */
  constructor(
    private readonly superuser: string,
    private readonly forceDrop: boolean,
    private readonly restrictKey?: string,
  ) {
    super();
    if (restrictKey !== undefined && !/^[A-Za-z0-9]{16,}$/.test(restrictKey)) throw new Error('a restrict key is 16 or more letters and digits');
    if (restrictKey) this.push(Buffer.from(`\\restrict ${restrictKey}\n`)); // before the dump's first byte
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      // pg_dump writes no NUL; psql drops the rest of a line after one and joins the next to it,
      // so a NUL would make psql and this reading see different lines (in COPY data too).
      if (chunk.includes(0)) throw new Error('the dump holds a NUL byte, which pg_dumpall never writes; refusing to run it');
      this.transformChunk(chunk, cb);
    } catch (err) {
      cb(err as Error);
    }
  }

  private transformChunk(chunk: Buffer, cb: TransformCallback): void {
    const out: Buffer[] = [];
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(NEWLINE, start);
      const end = nl < 0 ? chunk.length : nl + 1;
      const piece = chunk.subarray(start, end);
      if (nl < 0) this.partial(piece, out);
      else this.complete(piece, out);
      start = end;
    }
    cb(null, out.length === 1 ? out[0] : out.length ? Buffer.concat(out) : undefined);
  }

  override _flush(cb: TransformCallback): void {
    try {
      const out: Buffer[] = [];
      if (this.heldBytes > 0 || this.held.length > 0) this.complete(Buffer.alloc(0), out);
      cb(null, out.length ? Buffer.concat(out) : undefined);
    } catch (err) {
      cb(err as Error);
    }
  }

  /** Bytes of a line whose end has not arrived yet. */
  private partial(piece: Buffer, out: Buffer[]): void {
    if (this.inCopy && this.copyMidLine) {
      out.push(piece);
      return;
    }
    this.hold(piece);
    // A held `\.` may still be followed by `\r` and the newline: both end COPY data for psql.
    if (this.inCopy && !COPY_END_CR.subarray(0, this.heldBytes).equals(this.takeHeld(false))) {
      // This line is data, not the `\.` terminator: send what we have and stop holding it.
      out.push(this.takeHeld(true));
      this.copyMidLine = true;
    }
  }

  /** The rest of a line, ending with its newline (or the last line of the dump, without one). */
  private complete(piece: Buffer, out: Buffer[]): void {
    if (this.inCopy && this.copyMidLine) {
      out.push(piece);
      this.copyMidLine = false;
      return;
    }
    this.hold(piece);
    const line = this.takeHeld(true);
    const rewritten = this.line(line);
    if (rewritten) out.push(rewritten);
  }

  private hold(piece: Buffer): void {
    if (piece.length === 0) return;
    this.held.push(piece);
    this.heldBytes += piece.length;
  }

  private takeHeld(clear: boolean): Buffer {
    const all = this.held.length === 1 ? this.held[0]! : Buffer.concat(this.held, this.heldBytes);
    if (clear) {
      this.held = [];
      this.heldBytes = 0;
    } else {
      this.held = [all];
    }
    return all;
  }

  /** One whole line (with its newline, if any): the bytes to send, or undefined to drop it. */
  private line(line: Buffer): Buffer | undefined {
    const eol = line.at(-1) === NEWLINE ? 1 : 0;
    const body = line.subarray(0, line.length - eol);
    if (this.inCopy) {
      // psql also ends COPY data at `\.` followed by a carriage return.
      if (body.equals(COPY_END) || body.equals(COPY_END_CR)) this.inCopy = false;
      return line;
    }
    // latin1 maps every byte to one char and back, so a rewritten line keeps its other bytes.
    const text = body.toString('latin1');
    const facts = this.lexer.line(text);
    refuseForeign(text, facts);
    // Only a COPY where psql would see one starts COPY data (not one inside a quoted body).
    if (facts.startsStatement && /^COPY .* FROM stdin;$/.test(text)) {
      this.inCopy = true;
      return line;
    }
    if (facts.backslashAt === 0) return this.command(text, line);
    if (this.inRoles) {
      // Our own name as the dump's bytes spell it (UTF-8 bytes seen through latin1).
      const myName = Buffer.from(this.superuser, 'utf8').toString('latin1');
      if ([ident(myName), myName].some((r) => text === `DROP ROLE IF EXISTS ${r};` || text === `CREATE ROLE ${r};`)) {
        this.roles.add(this.superuser);
        return undefined;
      }
      const created = /^CREATE ROLE ("(?:[^"]|"")+"|\S+);$/.exec(text);
      if (created) this.roles.add(decodeName(Buffer.from(unquote(created[1]!), 'latin1')));
    }
    if (this.forceDrop) {
      const drop = /^DROP DATABASE (IF EXISTS )?("(?:[^"]|"")+"|\S+);$/.exec(text);
      if (drop) return Buffer.from(`DROP DATABASE ${drop[1] ?? ''}${drop[2]} WITH (FORCE);${eol ? '\n' : ''}`, 'latin1');
    }
    return line;
  }

  /**
   * One of pg_dumpall's own commands (refuseForeign let only those through), checked whole:
   * psql ends a command's arguments at an unquoted backslash and runs backquoted text in a
   * shell, so `\connect db \! id` or `\connect `id`` are refused, as is a connection string.
   */
  private command(text: string, line: Buffer): Buffer | undefined {
    const name = /^\\(\S*)/.exec(text)![1];
    if (name === 'restrict' || name === 'unrestrict') {
      if (!/^\\(un)?restrict [A-Za-z0-9]+$/.test(text)) throw foreign(text);
      return this.restrictKey ? undefined : line; // ours stand instead
    }
    if (name === 'connect') {
      if (!CONNECT.test(text)) throw foreign(text);
      this.inRoles = false;
    } else if (text !== '\\encoding SQL_ASCII') throw foreign(text); // the only one pg_dumpall writes (before an odd name)
    if (!this.restrictKey) return line;
    return Buffer.from(`\\unrestrict ${this.restrictKey}\n${text}\n\\restrict ${this.restrictKey}\n`, 'latin1');
  }
}

/**
 * \connect as pg_dumpall writes it (appendPsqlMetaConnect): a name of letters, digits, `_` and
 * `.`, quoted or not, or else a connection string of one dbname in double quotes (where psql
 * expands no variable and runs no backquote). A quoted name with `=` would be a connection string.
 */
const CONNECT = /^\\connect (?:[A-Za-z0-9_.]+|"[A-Za-z0-9_.]+"|-reuse-previous=on "dbname='(?:[^'\\"]|\\['\\]|"")*'")$/;

const foreign = (text: string) => new Error(`the dump holds the psql command ${JSON.stringify(text.slice(0, 80))}, which pg_dumpall never writes in that form; refusing to run it`);

/**
 * pg_dumpall writes no psql command but \connect, \encoding (before connecting to a database
 * with an odd name) and \restrict/\unrestrict, each on a line of its own, and no `COPY … PROGRAM`. psql runs a backslash command wherever one stands outside
 * quotes and comments (`SELECT 1; \! id`), so a dump holding any other one, or the word
 * PROGRAM outside quotes, was not written by it and is refused rather than run as superuser.
 */
function refuseForeign(text: string, facts: LineFacts): void {
  if (facts.backslashAt >= 0) {
    const command = /^\\(\S*)/.exec(text.slice(facts.backslashAt))?.[1] ?? '';
    const own = facts.backslashAt === 0 && facts.startsNormal && ['connect', 'encoding', 'restrict', 'unrestrict'].includes(command);
    if (!own) throw new Error(`the dump holds the psql command \\${command.slice(0, 20)}, which pg_dumpall never writes; refusing to run it`);
  }
  if (facts.words.includes('program')) throw new Error('the dump holds COPY … PROGRAM, which pg_dumpall never writes; refusing to run it');
}

export { ident as quoteIdent };
