#!/usr/bin/env -S node --max-semi-space-size=1
// The Node flags above are bot.sh's too (a unit test keeps them equal). --max-semi-space-size=1:
// V8's young generation stays at 3 MB instead of growing to 48 MB, and every 64 KB chunk that a
// pipeline let go is freed at the next scavenge instead of piling up as garbage. Measured on the
// benchmark's 1 GB stack: peak RSS of create 225-240 -> 170-185 MB, restore 364 -> 234 MB, for
// the same CPU time (README: Performance, "Memory and verify").
import { CommanderError } from 'commander';
import { buildProgram } from './program.js';
import { ExitCode, StackvaultError, errorMessage } from './errors.js';
import { exitFailingIfStalled, installInterruptHandlers } from './util/interrupt.js';
import { shown } from './util/terminal.js';

/** The only place that exits the process: everything else throws typed errors. */
async function main(argv: string[]): Promise<number> {
  installInterruptHandlers();
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version "errors" are successes; everything else commander rejects is usage.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return ExitCode.ok;
      return ExitCode.usage;
    }
    if (err instanceof StackvaultError) {
      // Messages quote ids, names and reasons from manifests and directories: no control character goes out raw.
      process.stderr.write(`stackvault: ${shown(err.message)}\n`);
      if (err.hint) process.stderr.write(`  hint: ${shown(err.hint)}\n`);
      return err.exitCode;
    }
    process.stderr.write(`stackvault: unexpected error: ${shown(errorMessage(err))}\n`);
    if (process.env.STACKVAULT_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
    return ExitCode.failure;
  }
}

let finished = false;
exitFailingIfStalled(() => finished);
main(process.argv).then((code) => {
  finished = true;
  process.exit(code);
});
