import { createInterface } from 'node:readline/promises';
import { ExitCode, StackvaultError } from '../errors.js';

/** Where the question is asked: the terminal, or in tests a stand-in for it. */
export interface Terminal {
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  output: NodeJS.WritableStream & { isTTY?: boolean };
}

/**
 * Asks a yes/no question on the terminal. `--yes` answers for the user; with no terminal and
 * no --yes the answer is a refusal (exit 9), so scripts never change data by accident. A
 * terminal closed before the answer (Ctrl-D) is a refusal too: readline never settles the
 * question then, and the run, with nothing left to wait for, would end as a stalled one.
 */
export async function confirm(question: string, yes: boolean | undefined, what: string, terminal: Terminal = { input: process.stdin, output: process.stderr }): Promise<boolean> {
  if (yes) return true;
  if (!(terminal.input.isTTY && terminal.output.isTTY)) {
    throw new StackvaultError(`${what} needs confirmation and there is no terminal to ask on; nothing was changed.`, ExitCode.aborted, 'Run it in a terminal, or add --yes.');
  }
  const rl = createInterface({ input: terminal.input, output: terminal.output });
  const closed = new Promise<string>((resolve) => rl.once('close', () => resolve('')));
  try {
    return /^y(es)?$/i.test((await Promise.race([rl.question(`${question} [y/N] `), closed])).trim());
  } finally {
    rl.close();
  }
}
