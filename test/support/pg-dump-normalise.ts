/**
 * Puts a plain-format `pg_dump`/`pg_dumpall` script into a form in which two dumps of the same
 * data compare equal, whatever dump/restore legitimately changes. Written for tests: it is not
 * an SQL parser and relies on the layout pg_dump writes.
 *
 * What it changes, and why:
 *  - `\restrict KEY` / `\unrestrict KEY` lines go: pg_dump 17.6+ writes a new random KEY on
 *    every run.
 *  - comment lines carrying a timestamp (`-- Started on 2026-...`, verbose mode) go.
 *  - COPY data lines are sorted (byte order): a table's physical row order is not part of its
 *    data, and a restore may lay rows out differently (PostgreSQL documents no order for COPY
 *    TO of a table).
 *  - For a table created with `INHERITS (...)`, the lines between `CREATE TABLE name (` and `)`
 *    are sorted (trailing commas dropped), and its COPY blocks get their columns in name order,
 *    each data line's fields moved with them. A plain dump creates such a child with its own
 *    columns and lets the parents' columns be merged in front, so after a restore the child's
 *    column order can differ from the original's (a documented property of pg_dump; only
 *    binary upgrade keeps it). Other tables keep their column order: there it must survive.
 *
 * Input and output are strings whose characters are bytes (decode dumps as 'latin1'), so any
 * encoding, and any invalid byte, survives and compares exactly.
 */
export function normalisePgDump(dump: string): string {
  const lines = dump.split('\n');
  const out: string[] = [];
  let inherited = new Set<string>(); // tables created with INHERITS in the current database
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\\(un)?restrict /.test(line) || TIMESTAMP_COMMENT.test(line)) continue;
    if (line.startsWith('\\connect ')) inherited = new Set();

    const create = /^CREATE (?:UNLOGGED |FOREIGN )?TABLE (.+) \($/.exec(line);
    if (create) {
      let end = i + 1;
      while (end < lines.length && !/^\)(;|$)/.test(lines[end]!)) end++;
      const body = lines.slice(i + 1, end);
      if (lines[end] === ')' && lines[end + 1]?.startsWith('INHERITS (')) {
        inherited.add(create[1]!);
        out.push(line, ...body.map((l) => l.replace(/,$/, '')).sort(byBytes));
      } else {
        out.push(line, ...body);
      }
      i = end - 1;
      continue;
    }

    const copy = parseCopyHeader(line);
    if (copy) {
      let end = i + 1;
      while (end < lines.length && lines[end] !== '\\.') end++;
      let rows = lines.slice(i + 1, end);
      let header = line;
      if (inherited.has(copy.table) && copy.columns.length > 1) {
        const order = copy.columns.map((name, index) => ({ name, index })).sort((a, b) => byBytes(a.name, b.name));
        header = `COPY ${copy.table} (${order.map((c) => c.name).join(', ')}) FROM stdin;`;
        rows = rows.map((r) => {
          const fields = r.split('\t'); // COPY text format escapes tabs in values as \t
          return order.map((c) => fields[c.index]).join('\t');
        });
      }
      out.push(header, ...rows.sort(byBytes));
      i = end - 1;
      continue;
    }
    out.push(line);
  }
  return out.join('\n');
}

const TIMESTAMP_COMMENT = /^--.*\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}/;

const byBytes = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** `COPY table (a, "b c") FROM stdin;` → table as written and the column names as written. */
export function parseCopyHeader(line: string): { table: string; columns: string[] } | undefined {
  if (!line.startsWith('COPY ') || !line.endsWith(' FROM stdin;')) return undefined;
  const inner = line.slice('COPY '.length, -' FROM stdin;'.length);
  const names = splitIdentifiers(inner, ' ');
  const table = names[0];
  if (!table) return undefined;
  const rest = inner.slice(table.length).trim();
  if (rest === '') return { table, columns: [] };
  if (!rest.startsWith('(') || !rest.endsWith(')')) return undefined;
  return { table, columns: splitIdentifiers(rest.slice(1, -1), ',').map((c) => c.trim()) };
}

/** Splits at `sep` outside double quotes ("" inside quotes is a quote). */
function splitIdentifiers(text: string, sep: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    if (ch === sep && !quoted) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts;
}

/**
 * Lines in one text and not the other (as multisets), at most `limit` of each: a readable
 * difference for dumps too large for a full diff.
 */
export function lineDifferences(before: string, after: string, limit = 20): { onlyBefore: string[]; onlyAfter: string[] } {
  const count = new Map<string, number>();
  for (const l of before.split('\n')) count.set(l, (count.get(l) ?? 0) + 1);
  for (const l of after.split('\n')) count.set(l, (count.get(l) ?? 0) - 1);
  const onlyBefore: string[] = [];
  const onlyAfter: string[] = [];
  for (const [l, n] of count) {
    for (let k = 0; k < Math.abs(n); k++) (n > 0 ? onlyBefore : onlyAfter).push(l);
  }
  return { onlyBefore: onlyBefore.slice(0, limit), onlyAfter: onlyAfter.slice(0, limit) };
}
