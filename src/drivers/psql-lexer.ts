/**
 * Just enough of psql's own lexer (psqlscan.l) to know, line by line, what psql will treat as
 * SQL text, as a quoted literal or comment, or as a backslash command: quotes ('...', E'...'
 * with escapes, "..."), dollar quotes ($tag$...$tag$), line comments and nested block comments. A
 * backslash outside all of them starts a psql command wherever it is in a line.
 */
type State = { kind: 'normal' } | { kind: 'single'; escapes: boolean } | { kind: 'double' } | { kind: 'dollar'; tag: string } | { kind: 'block'; depth: number };

export interface LineFacts {
  /** The line began outside any quote or comment. */
  startsNormal: boolean;
  /** The line began where a new statement may start (after a `;`, a psql command, or at the top). */
  startsStatement: boolean;
  /** Column of the first backslash outside quotes and comments, or -1. */
  backslashAt: number;
  /** Words outside quotes and comments, lower-cased (to look for keywords such as PROGRAM). */
  words: string[];
}

const DOLLAR_TAG = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/;

export class PsqlLexer {
  private state: State = { kind: 'normal' };
  private statementStart = true;

  /** Reads one line (without its newline) and says what psql sees in it. */
  line(text: string): LineFacts {
    const facts: LineFacts = { startsNormal: this.state.kind === 'normal', startsStatement: this.state.kind === 'normal' && this.statementStart, backslashAt: -1, words: [] };
    let word = '';
    const endWord = () => {
      if (word) facts.words.push(word.toLowerCase());
      word = '';
    };
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      const st = this.state;
      if (st.kind === 'single') {
        if (st.escapes && c === '\\') i++;
        else if (c === "'") {
          if (text[i + 1] === "'") i++;
          else this.state = { kind: 'normal' };
        }
        continue;
      }
      if (st.kind === 'double') {
        if (c === '"') {
          if (text[i + 1] === '"') i++;
          else this.state = { kind: 'normal' };
        }
        continue;
      }
      if (st.kind === 'dollar') {
        if (c === '$' && text.startsWith(`$${st.tag}$`, i)) {
          i += st.tag.length + 1;
          this.state = { kind: 'normal' };
        }
        continue;
      }
      if (st.kind === 'block') {
        if (c === '*' && text[i + 1] === '/') {
          i++;
          this.state = st.depth > 1 ? { kind: 'block', depth: st.depth - 1 } : { kind: 'normal' };
        } else if (c === '/' && text[i + 1] === '*') {
          i++;
          this.state = { kind: 'block', depth: st.depth + 1 };
        }
        continue;
      }
      // Outside quotes and comments.
      if (/[A-Za-z0-9_\u0080-\uffff]/.test(c)) {
        // An E'...' string starts with a word E directly followed by a quote.
        if ((c === 'E' || c === 'e') && text[i + 1] === "'" && !word) {
          this.state = { kind: 'single', escapes: true };
          i++;
          this.statementStart = false;
          continue;
        }
        word += c;
        this.statementStart = false;
        continue;
      }
      endWord();
      if (c === '-' && text[i + 1] === '-') break; // a comment to the end of the line
      if (c === '/' && text[i + 1] === '*') {
        this.state = { kind: 'block', depth: 1 };
        i++;
        continue;
      }
      if (c === "'") this.state = { kind: 'single', escapes: false };
      else if (c === '"') this.state = { kind: 'double' };
      else if (c === '$') {
        const tag = DOLLAR_TAG.exec(text.slice(i));
        if (tag) {
          this.state = { kind: 'dollar', tag: tag[1] ?? '' };
          i += tag[0].length - 1;
        }
      } else if (c === '\\') {
        facts.backslashAt = i;
        this.statementStart = true; // a psql command ends what came before it on the line
        break; // the rest of the line is the command's arguments
      } else if (c === ';') {
        this.statementStart = true;
        continue;
      }
      if (!/\s/.test(c)) this.statementStart = false;
    }
    endWord();
    return facts;
  }
}
