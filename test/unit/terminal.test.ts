import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appendOperation, readOperations } from '../../src/core/oplog.js';
import { shown } from '../../src/util/terminal.js';

/** No C0 or C1 control character, nor an invisible reordering mark, may reach a terminal raw. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const RAW = /[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

describe('text from manifests, shown on a terminal', () => {
  it.each([
    ['plain text stays as it is', 'stackvault_backup_20261121_020000 "before migration" ✅ é', 'stackvault_backup_20261121_020000 "before migration" ✅ é'],
    ['a screen clear and a title', 'evil\x1b[2J\x1b]0;pwned\x07\x1b[31mRED', 'evil\\x1b[2J\\x1b]0;pwned\\x07\\x1b[31mRED'],
    ['an OSC-8 hyperlink', '\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\', '\\x1b]8;;https://evil.example\\x1b\\click\\x1b]8;;\\x1b\\'],
    ['a carriage return and erase-line over a service name', 'app\r\x1b[Kroot', 'app\\x0d\\x1b[Kroot'],
    ['cursor up', 'ok\x1b[1A\x1b[2K', 'ok\\x1b[1A\\x1b[2K'],
    ['line breaks and tabs', 'a\nb\tc', 'a\\x0ab\\x09c'],
    ['a C1 CSI and DEL', 'x\u009b31my\x7f', 'x\\x9b31my\\x7f'],
    ['a NUL', 'a\x00b', 'a\\x00b'],
    ['a right-to-left override', 'gpj.\u202eexe', 'gpj.\\u202eexe'],
    ['a line separator', 'a\u2028b', 'a\\u2028b'],
  ])('%s', (_what, input, output) => {
    expect(shown(input)).toBe(output);
    expect(shown(input)).not.toMatch(RAW);
    expect(shown(shown(input))).toBe(shown(input)); // escaping twice changes nothing
  });

  it('any character from 0 to 0x3000 comes out without a raw control', () => {
    const all = Array.from({ length: 0x3000 }, (_, i) => String.fromCharCode(i)).join('');
    expect(shown(all)).not.toMatch(RAW);
  });

  it('the operations log writes no control character raw into its file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'svt-oplog-'));
    await appendOperation(dir, {
      at: '2026-11-21T02:00:00.000Z',
      user: 'root',
      command: 'backup delete x',
      backupId: 'evil\x1b[2J\x1b]0;pwned\x07',
      result: 'error: app\r\x1b[Kroot\nsecond line',
      durationMs: 5,
    });
    const text = await readFile(join(dir, 'operations.log'), 'utf8');
    expect(text.split('\n')).toHaveLength(2); // one line, and the final newline
    expect(text.replace(/[\t\n]/g, '')).not.toMatch(RAW);
    const [op] = await readOperations(dir);
    expect(op).toMatchObject({ backupId: 'evil\\x1b[2J\\x1b]0;pwned\\x07', result: 'error: app \\x1b[Kroot second line' });
  });
});
