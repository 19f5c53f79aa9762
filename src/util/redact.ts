/**
 * Hiding a container's secrets (see core/redact.ts for which values those are) in text that
 * came from outside stackvault: what a process printed, an error the Docker engine raised, a
 * service's answer.
 *
 * Why only there. stackvault's own words (paths, service and container names, counts) never
 * hold a secret: the drivers take a secret into an exec's environment (or a request's header)
 * only, never into argv, a file or a message. A secret reaches a message only where a program prints what it was given
 * or what it holds (psql quoting a statement, a client echoing a connection string), so that is
 * where it is hidden. Hiding it in our own words too did harm: with NEO4J_AUTH=neo4j/data every
 * `/data` in every message became `/***`, which made paths unreadable and told every reader the
 * password. What is read from a store as data (names of databases, tables and keys, a line of
 * a dump that a refusal quotes) is not hidden either: the backup holds it anyway, and a name
 * equal to a password is a coincidence that `***` in its place would only point at. (Secrets of
 * 12 characters or more are also hidden in our own words, as a net: core/redact.ts.)
 *
 * How, in that foreign text:
 * - A secret counts only as a whole token: not run into a letter, digit or `_` on a side where
 *   its own first or last character is one. `data` is hidden in `password "data"` and in
 *   `u:data@h`, not in `metadata`, where `meta***` would point at it again. An escape just
 *   before it (`%3D` of a URL-encoded `=`, a `\n`) is a boundary: `password%3Ddata`.
 * - An occurrence inside text stackvault itself gave the program (its argv, the path it asked
 *   for) that is longer than the secret is that text echoed back, not the secret (our argv
 *   never holds one): `find: '/data/x': No such file` after `find /data` stays as it is.
 * - Longer secrets first, so one that holds another (`neo4j/data` and `data`) goes whole.
 * - A secret of 4 characters or more is replaced by `***` where it stands.
 * - A short one (1-3 characters) is not: such a token turns up by chance in most messages
 *   (`exit 1`, `a`, `ab`), and a `***` where a common word stood tells the reader the password
 *   as surely as printing it. A line of foreign text holding one as a token is withheld whole,
 *   which says only that the password was somewhere in that line.
 */

export const REDACTED = '***';
/** What stands for a line of foreign text that holds a short secret. */
export const WITHHELD = "(line not shown: it holds the container's short password as a word)";
/** Secrets shorter than this are never replaced in place (see above). */
export const SHORT_SECRET = 4;

const WORD = /[\p{L}\p{N}_]/u;
const ESCAPE_BEFORE = /(?:%[0-9A-Fa-f]{2}|\\[nrtfvb0])$/;

/** The character (code point) that ends just before `at`, or ''. */
function charBefore(text: string, at: number): string {
  if (at <= 0) return '';
  const low = text.charCodeAt(at - 1);
  if (low >= 0xdc00 && low <= 0xdfff && at >= 2) return text.slice(at - 2, at);
  return text[at - 1]!;
}

/** The character (code point) that starts at `at`, or ''. */
const charAt = (text: string, at: number): string => (at >= text.length ? '' : String.fromCodePoint(text.codePointAt(at)!));

/** Whether text[at, end) stands as a whole token (see above). */
function standsAlone(text: string, at: number, end: number): boolean {
  const secret = text.slice(at, end);
  if (WORD.test(charAt(secret, 0))) {
    const before = charBefore(text, at);
    if (before && WORD.test(before) && !ESCAPE_BEFORE.test(text.slice(Math.max(0, at - 3), at))) return false;
  }
  if (WORD.test(charBefore(secret, secret.length))) {
    const after = charAt(text, end);
    if (after && WORD.test(after)) return false;
  }
  return true;
}

/** Where each given text (argv, a path) occurs in `text`: [start, end). */
function spansOf(text: string, spare: readonly string[]): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  for (const s of new Set(spare)) {
    if (s.length < 2) continue;
    for (let at = text.indexOf(s); at >= 0; at = text.indexOf(s, at + 1)) spans.push([at, at + s.length]);
  }
  return spans;
}

/**
 * `text` (foreign: a process's output, an engine's error, a service's answer) with `secrets`
 * hidden by the rules above. `spare`: what stackvault itself gave the program (argv, paths).
 */
export function redactForeign(text: string, secrets: readonly string[], spare: readonly string[] = []): string {
  if (!text) return text;
  const list = [...new Set(secrets)].filter((s) => s.length > 0 && text.includes(s)).sort((a, b) => b.length - a.length);
  if (list.length === 0) return text;
  const spans = spansOf(text, spare);
  const hidden = new Uint8Array(text.length);
  const hits: Array<[number, number]> = [];
  const shortAt: number[] = [];
  for (const s of list) {
    for (let at = text.indexOf(s); at >= 0; at = text.indexOf(s, at + 1)) {
      const end = at + s.length;
      if (!standsAlone(text, at, end)) continue;
      if (spans.some(([a, b]) => a <= at && end <= b && b - a > s.length)) continue;
      if (hidden.subarray(at, end).some((h) => h === 1)) continue; // part of a longer secret, hidden already
      if (s.length < SHORT_SECRET) {
        shortAt.push(at);
        continue;
      }
      hidden.fill(1, at, end);
      hits.push([at, end]);
    }
  }
  if (hits.length === 0 && shortAt.length === 0) return text;
  hits.sort((x, y) => x[0] - y[0]);
  // Line by line: a line with a short secret in it is withheld whole, the others keep their
  // text with `***`. A secret can span lines (a key in PEM form): what of it follows is skipped.
  let out = '';
  let skip = 0;
  for (let start = 0; ; ) {
    const newline = text.indexOf('\n', start);
    const end = newline < 0 ? text.length : newline;
    const inLine = hits.filter(([at]) => at >= start && at < end);
    if (shortAt.some((at) => at >= start && at < end)) out += WITHHELD;
    else if (end > skip) {
      let from = Math.max(start, skip);
      for (const [at, stop] of inLine) {
        out += text.slice(from, at) + REDACTED;
        from = stop;
      }
      out += text.slice(Math.min(from, end), end);
    }
    for (const [, stop] of inLine) skip = Math.max(skip, stop);
    if (newline < 0) return out;
    if (newline >= skip) out += '\n';
    start = newline + 1;
  }
}

const RAW = Symbol('message before secrets were hidden');

/**
 * `err`, whose message has secrets hidden, keeping the text as the program said it for code
 * that must read it (`rawMessage`: "unable to freeze", "save already in progress"); a hidden
 * word must not change what stackvault does. Never shown: not enumerable, not in JSON.
 */
export function keepRawMessage<E extends Error>(err: E, raw: string): E {
  Object.defineProperty(err, RAW, { value: raw, enumerable: false, configurable: true });
  return err;
}

/** What a failure said before any secret was hidden in it: for decisions, never for output. */
export function rawMessage(err: unknown): string {
  if (err instanceof Error) return (err as Error & { [RAW]?: string })[RAW] ?? err.message;
  return String(err);
}
