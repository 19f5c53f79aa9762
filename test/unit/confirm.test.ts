import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { confirm } from '../../src/commands/confirm.js';

/** A terminal stand-in: what the user types goes into `input`. */
function terminal() {
  const input = Object.assign(new PassThrough(), { isTTY: true });
  const output = Object.assign(new PassThrough(), { isTTY: true });
  return { input, output };
}

describe('confirm', () => {
  it('takes y as yes and anything else as no', async () => {
    const yes = terminal();
    const asked = confirm('Go?', undefined, 'Going', yes);
    yes.input.write('y\n');
    expect(await asked).toBe(true);
    const no = terminal();
    const refused = confirm('Go?', undefined, 'Going', no);
    no.input.write('\n');
    expect(await refused).toBe(false);
  });

  it('takes a terminal closed before the answer (Ctrl-D) as no, instead of never answering', async () => {
    const t = terminal();
    const asked = confirm('Go?', undefined, 'Going', t);
    t.input.end();
    expect(await asked).toBe(false);
  });
});
