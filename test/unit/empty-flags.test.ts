import { describe, expect, it } from 'vitest';
import { usageErrorOf } from '../support/usage-error.js';
import { refuseEmptyFlags } from '../../src/program.js';

/** `--project "$PROJECT"` with the variable unset must not mean every project on the host. */
const usage = usageErrorOf;

describe('empty flags', () => {
  it.each([
    [{ project: '' }, '--project'],
    [{ project: '  ' }, '--project'],
    [{ dir: '' }, '--dir'],
    [{ prefix: '\t' }, '--prefix'],
    [{ intoProject: '' }, '--into-project'],
    [{ ping: '' }, '--ping'],
    [{ pingFile: ' ' }, '--ping-file'],
  ])('%j is refused naming %s', (flags, flag) => {
    expect(usage(() => refuseEmptyFlags(flags)).message).toContain(flag);
  });
  it('values and absent flags pass', () => expect(() => refuseEmptyFlags({ project: 'bot', dir: './backups', prefix: 'stackvault' })).not.toThrow());
});
