import { describe, expect, it } from 'vitest';
import { ExitCode, StackvaultError } from '../../src/errors.js';
import { refuseEmptyFlags } from '../../src/program.js';

/** `--project "$PROJECT"` with the variable unset must not mean every project on the host. */
const usage = (f: () => unknown): StackvaultError => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(StackvaultError);
    expect((err as StackvaultError).exitCode).toBe(ExitCode.usage);
    return err as StackvaultError;
  }
  throw new Error('expected a usage error');
};

describe('empty flags', () => {
  it.each([
    [{ project: '' }, '--project'],
    [{ project: '  ' }, '--project'],
    [{ dir: '' }, '--dir'],
    [{ prefix: '\t' }, '--prefix'],
    [{ intoProject: '' }, '--into-project'],
  ])('%j is refused naming %s', (flags, flag) => {
    expect(usage(() => refuseEmptyFlags(flags)).message).toContain(flag);
  });
  it('values and absent flags pass', () => expect(() => refuseEmptyFlags({ project: 'bot', dir: './backups', prefix: 'stackvault' })).not.toThrow());
});
