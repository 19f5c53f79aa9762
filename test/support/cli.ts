import { execa, type ResultPromise } from 'execa';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Runs `./bot.sh ARGS` like a user would; never throws on a non-zero exit. */
export function bot(args: string[], options: { env?: Record<string, string>; input?: string; timeout?: number } = {}): ResultPromise {
  return execa('./bot.sh', args, {
    cwd: REPO_ROOT,
    env: { ...options.env },
    input: options.input,
    reject: false,
    timeout: options.timeout ?? 240_000,
    stripFinalNewline: false,
    forceKillAfterDelay: false, // signal tests need the signal they send, not a SIGKILL 5 s later
  });
}
