/**
 * psql's own lexer (src/fe_utils/psqlscan.l), rule for rule where it decides what psql treats
 * as SQL text, as a quoted literal or comment, as a statement's end or as a backslash command:
 * quotes ('...', E'...', B'...', X'...', N'...', U&'...', "...", U&"..."), dollar quotes, line
 * and nested block comments, psql's variables (`:name`), parentheses, and from psql 14 the
 * BEGIN ... END of a SQL-standard function body, inside which a `;` ends nothing. Like psql, it
 * reads a line at a time (psql never sees the newline between two lines) and keeps its state
 * from one line to the next.
 *
 * Where psql versions or the server's settings could read the same bytes differently, the
 * line's facts say so (`doubts`): a replay under psql's own guard (\restrict) does not need to
 * care, one without it must refuse them.
 */

/** psqlscan.l's exclusive states that outlive a token. */
type Mode = 'initial' | 'xqs' | 'xb' | 'xh' | 'xq' | 'xe' | 'xus' | 'xd' | 'xui' | 'xdolq' | 'xc';

export interface LineFacts {
  /** The line began where psql holds no statement text: outside quotes, parentheses and BEGIN blocks, nothing since the last `;`. */
  startsStatement: boolean;
  /** Column of the first backslash outside quotes and comments (a psql command, or `\;`/`\:`), or -1. */
  backslashAt: number;
  /** The name STDIN outside quotes and comments (the server starts COPY data for any COPY ... FROM STDIN). */
  stdin: boolean;
  /** COPY ... FROM or TO PROGRAM (which runs a shell command). */
  copyProgram: boolean;
  /** Column of each `;` that ends a statement for psql (psql sends the statement there). */
  statementEnds: number[];
  /** What psql versions or server settings could read otherwise (see `Doubt`). */
  doubts: Doubt[];
}

/**
 * - `cr`: a carriage return outside quotes. psql ends a `--` comment at one, and a string can
 *   continue after one, where a reading line by line would not.
 * - `number`: a number run into a letter (`1e'`, `1.e'`, `0x1F`, `1_000`, `$1a`; not `1e-07`):
 *   psql 15 and 16 lex these as one token, psql 13 and 14 as a number and a name (which may
 *   start an E'...' string).
 * - `variable`: `:NAME` with a name psql defines (DBNAME, USER, LAST_ERROR_MESSAGE...): psql
 *   puts the variable's value in its place and reads that as input.
 * - `after-statement`: something follows the `;` that ends a statement on the same line; psql
 *   runs the statement before it reads the next line, so a setting the statement changes
 *   applies to the rest of this line in a way no reading of the line can know.
 */
export type Doubt = 'cr' | 'number' | 'variable' | 'after-statement';

export interface PsqlLexerOptions {
  /** psql 14 and later: no `;` ends `CREATE [OR REPLACE] FUNCTION|PROCEDURE ... BEGIN ... END`. Default true. */
  beginBlocks?: boolean;
}

/** Every variable psql 9.6-18 defines by itself (all in capitals), and ON_ERROR_STOP, which stackvault sets. */
const PSQL_VARIABLES: ReadonlySet<string> = new Set(
  (
    'AUTOCOMMIT COMP_KEYWORD_CASE DBNAME ECHO ECHO_HIDDEN ENCODING ERROR FETCH_COUNT HIDE_TABLEAM HIDE_TOAST_COMPRESSION ' +
    'HISTCONTROL HISTFILE HISTSIZE HOST IGNOREEOF LASTOID LAST_ERROR_MESSAGE LAST_ERROR_SQLSTATE ON_ERROR_ROLLBACK ON_ERROR_STOP ' +
    'PIPELINE_COMMAND_COUNT PIPELINE_RESULT_COUNT PIPELINE_SYNC_COUNT PORT PROMPT1 PROMPT2 PROMPT3 QUIET ROW_COUNT ' +
    'SERVER_VERSION_NAME SERVER_VERSION_NUM SERVICE SHELL_ERROR SHELL_EXIT_CODE SHOW_ALL_RESULTS SHOW_CONTEXT SINGLELINE ' +
    'SINGLESTEP SQLSTATE USER VERBOSITY VERSION VERSION_NAME VERSION_NUM WATCH_INTERVAL'
  ).split(' '),
);

/** The names psqlscan.l records the first letter of, to spot CREATE [OR REPLACE] FUNCTION|PROCEDURE. */
const CREATE_ROUTINE_WORDS = new Set(['create', 'function', 'procedure', 'or', 'replace']);
const SPACE = /[ \t\n\r\f]/;
const IDENT_START = /[A-Za-z_\u0080-\u00ff]/;
const IDENT_CONT = /[A-Za-z_\u0080-\u00ff0-9$]/;
const VARIABLE_CHAR = /[A-Za-z_\u0080-\u00ff0-9]/;
const DIGIT = /[0-9]/;
/** psqlscan.l's dolqdelim, dolqfailed (a `$name` with no closing `$`) and param, matched at a position (sticky). */
const DOLQ_DELIM = /\$([A-Za-z_\u0080-\u00ff][A-Za-z_\u0080-\u00ff0-9]*)?\$/y;
const DOLQ_FAILED = /\$[A-Za-z_\u0080-\u00ff][A-Za-z_\u0080-\u00ff0-9]*/y;
const PARAM = /\$[0-9]+/y;

/**
 * The end of psql 13's number token at `at` (integer, decimal or real; 1..2 is 1 and `..`, and
 * an exponent without digits is left out, as psqlscan.l's decimalfail and realfail rules do).
 */
function numberEnd(text: string, at: number): number {
  const digits = (from: number) => {
    let j = from;
    while (DIGIT.test(text[j] ?? '')) j++;
    return j;
  };
  let j = digits(at);
  if (text[j] === '.' && text[j + 1] !== '.') j = digits(j + 1);
  if (text[j] === 'e' || text[j] === 'E') {
    const sign = text[j + 1] === '+' || text[j + 1] === '-' ? 1 : 0;
    if (DIGIT.test(text[j + 1 + sign] ?? '')) j = digits(j + 1 + sign);
  }
  return j;
}

/** The match of a sticky pattern at `at`, or null. */
function matchAt(pattern: RegExp, text: string, at: number): RegExpExecArray | null {
  pattern.lastIndex = at;
  return pattern.exec(text);
}

/** The end of a `--` comment starting at `at`: its newline's position, or -1 if it runs to the line's end. */
const commentEnd = (text: string, at: number) => {
  for (let j = at; j < text.length; j++) if (text[j] === '\r' || text[j] === '\n') return j;
  return -1;
};

/**
 * psqlscan.l's quotecontinue after a closing quote (blanks or `--` comments, a newline, more
 * white space or comments each ending in a newline, a quote): the position after that quote, or -1.
 * Scanned by hand: as a regular expression, a run of dashes backtracks exponentially.
 */
function quoteContinues(text: string, at: number): number {
  let j = at;
  for (;;) {
    if (text[j] === ' ' || text[j] === '\t' || text[j] === '\f') j++;
    else if (text[j] === '-' && text[j + 1] === '-') {
      j = commentEnd(text, j);
      if (j < 0) return -1;
    } else break;
  }
  if (text[j] !== '\r' && text[j] !== '\n') return -1;
  j++;
  for (;;) {
    if (j < text.length && SPACE.test(text[j]!)) j++;
    else if (text[j] === '-' && text[j + 1] === '-') {
      j = commentEnd(text, j);
      if (j < 0) return -1;
      j++;
    } else break;
  }
  return text[j] === "'" ? j + 1 : -1;
}

export class PsqlLexer {
  private mode: Mode = 'initial';
  /** The string state a quote stop (xqs) goes back to if the string continues. */
  private beforeStop: Mode = 'xq';
  private xcDepth = 0;
  private dolqTag = '';
  private parenDepth = 0;
  private beginDepth = 0;
  private identifierCount = 0;
  private readonly identifiers: string[] = ['', '', '', ''];
  /** psql's query buffer holds text since the last statement's end (white space and `--` comments are not kept). */
  private pending = false;
  /** Tokens of the statement so far, and its first one if that is a name (`copy` for a COPY). */
  private statementTokens = 0;
  private firstWord = '';
  /** The name that was the last token (empty if the last token was not a name), and the one before the current token. */
  private lastWord = '';
  private prevWord = '';
  private readonly beginBlocks: boolean;
  /**
   * psql's reading of '...' follows the server's standard_conforming_strings (off: backslash
   * escapes, as in E'...'); whoever feeds the lines says which applies to the next one.
   */
  standardStrings = true;

  constructor(options: PsqlLexerOptions = {}) {
    this.beginBlocks = options.beginBlocks ?? true;
  }

  /**
   * The last line ended inside a double-quoted identifier ("...", not U&"..."): psql reads on,
   * and the line break is part of the name (pg_dump writes a name holding one as it is).
   */
  get inQuotedIdentifier(): boolean {
    return this.mode === 'xd';
  }

  /** The last line ended inside a quoted name or a string ('...' or E'...'): the line break is part of it. */
  get inQuotedText(): boolean {
    return this.mode === 'xd' || this.mode === 'xq' || this.mode === 'xe';
  }

  private atStatementStart(): boolean {
    return (this.mode === 'initial' || this.mode === 'xqs') && !this.pending && this.parenDepth === 0 && this.beginDepth === 0;
  }

  /** Reads one line (without its newline) and says what psql sees in it. */
  line(text: string): LineFacts {
    const facts: LineFacts = {
      startsStatement: this.atStatementStart(),
      backslashAt: -1,
      stdin: false,
      copyProgram: false,
      statementEnds: [],
      doubts: [],
    };
    const doubt = (d: Doubt) => {
      if (!facts.doubts.includes(d)) facts.doubts.push(d);
    };
    let i = 0;
    while (i < text.length) {
      const c = text[i]!;
      switch (this.mode) {
        case 'xq':
        case 'xe':
        case 'xus':
        case 'xb':
        case 'xh': {
          if (c === "'") {
            // '' inside a string (not in B'' or X'', where psql ends the string and starts another: the same)
            if (text[i + 1] === "'" && this.mode !== 'xb' && this.mode !== 'xh') {
              i += 2;
              continue;
            }
            this.beforeStop = this.mode;
            this.mode = 'xqs';
            i++;
            continue;
          }
          if (this.mode === 'xe' && c === '\\') {
            i += 2; // an escape takes the next character; a backslash at the line's end takes nothing
            continue;
          }
          i++;
          continue;
        }
        case 'xqs': {
          const after = quoteContinues(text, i);
          if (after >= 0) {
            doubt('cr'); // within a line, only a carriage return can be the newline it needs
            this.mode = this.beforeStop;
            i = after;
            continue;
          }
          this.mode = 'initial';
          continue; // read the same character again, outside
        }
        case 'xd':
        case 'xui': {
          if (c === '"') {
            if (text[i + 1] === '"') {
              i += 2;
              continue;
            }
            this.mode = 'initial';
          }
          i++;
          continue;
        }
        case 'xdolq': {
          if (c === '$') {
            const delim = matchAt(DOLQ_DELIM, text, i);
            if (delim) {
              if ((delim[1] ?? '') === this.dolqTag) {
                this.mode = 'initial';
                i += delim[0].length;
              } else {
                i += delim[0].length - 1; // the last $ may start the closing delimiter
              }
              continue;
            }
            const failed = matchAt(DOLQ_FAILED, text, i);
            i += failed ? failed[0].length : 1;
            continue;
          }
          i++;
          continue;
        }
        case 'xc': {
          if (c === '/' && text[i + 1] === '*') {
            this.xcDepth++;
            i += 2;
          } else if (c === '*') {
            let j = i;
            while (text[j] === '*') j++;
            if (text[j] === '/') {
              if (this.xcDepth <= 0) this.mode = 'initial';
              else this.xcDepth--;
              i = j + 1;
            } else {
              i = j;
            }
          } else {
            i++;
          }
          continue;
        }
        case 'initial':
          break;
      }

      // Outside quotes and comments: one of psqlscan.l's INITIAL tokens.
      if (SPACE.test(c)) {
        if (c === '\r') doubt('cr');
        i++;
        continue;
      }
      if (c === '-' && text[i + 1] === '-') {
        const end = commentEnd(text, i);
        if (end < 0) break; // a comment to the end of the line
        i = end; // psql ends it at a carriage return too (read next, as white space)
        continue;
      }
      if (this.statementDone(facts)) doubt('after-statement');
      if (c === '\\') {
        facts.backslashAt = i;
        break; // a psql command: the rest of the line is its arguments (it adds nothing to the statement)
      }
      if (c === '/' && text[i + 1] === '*') {
        this.mode = 'xc';
        this.xcDepth = 0;
        this.pending = true;
        i += 2;
        continue;
      }
      this.pending = true;
      this.statementTokens++;
      this.prevWord = this.lastWord;
      this.lastWord = '';
      const next = text[i + 1];
      if (c === "'") {
        this.mode = this.standardStrings ? 'xq' : 'xe'; // psqlscan.l's xqstart
        i++;
        continue;
      }
      if (next === "'" && /[eEbBxXnN]/.test(c)) {
        if (c === 'n' || c === 'N') {
          i++; // psql takes the N alone (not a name); the quote comes next, as a plain string
          continue;
        }
        this.mode = c === 'e' || c === 'E' ? 'xe' : c === 'b' || c === 'B' ? 'xb' : 'xh';
        i += 2;
        continue;
      }
      if ((c === 'u' || c === 'U') && next === '&') {
        const after = text[i + 2];
        if (after === "'" || after === '"') {
          this.mode = after === "'" ? 'xus' : 'xui';
          i += 3;
        } else {
          i++; // psql takes the U alone (not a name)
        }
        continue;
      }
      if (c === '"') {
        this.mode = 'xd';
        i++;
        continue;
      }
      if (c === '$') {
        const param = matchAt(PARAM, text, i);
        const delim = param ? null : matchAt(DOLQ_DELIM, text, i);
        if (delim) {
          this.mode = 'xdolq';
          this.dolqTag = delim[1] ?? '';
          i += delim[0].length;
        } else {
          i += param ? param[0].length : 1;
          if (param && IDENT_START.test(text[i] ?? '')) doubt('number'); // psql 15's param_junk
        }
        continue;
      }
      if (c === ':') {
        i += this.colon(text, i, doubt);
        continue;
      }
      if (c === '(') {
        this.parenDepth++;
        i++;
        continue;
      }
      if (c === ')') {
        if (this.parenDepth > 0) this.parenDepth--;
        i++;
        continue;
      }
      if (c === ';') {
        if (this.parenDepth === 0 && this.beginDepth === 0) {
          facts.statementEnds.push(i);
          this.identifierCount = 0;
          this.statementTokens = 0;
          this.firstWord = '';
          this.pending = false;
        }
        i++;
        continue;
      }
      if (DIGIT.test(c) || (c === '.' && DIGIT.test(next ?? ''))) {
        i = numberEnd(text, i);
        // psql 15 and 16 take a name character after a number into the number's token (as
        // junk, or as 0x1F and 1_000), psql 13 and 14 start a name (or an E'...' string) there.
        if (IDENT_CONT.test(text[i] ?? '')) doubt('number'); // `$` too: 1e5$$ is junk to psql 15, not a dollar quote
        continue;
      }
      if (IDENT_START.test(c)) {
        let j = i + 1;
        while (j < text.length && IDENT_CONT.test(text[j]!)) j++;
        this.identifier(text.slice(i, j), facts);
        i = j;
        continue;
      }
      i++; // an operator character or anything else, one at a time (`--` and `/*` are found above at every position)
    }
    return facts;
  }

  /** Whether the line already ended a statement and nothing but white space came since. */
  private statementDone(facts: LineFacts): boolean {
    return facts.statementEnds.length > 0 && !this.pending && this.parenDepth === 0 && this.beginDepth === 0;
  }

  /** psql's tokens that start with a colon; returns how many characters it takes. */
  private colon(text: string, i: number, doubt: (d: Doubt) => void): number {
    const next = text[i + 1];
    if (next === ':' || next === '=') return 2; // :: and :=
    const named = (from: number) => {
      let j = from;
      while (j < text.length && VARIABLE_CHAR.test(text[j]!)) j++;
      return j;
    };
    if (next !== undefined && VARIABLE_CHAR.test(next)) {
      const end = named(i + 1);
      if (PSQL_VARIABLES.has(text.slice(i + 1, end))) doubt('variable');
      return end - i;
    }
    if (next === "'" || next === '"') {
      const end = named(i + 2);
      if (end > i + 2 && text[end] === next) {
        if (PSQL_VARIABLES.has(text.slice(i + 2, end))) doubt('variable');
        return end + 1 - i;
      }
      return 1; // psql throws back all but the colon
    }
    if (next === '{' && text[i + 2] === '?') {
      const end = named(i + 3);
      if (end > i + 3 && text[end] === '}') return end + 1 - i;
    }
    return 1;
  }

  /** psqlscan.l's identifier rule: counts the statement's names to spot CREATE [OR REPLACE] FUNCTION|PROCEDURE ... BEGIN. */
  private identifier(word: string, facts: LineFacts): void {
    const lower = word.toLowerCase();
    if (lower === 'stdin') facts.stdin = true;
    if (this.statementTokens === 1) this.firstWord = lower;
    // COPY's grammar puts PROGRAM right after FROM or TO, outside parentheses (a column named program is in them).
    if (lower === 'program' && this.firstWord === 'copy' && this.parenDepth === 0 && (this.prevWord === 'from' || this.prevWord === 'to')) facts.copyProgram = true;
    this.lastWord = lower;
    if (!this.beginBlocks) return;
    if (this.identifierCount === 0) this.identifiers.fill('');
    if (CREATE_ROUTINE_WORDS.has(lower) && this.identifierCount < 4) this.identifiers[this.identifierCount] = lower[0]!;
    this.identifierCount++;
    const [a, b, c, d] = this.identifiers;
    const inCreateRoutine = a === 'c' && (b === 'f' || b === 'p' || (b === 'o' && c === 'r' && (d === 'f' || d === 'p')));
    if (!inCreateRoutine || this.parenDepth !== 0) return;
    if (lower === 'begin') this.beginDepth++;
    else if (lower === 'case') {
      if (this.beginDepth >= 1) this.beginDepth++;
    } else if (lower === 'end' && this.beginDepth > 0) this.beginDepth--;
  }
}

/**
 * The most a statement is held over lines (pg_dump's longest COPY header, 1600 columns named by
 * 63 quotes each, is about 210 KB).
 */
export const HELD_MAX = 1 << 20;

/** Which statements a reader holds over lines, and what makes one go on past a line's end. */
export interface HoldRule {
  /** The first line of a statement that is held (where psql starts a statement). */
  starts: RegExp;
  /** The line breaks that are part of a held statement: inside a quoted name only, or also inside a string. */
  within: 'quoted-name' | 'quoted-text';
  /** Past HELD_MAX: the error to fail with; without one, what is held is handed over as it is. */
  tooLong?: () => Error;
}

/** A statement as psql sends it: its lines, and what the reader keeps beside each. */
export interface HeldLines<T> {
  texts: string[];
  kept: T[];
  /** The last line ended inside the quoted name or string (it was handed over past HELD_MAX). */
  goesOn: boolean;
  /** More than the line just read: the statement began on an earlier line. */
  held: boolean;
}

/**
 * Holds a statement whose quoted name or string holds a line break until psql's statement ends
 * (psql reads on, and the line break is part of the name), so it is read whole. The lexer's facts
 * decide where it starts and ends; the rule, each reader's own, which statements are held.
 *
 * The restore filter (pg-restore-filter.ts) and the dump fingerprinter (pg-fingerprint.ts) both
 * hold lines with it. That does not weaken the content check, which compares the fingerprint
 * with the restored server read back with COPY (code none of this touches): the holder only
 * finds where a statement's text begins and ends, and decides nothing of its own there. Whether
 * a line starts a statement, and whether the statement goes on past the line, are the facts of
 * the lexer, which both already share for every line; which statements are held is each
 * reader's own rule (the filter holds COPY, CREATE ROLE and ALTER DATABASE, the fingerprinter
 * COPY, CREATE ROLE, setval and CREATE DATABASE, and reads a string as well as a name over
 * lines), and each reads the joined statement with its own patterns. A fault here that loses or moves a line makes the
 * fingerprint differ from what psql replayed, which the check reports. What sharing cannot
 * catch is what sharing the lexer already cannot: a misreading common to both readers where the
 * restore acts on its own reading, the roles it drops as not created by the dump.
 */
export class StatementHolder<T> {
  private held: { texts: string[]; kept: T[]; bytes: number } | undefined;

  constructor(
    private readonly lexer: PsqlLexer,
    private readonly rule: HoldRule,
  ) {}

  /**
   * One line, after the lexer has read it: undefined while the statement goes on (held), else the
   * lines to read as one (this line alone when nothing was held). `bytes` counts toward HELD_MAX.
   */
  line(text: string, facts: LineFacts, kept: T, bytes: number): HeldLines<T> | undefined {
    const goesOn = facts.statementEnds.length === 0 && (this.rule.within === 'quoted-name' ? this.lexer.inQuotedIdentifier : this.lexer.inQuotedText);
    if (!this.held) {
      if (!(facts.startsStatement && goesOn && this.rule.starts.test(text))) return { texts: [text], kept: [kept], goesOn, held: false };
      this.held = { texts: [], kept: [], bytes: 0 };
    }
    const h = this.held;
    h.texts.push(text);
    h.kept.push(kept);
    h.bytes += bytes;
    if (goesOn) {
      if (h.bytes <= HELD_MAX) return undefined;
      if (this.rule.tooLong) throw this.rule.tooLong();
    }
    this.held = undefined;
    return { texts: h.texts, kept: h.kept, goesOn, held: true };
  }

  /** At the end of the input: what is still held (the input ended inside a quoted name or string), now let go. */
  end(): HeldLines<T> | undefined {
    const h = this.held;
    this.held = undefined;
    return h && { texts: h.texts, kept: h.kept, goesOn: true, held: true };
  }
}
