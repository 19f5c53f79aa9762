/**
 * How MariaDB's parser reads one statement between DELIMITER ;; lines. The client sends such a
 * block as one query, and the server ends the statement at the first `;` its grammar does not
 * take into a stored program's body: what follows runs as a second statement of the same query.
 * A `;` is inside a body only where the server's grammar (sql_yacc.yy, MariaDB mode) has one:
 * between the statements of BEGIN…END, IF…END IF, CASE…END CASE, LOOP…END LOOP, WHILE…END
 * WHILE, REPEAT…UNTIL…END REPEAT, FOR…END FOR, in a CREATE PROCEDURE, FUNCTION, TRIGGER or
 * EVENT whose body is such a statement.
 *
 * A block opens only where the server begins a statement: the body's start (after FOR EACH ROW
 * [FOLLOWS|PRECEDES name] of a trigger, the parameter list and characteristics of a procedure,
 * the RETURNS type and characteristics of a function, DO of an event), and inside a block after
 * `;`, THEN, ELSE, DO, LOOP, REPEAT, BEGIN [NOT ATOMIC], a label's `:` and a handler's
 * conditions. Anywhere else the words are an expression's: IF( and REPEAT( are functions, IF
 * [NOT] EXISTS and FOR UPDATE clauses, BEGIN and END names (neither is reserved), and CASE
 * opens a CASE expression that END alone closes. A word right after `@`, or before or after
 * `.`, is a name to the server's lexer, never a keyword.
 *
 * Counting one block too many would take a `;` that ends the statement for one inside a body,
 * and let a second statement run unread; so every reading that is not sure is refused, and the
 * filter refuses a `;` this reader does not place inside a body.
 */
export type ProgramToken = { word: string; keyword: boolean } | { quoted: 'string' | 'name' } | { punct: string };

export const refused = (what: string) => new Error(`the dump holds ${what}, which a restore must not run; refusing to restore it`);

type Block = 'begin' | 'if' | 'case' | 'loop' | 'while' | 'repeat' | 'for' | 'case expression';
/** Where in its block the parser is: a condition (IF, ELSEIF, WHEN, WHILE, FOR's bounds), statements, REPEAT's UNTIL, FOR's variable and IN. */
type Part = 'condition' | 'statements' | 'until' | 'index' | 'in';
interface Frame {
  block: Block;
  part: Part;
  /** The parentheses open when the block opened: THEN and DO belong to it only at the same depth. */
  parens: number;
}
/** Where in the statement the reader is, from the first word to the body. */
type Header = 'create' | 'prefix' | 'trigger' | 'order' | 'anchor' | 'event' | 'parameters' | 'parameter list' | 'returns' | 'return type' | 'characteristics' | 'body' | 'other';
/** Where in the body: a statement's start, a name that may be a label, a label's `:`, BEGIN's NOT ATOMIC, END's kind, a DECLARE, a handler's conditions, or an expression. */
type At =
  | 'start'
  | 'name'
  | 'label'
  | 'not atomic'
  | 'atomic'
  | 'end kind'
  | 'declare'
  | 'handler'
  | 'handler for'
  | 'condition'
  | 'sqlstate'
  | 'sqlstate value'
  | 'not found'
  | 'after condition'
  | 'until end'
  | 'expression';

const PROGRAMS = new Set(['procedure', 'function', 'trigger', 'event']);
/** What CREATE may have before the program's kind (the definer's name is quoted, with `=` and `@`). */
const PREFIX = new Set(['or', 'replace', 'definer', 'aggregate']);
/** A function's body must begin with one of these, or a label (sp_proc_stmt_in_returns_clause). */
const FUNCTION_BODIES = new Set(['return', 'begin', 'if', 'case', 'loop', 'while', 'repeat', 'for']);
/** The blocks a label may precede. */
const LABELLED = new Set(['begin', 'loop', 'while', 'repeat', 'for']);
/** Routine characteristics and the words each takes after it (COMMENT takes a string). */
const CHARACTERISTICS = new Map<string, string[][]>([
  ['language', [['sql']]],
  ['not', [['deterministic']]],
  ['deterministic', []],
  ['contains', [['sql']]],
  ['no', [['sql']]],
  ['reads', [['sql'], ['data']]],
  ['modifies', [['sql'], ['data']]],
  ['sql', [['security'], ['definer', 'invoker']]],
  ['comment', []],
]);
const TRIGGER_ROW = ['for', 'each', 'row'];
/** Words that cannot follow the END of a CASE expression: END CASE, END IF … close statements, which END alone does not. */
const NOT_AFTER_CASE_EXPRESSION = new Set(['case', 'if', 'loop', 'while', 'repeat']);

const isKeyword = (t: ProgramToken, ...words: string[]) => 'word' in t && t.keyword && words.includes(t.word);
const isPunct = (t: ProgramToken, p: string) => 'punct' in t && t.punct === p;
/** A word or a quoted name: what the server may take for a name (a label, a loop variable, a condition). */
const isName = (t: ProgramToken) => 'word' in t || ('quoted' in t && t.quoted === 'name');
const upper = (w: string) => w.toUpperCase();

/** One statement's reading; a new one for each statement. */
export class StoredProgram {
  private header: Header = 'create';
  private kind = '';
  private stack: Frame[] = [];
  private at: At = 'start';
  private parens = 0;
  private triggerWords = 0;
  /** The words a characteristic still needs (READS SQL DATA), and whether COMMENT waits for its string. */
  private expected: string[][] = [];
  private comment = false;
  private endKind: Block = 'begin';
  private afterCaseExpression = false;

  /** `oracle`: the statement is read under sql_mode ORACLE, whose grammar for bodies is another one (not read here). */
  constructor(private readonly oracle: boolean) {}

  token(t: ProgramToken): void {
    switch (this.header) {
      case 'create':
        this.header = isKeyword(t, 'create') ? 'prefix' : 'other';
        return;
      case 'prefix':
        return this.prefix(t);
      case 'trigger':
        return this.trigger(t);
      case 'order':
        if (isKeyword(t, 'follows', 'precedes')) {
          this.header = 'anchor';
          return;
        }
        return this.enterBody(t);
      case 'anchor':
        if (!('word' in t) && !('quoted' in t)) throw refused('FOLLOWS or PRECEDES without a trigger name');
        this.header = 'body';
        return;
      case 'event':
        if (isKeyword(t, 'do') && this.parens === 0) {
          this.header = 'body';
          return;
        }
        return this.parenthesis(t);
      case 'parameters':
        if (isPunct(t, '(')) {
          this.parens = 1;
          this.header = 'parameter list';
        }
        return;
      case 'parameter list':
        this.parenthesis(t);
        if (this.parens === 0) this.header = this.kind === 'function' ? 'returns' : 'characteristics';
        return;
      case 'returns':
        this.header = isKeyword(t, 'returns') ? 'return type' : 'other';
        return;
      case 'return type':
        return this.returnType(t);
      case 'characteristics':
        return this.characteristic(t);
      case 'body':
        return this.body(t);
      case 'other':
        return;
    }
  }

  /** A `;` not followed by another: true when it lies inside the body, false when it ends the statement. */
  semicolon(): boolean {
    if (this.header !== 'body') {
      if (this.oracle && PROGRAMS.has(this.kind)) throw refused(`a \`;\` in a stored program defined under sql_mode ORACLE, whose blocks this reading does not follow`);
      return false;
    }
    this.afterCaseExpression = false;
    if (this.parens !== 0) throw refused('a `;` inside parentheses in a stored program');
    const top = this.stack.at(-1);
    if (!top) return false; // the body is whole: this `;` ends the statement
    if (top.part !== 'statements') throw refused(`a \`;\` inside ${top.block === 'case expression' ? 'a CASE expression' : `the condition of ${upper(top.block)}`}`);
    if (this.at !== 'expression' && this.at !== 'name') throw refused('a `;` where a stored program statement is not whole');
    this.at = 'start';
    return true;
  }

  private prefix(t: ProgramToken): void {
    if ('word' in t) {
      if (t.keyword && PROGRAMS.has(t.word)) {
        this.kind = t.word;
        if (this.oracle) this.header = 'other';
        else this.header = t.word === 'trigger' ? 'trigger' : t.word === 'event' ? 'event' : 'parameters';
        return;
      }
      if (!t.keyword || !PREFIX.has(t.word)) this.header = 'other';
      return;
    }
    // DEFINER=`root`@`localhost`
    if (!('quoted' in t) && !isPunct(t, '=') && !isPunct(t, '@')) this.header = 'other';
  }

  /** The body begins after FOR EACH ROW (and FOLLOWS or PRECEDES a trigger's name). */
  private trigger(t: ProgramToken): void {
    if (!('word' in t) || !t.keyword) {
      this.triggerWords = 0;
      return;
    }
    if (t.word === TRIGGER_ROW[this.triggerWords]) this.triggerWords++;
    else this.triggerWords = t.word === 'for' ? 1 : 0;
    if (this.triggerWords === TRIGGER_ROW.length) this.header = 'order';
  }

  /** A function's RETURNS type: words and parentheses up to a characteristic or the body (the words a body must begin with, or a label's `:`). */
  private returnType(t: ProgramToken): void {
    if (isPunct(t, '(') || isPunct(t, ')')) return this.parenthesis(t);
    if (this.parens > 0) return;
    if (isPunct(t, ':')) {
      // The word before it, taken for the type's, was a label.
      this.header = 'body';
      this.at = 'label';
      return;
    }
    if ('word' in t && t.keyword && CHARACTERISTICS.has(t.word)) {
      this.header = 'characteristics';
      return this.characteristic(t);
    }
    if ('word' in t && t.keyword && FUNCTION_BODIES.has(t.word)) return this.enterBody(t);
  }

  /** LANGUAGE SQL, [NOT] DETERMINISTIC, CONTAINS SQL, NO SQL, READS SQL DATA, MODIFIES SQL DATA, SQL SECURITY …, COMMENT '…'; then the body. */
  private characteristic(t: ProgramToken): void {
    const want = this.expected.shift();
    if (want) {
      if (!('word' in t) || !t.keyword || !want.includes(t.word)) throw refused('a routine characteristic that is not whole');
      return;
    }
    if (this.comment) {
      this.comment = false;
      if (!('quoted' in t) || t.quoted !== 'string') throw refused('COMMENT without its string in a routine');
      return;
    }
    const rest = 'word' in t && t.keyword ? CHARACTERISTICS.get(t.word) : undefined;
    if (!rest) return this.enterBody(t);
    this.expected = rest.map((words) => [...words]);
    this.comment = 'word' in t && t.word === 'comment';
  }

  private enterBody(t: ProgramToken): void {
    this.header = 'body';
    this.at = 'start';
    this.body(t);
  }

  private body(t: ProgramToken): void {
    const top = this.stack.at(-1);
    if (this.afterCaseExpression) {
      // The token right after a CASE expression's END.
      this.afterCaseExpression = false;
      if ('word' in t && t.keyword && NOT_AFTER_CASE_EXPRESSION.has(t.word)) throw refused(`END ${upper(t.word)} after a CASE expression, which END alone closes`);
    }
    if (top?.block === 'for' && top.part === 'index') {
      if (!isName(t)) throw refused('FOR without its variable');
      top.part = 'in';
      return;
    }
    if (top?.block === 'for' && top.part === 'in') {
      if (!isKeyword(t, 'in')) throw refused('FOR without IN');
      top.part = 'condition';
      return;
    }
    switch (this.at) {
      case 'start':
        return this.statement(t);
      case 'name':
        if (isPunct(t, ':')) {
          this.at = 'label';
          return;
        }
        this.at = 'expression';
        return this.expression(t);
      case 'label':
        if ('word' in t && t.keyword && LABELLED.has(t.word)) return this.statement(t);
        throw refused('a label that BEGIN, LOOP, WHILE, REPEAT or FOR does not follow');
      case 'not atomic':
        return this.expect(t, ['not'], 'atomic', 'start');
      case 'atomic':
        return this.expect(t, ['atomic'], 'start', { refuse: 'BEGIN NOT without ATOMIC' });
      case 'end kind':
        if (!isKeyword(t, this.endKind)) throw refused(`END without ${upper(this.endKind)} where it closes ${upper(this.endKind)}`);
        this.stack.pop();
        this.at = 'expression'; // an optional label, then `;`
        return;
      case 'declare':
        return this.expect(t, ['continue', 'exit'], 'handler', 'expression');
      case 'handler':
        return this.expect(t, ['handler'], 'handler for', 'expression');
      case 'handler for':
        return this.expect(t, ['for'], 'condition', { refuse: 'DECLARE … HANDLER without FOR' });
      case 'condition':
        return this.condition(t);
      case 'sqlstate':
        if (isKeyword(t, 'value')) {
          this.at = 'sqlstate value';
          return;
        }
        return this.sqlstate(t);
      case 'sqlstate value':
        return this.sqlstate(t);
      case 'not found':
        return this.expect(t, ['found'], 'after condition', { refuse: 'NOT without FOUND in a handler condition' });
      case 'after condition':
        if (isPunct(t, ',')) {
          this.at = 'condition';
          return;
        }
        // The handler's own statement.
        this.at = 'start';
        return this.statement(t);
      case 'until end':
        this.at = 'expression';
        if (isKeyword(t, 'repeat')) {
          this.stack.pop();
          return;
        }
        return this.expression(t);
      case 'expression':
        return this.expression(t);
    }
  }

  /** `t` is one of `words`: on to `next`; otherwise `t` begins a statement or continues an expression, or is refused. */
  private expect(t: ProgramToken, words: string[], next: At, otherwise: 'start' | 'expression' | { refuse: string }): void {
    if (isKeyword(t, ...words)) {
      this.at = next;
      return;
    }
    if (typeof otherwise === 'object') throw refused(otherwise.refuse);
    this.at = otherwise;
    if (otherwise === 'start') this.statement(t);
    else this.expression(t);
  }

  /** A handler condition: SQLSTATE [VALUE] '…', NOT FOUND, SQLWARNING, SQLEXCEPTION, an error number or a condition's name. */
  private condition(t: ProgramToken): void {
    if (isKeyword(t, 'sqlstate')) this.at = 'sqlstate';
    else if (isKeyword(t, 'not')) this.at = 'not found';
    else if (isName(t)) this.at = 'after condition';
    else throw refused('a handler condition this reading does not know');
  }

  private sqlstate(t: ProgramToken): void {
    if (!('quoted' in t) || t.quoted !== 'string') throw refused('SQLSTATE without its string in a handler condition');
    this.at = 'after condition';
  }

  /** Where a statement begins: only here do IF, CASE, LOOP, WHILE, REPEAT, FOR, BEGIN and a label open a block. */
  private statement(t: ProgramToken): void {
    const top = this.stack.at(-1);
    if ('word' in t && t.keyword) {
      switch (t.word) {
        case 'begin':
          this.open('begin', 'statements');
          this.at = 'not atomic';
          return;
        case 'loop':
        case 'repeat':
          this.open(t.word, 'statements');
          this.at = 'start';
          return;
        case 'if':
        case 'case':
        case 'while':
          this.open(t.word, 'condition');
          this.at = 'expression';
          return;
        case 'for':
          this.open('for', 'index');
          this.at = 'expression';
          return;
        case 'end':
          return this.end(top);
        case 'else':
          if (!(top?.block === 'if' || top?.block === 'case') || top.part !== 'statements') throw refused('ELSE outside IF or CASE');
          this.at = 'start';
          return;
        case 'elseif':
        case 'when': {
          const block = t.word === 'elseif' ? 'if' : 'case';
          if (top?.block !== block || top.part !== 'statements') throw refused(`${upper(t.word)} outside ${upper(block)}`);
          top.part = 'condition';
          this.at = 'expression';
          return;
        }
        case 'until':
          if (top?.block === 'repeat' && top.part === 'statements') {
            top.part = 'until';
            this.at = 'expression';
            return;
          }
          break; // a name (UNTIL is not reserved): a label, if `:` follows
        case 'then':
          throw refused('THEN where a statement begins');
        case 'declare':
          this.at = 'declare';
          return;
      }
    }
    if (isName(t)) {
      this.at = 'name';
      return;
    }
    // BEGIN: is no label (BEGIN, END and the reserved words cannot be one), and no statement begins with `:`.
    if (isPunct(t, ':')) throw refused('a `:` where a stored program statement begins');
    this.at = 'expression';
    this.expression(t);
  }

  /** END where a statement begins: it closes BEGIN, or with its kind IF, CASE, LOOP, WHILE or FOR. */
  private end(top: Frame | undefined): void {
    if (!top) throw refused('END with no block open');
    if (top.block === 'begin') {
      this.stack.pop();
      this.at = 'expression'; // an optional label, then `;`
      return;
    }
    if (top.part !== 'statements' || top.block === 'repeat' || top.block === 'case expression') throw refused(`END inside ${upper(top.block)} where it cannot close it`);
    this.endKind = top.block;
    this.at = 'end kind';
  }

  /** Inside a statement or a condition: only a CASE expression opens here; THEN and DO end a condition, END a CASE expression or REPEAT's UNTIL. */
  private expression(t: ProgramToken): void {
    const top = this.stack.at(-1);
    if ('punct' in t) return this.parenthesis(t);
    if (!('word' in t) || !t.keyword) return;
    switch (t.word) {
      case 'case':
        this.open('case expression', 'condition');
        return;
      case 'end':
        if (top?.block === 'case expression') {
          this.stack.pop();
          this.afterCaseExpression = true;
          return;
        }
        // REPEAT's UNTIL ends at END REPEAT; an END not followed by REPEAT is a name there.
        if (top?.block === 'repeat' && top.part === 'until' && this.parens === top.parens) this.at = 'until end';
        return; // a name: END is not reserved, and inside a statement or a condition only a CASE expression ends with it
      case 'then':
        if (top?.block === 'case expression') return;
        if ((top?.block === 'if' || top?.block === 'case') && top.part === 'condition' && this.parens === top.parens) {
          top.part = 'statements';
          this.at = 'start';
          return;
        }
        throw refused('THEN outside IF or CASE');
      case 'do':
        if ((top?.block === 'while' || top?.block === 'for') && top.part === 'condition' && this.parens === top.parens) {
          top.part = 'statements';
          this.at = 'start';
        }
        return; // otherwise a name (DO is not reserved) or the DO statement's own word
      case 'else':
      case 'when':
        if (top?.block === 'case expression' || (t.word === 'when' && top?.block === 'case' && top.part === 'condition')) return;
        throw refused(`${upper(t.word)} inside a statement, outside a CASE`);
      case 'elseif':
        throw refused('ELSEIF inside a statement');
    }
  }

  private open(block: Block, part: Part): void {
    this.stack.push({ block, part, parens: this.parens });
  }

  private parenthesis(t: ProgramToken): void {
    if (isPunct(t, '(')) this.parens++;
    else if (isPunct(t, ')')) {
      if (this.parens === 0) throw refused('a `)` that closes nothing in a stored program');
      this.parens--;
    }
  }
}

/**
 * A word the server's lexer splits where this reading does not: a number run into a word
 * (`1e1end` is the number 1e1, then END; `1.5then` is 1.5, then THEN). `afterDot`: right after
 * a `.`, where digits continue a decimal number. Such words are refused in a stored program.
 */
export function numberRunIntoWord(word: string, afterDot: boolean): boolean {
  if (afterDot) {
    if (/^[0-9]/.test(word)) return !/^[0-9]+(e[0-9]*)?$/i.test(word);
    return /^e[0-9]/i.test(word) && !/^e[0-9]+$/i.test(word);
  }
  return /^[0-9]+e[0-9]/i.test(word) && !/^[0-9]+e[0-9]+$/i.test(word);
}

/** A word that ends in an exponent's `e` (`1e`, or `5e`/`e` after a `.`): a sign then digits continue the number. */
export const exponentOpen = (word: string, afterDot: boolean) => (afterDot ? /^[0-9]*e$/i : /^[0-9]+e$/i).test(word);
