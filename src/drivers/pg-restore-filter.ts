import { isUtf8 } from 'node:buffer';
import { Transform, type TransformCallback } from 'node:stream';
import { atLeastPatchInSeries, type FirstFixedPatch, firstFixedReleases } from '../util/version-series.js';
import { type Doubt, HELD_MAX, type LineFacts, PsqlLexer, StatementHolder } from './psql-lexer.js';

const NEWLINE = 0x0a;
const COPY_END = Buffer.from('\\.');
const COPY_END_CR = Buffer.from('\\.\r');

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;
const unquote = (s: string) => (s.startsWith('"') ? s.slice(1, -1).replaceAll('""', '"') : s);

/** The psql that replays the dump, as far as the filter must know it. */
export interface ReplayPsql {
  /** Its major version: from 14, psql reads CREATE FUNCTION ... BEGIN ... END as one statement. */
  major: number;
  /**
   * psql's own guard (a psql from RESTRICT_SINCE on): a key random per restore. Without one,
   * this reading of the dump is the only guard, and it is stricter.
   */
  restrictKey?: string;
}

/**
 * The first minor release of each major whose psql has \restrict (CVE-2025-8714, August 2025);
 * every major after these has it. The one list: messages and comments name it from here.
 */
const RESTRICT_SINCE: FirstFixedPatch = { '13': 22, '14': 19, '15': 14, '16': 10, '17': 6 };

/** The releases psql's \restrict came with, newest major first, for messages. */
export const RESTRICT_RELEASES = firstFixedReleases(RESTRICT_SINCE).join(', ');

/** Whether the psql that printed this `psql --version` line has \restrict. */
export function psqlRestricts(versionLine: string): boolean {
  const m = /\(PostgreSQL\) (\d+)(?:\.(\d+))?/.exec(versionLine);
  return m !== null && atLeastPatchInSeries([Number(m[1]), Number(m[2] ?? 0)], RESTRICT_SINCE);
}

/**
 * Server encodings: psql reads text in them byte for byte. In a client-only encoding (SJIS,
 * BIG5, GBK, UHC, GB18030, JOHAB) psql takes the byte after a lead byte as part of a character,
 * even a quote or a backslash, so it would see other lines than this reading does.
 */
const SERVER_ENCODINGS = new Set(
  (
    'SQL_ASCII UTF8 EUC_JP EUC_CN EUC_KR EUC_TW EUC_JIS_2004 MULE_INTERNAL LATIN1 LATIN2 LATIN3 LATIN4 LATIN5 LATIN6 ' +
    'LATIN7 LATIN8 LATIN9 LATIN10 WIN1256 WIN1258 WIN866 WIN874 KOI8R WIN1251 WIN1252 ISO_8859_5 ISO_8859_6 ISO_8859_7 ' +
    'ISO_8859_8 WIN1250 WIN1253 WIN1254 WIN1255 WIN1257 KOI8U'
  ).split(' '),
);

/**
 * pg_dump's COPY header (dumpTableData_copy: a qualified name, then the column list unless the
 * table has no columns), each name quoted or plain as fmtId writes it. A name holding a line
 * break puts the header over several lines; only this form is read as one statement then.
 */
const NAME = '(?:"(?:[^"]|"")*"|[a-z_][a-z0-9_]*)';
const PG_DUMP_COPY = new RegExp(`^COPY ${NAME}\\.${NAME} (?:\\(${NAME}(?:, ${NAME})*\\))? FROM stdin;$`);

/** Statements that name a database (and its owner) which pg_dump --create runs in another database's session. */
const DATABASE_DDL = /^(?:CREATE|ALTER) DATABASE /;

/**
 * The statements read whole when a quoted name puts them over several lines: COPY headers, the
 * roles the dump creates, and ALTER DATABASE (its owner's name may hold a line break; run as bytes).
 */
const HELD = /^(?:COPY|CREATE ROLE|ALTER DATABASE) /;

const DOUBTS: Record<Doubt, string> = {
  cr: 'a carriage return outside quotes',
  number: 'a number run into a letter',
  variable: 'a psql variable',
  'after-statement': 'a statement after another on one line',
};

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
 * It also records the roles the dump creates (their bytes), so roles made since the backup can be removed.
 *
 * Without psql's guard it also refuses what psql versions or settings could read otherwise
 * (PsqlLexer's doubts), and puts psql back into the dump's client encoding and string syntax
 * after every statement (reassert): any statement can switch to a client-only encoding or turn
 * standard_conforming_strings off, after which psql would read the next line differently from
 * this reading.
 */
export class PgRestoreFilter extends Transform {
  /** The roles the dump creates, as their bytes through latin1 (as the server holds them, whatever they are). */
  readonly roles = new Set<string>();
  /** Bytes of the current line not yet decided on (only outside COPY data, or a possible `\.`). */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Inside COPY data, in the middle of a line that cannot be the terminator: pass bytes on. */
  private copyMidLine = false;
  private inRoles = true;
  private inCopy = false;
  private readonly lexer: PsqlLexer;
  private readonly restrictKey: string | undefined;
  /** The client encoding the dump set last (SQL_ASCII, which converts nothing, until it sets one). */
  private encoding = 'SQL_ASCII';
  /**
   * A statement (HELD) that a line break in a quoted name puts over several lines: nothing of it
   * reaches psql until psql's statement ends. Each line is kept with whether it names STDIN.
   */
  private readonly holder: StatementHolder<{ line: Buffer; stdin: boolean }>;

  constructor(
    private readonly superuser: string,
    private readonly forceDrop: boolean,
    psql: ReplayPsql,
  ) {
    super();
    this.restrictKey = psql.restrictKey;
    this.lexer = new PsqlLexer({ beginBlocks: psql.major >= 14 });
    this.holder = new StatementHolder(this.lexer, {
      starts: HELD,
      within: 'quoted-name',
      tooLong: () => new Error(`the dump holds a statement of more than ${HELD_MAX / (1 << 20)} MiB whose line breaks are inside a quoted name, which pg_dump never writes; refusing to run it`),
    });
    if (this.restrictKey !== undefined && !/^[A-Za-z0-9]{16,}$/.test(this.restrictKey)) throw new Error('a restrict key is 16 or more letters and digits');
    // Before the dump's first byte: psql's guard, or the encoding psql reads the dump in.
    this.push(Buffer.from(this.guarded ? `\\restrict ${this.restrictKey}\n` : this.reassert()));
  }

  private get guarded(): boolean {
    return this.restrictKey !== undefined;
  }

  /**
   * Unguarded: psql put back into the dump's client encoding and string syntax, as SQL (a
   * failing `\encoding` is only a warning to psql; a failing SET stops it, ON_ERROR_STOP) and
   * spelled with TO, so these lines are told from the dump's own (`SET x = ...`).
   */
  private reassert(): string {
    return `SET client_encoding TO '${this.encoding.toLowerCase()}';\nSET standard_conforming_strings TO ${this.lexer.standardStrings ? 'on' : 'off'};\n`;
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
      const rest = this.holder.end();
      if (rest) out.push(this.release(rest.kept, rest.texts, false)); // the dump ended inside a quoted name
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
      if (!body.equals(COPY_END) && !body.equals(COPY_END_CR)) return line;
      this.inCopy = false;
      return this.afterStatement(line); // the COPY's triggers ran SQL too
    }
    // latin1 maps every byte to one char and back, so a rewritten line keeps its other bytes.
    const text = body.toString('latin1');
    const facts = this.lexer.line(text);
    this.refuseForeign(text, facts);
    // In UTF8 the server refuses bytes that are not UTF-8 in what psql sends (a `--` comment
    // between statements it does not send): a replay would stop there, after it dropped the
    // databases, and the restore point's the same way. pg_dump writes such bytes only for a name
    // another encoding put into a shared catalog (a role or database named in a SQL_ASCII or
    // LATIN1 database of the cluster, owning or named in a UTF8 one), which no dump restores.
    if (this.encoding === 'UTF8' && !(facts.startsStatement && text.startsWith('--')) && !isUtf8(body)) {
      throw new Error(
        `the dump holds bytes that are not UTF-8 in a statement it runs as UTF-8 (in the line ${JSON.stringify(text.slice(0, 100))}), which the server would refuse part way through the replay; refusing to run it (a role or database named in another encoding cannot be restored into a UTF-8 database)`,
      );
    }
    const statement = this.holder.line(text, facts, { line, stdin: facts.stdin }, line.length);
    if (!statement) return undefined; // psql's statement goes on: held
    if (statement.held) return this.heldLines(statement.texts, statement.kept, facts);
    if (facts.backslashAt === 0) return this.command(text, line);
    // A line is rewritten, or read as a COPY header or a setting, only if it is one whole statement where psql starts one.
    const whole = facts.startsStatement && facts.statementEnds.length === 1 && facts.statementEnds[0] === text.length - 1;
    // `s`: a carriage return in a quoted name is part of the name (one outside quotes is a doubt).
    const copyHeader = whole && /^COPY .* FROM stdin;$/s.test(text);
    // The server starts COPY data for any spelling of COPY ... FROM STDIN, wherever psql sends
    // it (even inside what a BEGIN block makes one query); only pg_dump's own line is read as one.
    // In both modes: psql's own guard stops commands, not a COPY that makes the next lines data.
    if (facts.stdin && !copyHeader) throw stdinOutside(text);
    if (copyHeader) {
      this.inCopy = true;
      return line;
    }
    const encoding = whole ? /^SET client_encoding = '([^']*)';$/.exec(text) : null;
    if (encoding) {
      if (!this.guarded && !SERVER_ENCODINGS.has(encoding[1]!))
        throw new Error(`the dump sets the client encoding ${JSON.stringify(encoding[1]!.slice(0, 40))}, in which psql would read its lines otherwise than this check; refusing to run it`);
      this.encoding = encoding[1]!;
    }
    const strings = whole ? /^SET standard_conforming_strings = (on|off);$/.exec(text) : null;
    if (strings) this.lexer.standardStrings = strings[1] === 'on'; // from the next line on, as psql
    const out = whole ? this.rewrite(text, line, eol) : line;
    return out && facts.statementEnds.length > 0 ? this.afterStatement(out) : out;
  }

  /**
   * A statement over several lines, held until psql's statement ended, read whole. It is a COPY
   * header, whose data follows, only if every line break was inside a quoted name, the last
   * line's one `;` ends it and the whole is pg_dump's header; else the lines go on as any others
   * (rewritten as one if whole), and STDIN in them is refused.
   */
  private heldLines(texts: string[], kept: Array<{ line: Buffer; stdin: boolean }>, facts: LineFacts): Buffer | undefined {
    const last = texts.at(-1)!;
    const whole = facts.statementEnds.length === 1 && facts.statementEnds[0] === last.length - 1;
    const joined = texts.join('\n');
    const copyHeader = whole && PG_DUMP_COPY.test(joined);
    const all = this.release(kept, texts, copyHeader);
    if (copyHeader) return all;
    const out = whole ? this.rewrite(joined, all, kept.at(-1)!.line.at(-1) === NEWLINE ? 1 : 0) : all;
    return out && facts.statementEnds.length > 0 ? this.afterStatement(out) : out;
  }

  /** The held lines, as a COPY header or not. */
  private release(kept: Array<{ line: Buffer; stdin: boolean }>, texts: string[], copyHeader: boolean): Buffer {
    if (!copyHeader && kept.some((k) => k.stdin)) throw stdinOutside(texts.join('\n'));
    if (copyHeader) this.inCopy = true;
    return kept.length === 1 ? kept[0]!.line : Buffer.concat(kept.map((k) => k.line));
  }

  /** The roles section's own superuser lines dropped, DROP DATABASE forced; else the line itself. */
  private rewrite(text: string, line: Buffer, eol: number): Buffer | undefined {
    if (this.inRoles) {
      // Our own name as the dump's bytes spell it (UTF-8 bytes seen through latin1).
      const myName = Buffer.from(this.superuser, 'utf8').toString('latin1');
      if ([ident(myName), myName].some((r) => text === `DROP ROLE IF EXISTS ${r};` || text === `CREATE ROLE ${r};`)) {
        this.roles.add(myName);
        return undefined;
      }
      const created = /^CREATE ROLE ("(?:[^"]|"")+"|\S+);$/.exec(text);
      if (created) this.roles.add(unquote(created[1]!));
    }
    if (this.forceDrop) {
      const drop = /^DROP DATABASE (IF EXISTS )?("(?:[^"]|"")+"|\S+);$/.exec(text);
      if (drop) return Buffer.from(`DROP DATABASE ${drop[1] ?? ''}${drop[2]} WITH (FORCE);${eol ? '\n' : ''}`, 'latin1');
    }
    if (DATABASE_DDL.test(text)) return this.namesAsBytes(line, eol);
    return line;
  }

  /**
   * A statement run with client encoding SQL_ASCII, then the dump's again: the server takes its
   * bytes as they are (checking them against its own encoding) instead of converting them from
   * the dump's encoding. pg_dump --create writes CREATE DATABASE and ALTER DATABASE ... OWNER TO
   * in the new database's encoding but runs them before it connects to it, in another
   * database's session: a LATIN1 database named café in a UTF8 cluster was created as cafÃ©,
   * its \connect then failed, and the replay (and the restore point's, the same) stopped with
   * the database dropped. Its name and owner are the bytes pg_dump read, which SQL_ASCII keeps.
   */
  private namesAsBytes(line: Buffer, eol: number): Buffer {
    // Unguarded, afterStatement puts the dump's encoding back after every statement anyway.
    const back = this.guarded ? `SET client_encoding TO '${this.encoding.toLowerCase()}';\n` : '';
    return Buffer.concat([Buffer.from("SET client_encoding TO 'sql_ascii';\n"), line, Buffer.from(`${eol ? '' : '\n'}${back}`)]);
  }

  /** Unguarded, after a line on which psql ran a statement: psql back in the dump's encoding. */
  private afterStatement(out: Buffer): Buffer {
    if (this.guarded) return out;
    return Buffer.concat([out, out.at(-1) === NEWLINE ? Buffer.alloc(0) : Buffer.from('\n'), Buffer.from(this.reassert())]);
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
      return undefined; // ours stand instead; an older psql does not know them
    }
    if (name === 'connect') {
      if (!CONNECT.test(text)) throw foreign(text);
      this.inRoles = false;
      // A new session: the server's string syntax, psql's own encoding until the dump sets its database's.
      this.encoding = 'SQL_ASCII';
      this.lexer.standardStrings = true;
    } else if (text === '\\encoding SQL_ASCII') {
      this.encoding = 'SQL_ASCII'; // the only one pg_dumpall writes (before an odd name)
    } else throw foreign(text);
    // psql reads the command's arguments in its client encoding: a statement may have switched
    // it to one in which a lead byte takes the quote after it, so it goes back to SQL_ASCII
    // (which needs no conversion) first, as SQL, which stops psql if it fails.
    const before = "SET client_encoding TO 'sql_ascii';\n";
    if (!this.guarded) {
      const out = Buffer.concat([Buffer.from(before), line]);
      return name === 'connect' ? this.afterStatement(out) : out; // a new session: the dump's settings again
    }
    return Buffer.from(`${before}\\unrestrict ${this.restrictKey}\n${text}\n\\restrict ${this.restrictKey}\n`, 'latin1');
  }

  /**
   * pg_dumpall writes no psql command but \connect, \encoding (before connecting to a database
   * with an odd name) and \restrict/\unrestrict, each on a line of its own where a statement
   * may start, and no `COPY … PROGRAM`. psql runs a backslash command wherever one stands
   * outside quotes and comments (`SELECT 1; \! id`), so a dump holding any other one, or the
   * word PROGRAM outside quotes, was not written by it and is refused rather than run as
   * superuser. Without psql's guard, so is anything psql could read otherwise (the lexer's doubts).
   */
  private refuseForeign(text: string, facts: LineFacts): void {
    if (!this.guarded && facts.doubts.length > 0) {
      const what = DOUBTS[facts.doubts[0] as Doubt];
      throw new Error(
        `the dump holds ${what} (in the line ${JSON.stringify(text.slice(0, 100))}), which psql without \\restrict could read otherwise than this check; refusing to run it (a psql with \\restrict, from ${RESTRICT_RELEASES} on, guards the replay itself)`,
      );
    }
    if (facts.backslashAt >= 0) {
      const command = /^\\(\S*)/.exec(text.slice(facts.backslashAt))?.[1] ?? '';
      const own = facts.backslashAt === 0 && facts.startsStatement && ['connect', 'encoding', 'restrict', 'unrestrict'].includes(command);
      if (!own) throw new Error(`the dump holds the psql command \\${command.slice(0, 20)}, which pg_dumpall never writes; refusing to run it`);
    }
    if (facts.copyProgram) throw new Error('the dump holds COPY … PROGRAM, which pg_dumpall never writes; refusing to run it');
  }
}

/**
 * \connect as pg_dumpall writes it (appendPsqlMetaConnect): a name of letters, digits, `_` and
 * `.`, quoted or not, or else a connection string of one dbname in double quotes (where psql
 * expands no variable and runs no backquote). A quoted name with `=` would be a connection string.
 */
const CONNECT = /^\\connect (?:[A-Za-z0-9_.]+|"[A-Za-z0-9_.]+"|-reuse-previous=on "dbname='(?:[^'\\"]|\\['\\]|"")*'")$/;

const stdinOutside = (text: string) =>
  new Error(`the dump holds STDIN outside pg_dump's COPY line (in the line ${JSON.stringify(text.slice(0, 100))}), where the server could take the next lines as data; refusing to run it`);

const foreign = (text: string) => new Error(`the dump holds the psql command ${JSON.stringify(text.slice(0, 80))}, which pg_dumpall never writes in that form; refusing to run it`);

export { ident as quoteIdent };
