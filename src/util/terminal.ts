/**
 * Text from a manifest, a directory name or a log line is input: a crafted backup can hold
 * escape sequences that clear the screen, retitle the terminal, draw a hyperlink or rewrite the
 * line before it. Everything such text prints goes through `shown`, which leaves no control
 * character raw: C0 and C1 controls become `\xNN`, and the invisible Unicode marks that reorder
 * or hide text (bidi overrides and isolates, line and paragraph separators) become `\uNNNN`.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL = /[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

export function shown(text: unknown): string {
  return String(text).replace(CONTROL, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
