import chalk from 'chalk';
import { describe, expect, it } from 'vitest';
import { plainProgress, ttyProgress } from '../../src/commands/progress-renderers.js';
import type { ServiceEntry } from '../../src/core/manifest.js';

/**
 * The progress renderers print service names from labels and manifests, and messages that hold
 * them: every control character of those is shown as \xNN, only the renderer's own line ends
 * (and, on a terminal, its own colours and redraws) are raw.
 */
const NAME = 'esc\x1b]0;pwned-title\x07\x1b[2J\nFORGED\r\x9b31m';
const ENTRY = { name: NAME, driver: 'redis', status: 'ok', artifact: 'redis.tar.zst', bytes: 10, rawBytes: 20, durationMs: 5, warnings: [`w\x1b[31m${NAME}`] } as unknown as ServiceEntry;

function drive(sink: ReturnType<typeof plainProgress>) {
  sink.serviceStarted(NAME, 'backing up (redis)');
  sink.serviceBytes(NAME, 5);
  sink.info(`${NAME}: computed the fingerprint`);
  sink.warn(`${NAME}: restore failed`);
  sink.serviceDone(ENTRY);
  sink.serviceDone({ ...ENTRY, status: 'failed', error: `boom\x1b[2J${NAME}` } as ServiceEntry);
}

describe('progress renderers escape what they are given', () => {
  it('plain lines: no control character but the line ends', () => {
    const lines: string[] = [];
    drive(plainProgress((l) => lines.push(l)));
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
    expect(lines.filter((l) => /[\x00-\x1f\x7f-\x9f]/.test(l))).toEqual([]);
    expect(lines[0]).toBe('esc\\x1b]0;pwned-title\\x07\\x1b[2J\\x0aFORGED\\x0d\\x9b31m: backing up (redis)');
  });

  it("terminal lines: none of the name's control characters is written raw", () => {
    const level = chalk.level;
    chalk.level = 0;
    let written = '';
    const stream = {
      isTTY: false,
      columns: 80,
      write: (s: string) => {
        written += s;
        return true;
      },
    } as unknown as NodeJS.WriteStream;
    try {
      const sink = ttyProgress(stream);
      drive(sink);
      sink.stop();
    } finally {
      chalk.level = level;
    }
    expect(written).toContain('esc\\x1b]0;pwned-title');
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
    expect(written.split('\n').filter((l) => /[\x00-\x1f\x7f-\x9f]/.test(l))).toEqual([]);
  });
});
