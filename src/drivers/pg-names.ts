import { isUtf8 } from 'node:buffer';

/**
 * PostgreSQL names as stackvault carries them: as bytes, held in strings through latin1 (one
 * character per byte), the way the dump's own bytes are read. The server keeps a name as the
 * bytes it was given in the encoding of the database it was given in; a SQL_ASCII or LATIN1
 * database's names need not be UTF-8, and the names of databases and roles are shared by every
 * database of the cluster whatever its encoding. So a name is never decoded on its way from the
 * server to a statement or a connection and back: the server sends it as hex, and it goes back
 * as the same bytes (on psql's stdin, or percent-encoded in a connection URI).
 */

/**
 * SQL for the bytes of a text or name expression, as hex. `textsend` gives the text in the
 * client encoding; in SQL_ASCII (RAW_NAMES_ENV) the server converts and checks nothing, so these
 * are the stored bytes. Hex has no separator, line break or byte psql would print otherwise.
 */
export const hexOf = (expr: string) => `encode(textsend((${expr})::text), 'hex')`;

/** The environment of a psql that reads names (hexOf) or sends them as bytes: client encoding SQL_ASCII. */
export const RAW_NAMES_ENV = { PGCLIENTENCODING: 'SQL_ASCII' } as const;

/** A name the server sent as hexOf, as its bytes through latin1. */
export const fromHex = (hex: string) => Buffer.from(hex, 'hex').toString('latin1');

/**
 * The `-d` of psql or pg_dump for a database: a URI whose path is the name's bytes, every byte
 * but letters, digits and `_.~-` percent-encoded. A command line is text (Docker carries it as
 * JSON, which replaces bytes that are not UTF-8), and a plain name holding `=` or starting with
 * `postgresql://` is read as a connection string, so a database named `dbname=app` would be
 * `app`. libpq decodes the path to the bytes; user and host come from the other options as before.
 */
export function databaseArg(name: string): string {
  let path = '';
  for (const byte of Buffer.from(name, 'latin1')) {
    const c = String.fromCharCode(byte);
    path += /[A-Za-z0-9_.~-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return `postgresql:///${path}`;
}

/** A name given as text (an environment variable, a manifest written by an earlier version), as the bytes the server holds for it. */
export const nameBytes = (text: string) => Buffer.from(text, 'utf8').toString('latin1');

/** Whether a name's bytes are UTF-8 (then they are its text as any tool shows it). */
export const isUtf8Name = (name: string) => isUtf8(Buffer.from(name, 'latin1'));

/**
 * A name's bytes as text that says them all: UTF-8 where they are, `\xNN` for each byte that is
 * not, `\u00NN` for a control character (which a terminal would show as `\xNN` too, see
 * util/terminal.ts) and `\\` for a backslash, so two names never read the same (a replacement
 * character, as a plain decode gives, stands for any byte) and `unescapedName` gives the bytes back.
 */
export function escapedName(name: string): string {
  const bytes = Buffer.from(name, 'latin1');
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const lead = bytes[i]!;
    const length = lead < 0x80 ? 1 : lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
    const sequence = length ? bytes.subarray(i, i + length) : undefined;
    if (sequence && sequence.length === length && isUtf8(sequence)) {
      const char = sequence.toString('utf8');
      const code = char.charCodeAt(0);
      out += lead === 0x5c ? '\\\\' : code < 0x20 || (code >= 0x7f && code <= 0x9f) ? `\\u${code.toString(16).padStart(4, '0')}` : char;
      i += length;
    } else {
      out += `\\x${lead.toString(16).padStart(2, '0')}`;
      i++;
    }
  }
  return out;
}

/** The bytes an escapedName stands for (through latin1); a backslash that starts neither escape is itself. */
export const unescapedName = (text: string) =>
  text
    .split(/(\\\\|\\x[0-9a-fA-F]{2}|\\u00[0-9a-fA-F]{2})/)
    .map((part, i) =>
      i % 2 === 0
        ? nameBytes(part)
        : part === '\\\\'
          ? '\\'
          : part[1] === 'x'
            ? String.fromCharCode(Number.parseInt(part.slice(2), 16))
            : nameBytes(String.fromCharCode(Number.parseInt(part.slice(2), 16))),
    )
    .join('');

/** A name for messages and output: escapedName, never replacement characters, which would make two names one. */
export const shownName = escapedName;
