import { createInterface } from 'node:readline/promises';
import { ExitCode, StackvaultError } from '../errors.js';

/**
 * Asks a yes/no question on the terminal. `--yes` answers for the user; with no terminal and
 * no --yes the answer is a refusal (exit 9), so scripts never change data by accident.
 */
export async function confirm(question: string, yes: boolean | undefined, what: string): Promise<boolean> {
  if (yes) return true;
  if (!(process.stdin.isTTY && process.stderr.isTTY)) {
    throw new StackvaultError(`${what} needs confirmation and there is no terminal to ask on; nothing was changed.`, ExitCode.aborted, 'Run it in a terminal, or add --yes.');
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}
