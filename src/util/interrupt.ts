import { ExitCode } from '../errors.js';

/**
 * Ctrl-C and SIGTERM do not kill the process outright: they abort the shared signal so that
 * every `finally` block runs (containers are started again, temporary directories removed),
 * then the entry point exits with 130. A second signal exits at once.
 */
const controller = new AbortController();
export const interruptSignal: AbortSignal = controller.signal;

export function installInterruptHandlers(): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (controller.signal.aborted) {
        process.stderr.write('stackvault: second interrupt, exiting now.\n');
        process.exit(ExitCode.interrupted);
      }
      process.stderr.write(`stackvault: ${sig} received, cleaning up (containers are started again)...\n`);
      controller.abort(new Error(`interrupted by ${sig}`));
    });
  }
}
