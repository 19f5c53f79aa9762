import { describe, expect, it } from 'vitest';
import { wholeNumber } from '../../src/commands/parse.js';
import { ExitCode, StackvaultError } from '../../src/errors.js';

describe('whole numbers from the command line', () => {
  it.each([
    ['30', 30],
    ['1', 1],
    [' 7 ', 7],
    ['0030', 30],
    [undefined, undefined],
  ])('%j -> %j', (value, n) => expect(wholeNumber(value, 'DAYS')).toBe(n));

  // Number() reads all of these as numbers; a typo must not become a retention period.
  it.each(['0x1E', '1e3', '0b11', '0o17', '30.0', '3.5', '-1', '0', '', ' ', '+5', '30d', 'Infinity', '99999999999999999999'])('%j is a usage error (exit 2)', (value) => {
    let caught: unknown;
    try {
      wholeNumber(value, 'DAYS');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(StackvaultError);
    expect((caught as StackvaultError).exitCode).toBe(ExitCode.usage);
    expect((caught as StackvaultError).message).toBe(`DAYS must be a whole number of at least 1, not '${value}'.`);
  });
});

describe('backup create --parallel', () => {
  // It is a count like the others: Number() would take 0x10 as 16 services at once.
  it.each(['0x10', '1e1', '0', '2.5'])('%j is a usage error (exit 2) before anything is touched', async (value) => {
    const { createCommand } = await import('../../src/commands/create.js');
    const io = { out: process.stdout, json: false, say: () => undefined };
    const run = createCommand.run({ args: [], flags: { parallel: value } as Parameters<typeof createCommand.run>[0]['flags'], io });
    await expect(run).rejects.toMatchObject({ exitCode: ExitCode.usage, message: `--parallel must be a whole number of at least 1, not '${value}'.` });
  });
});
