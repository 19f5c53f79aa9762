import { writeSync } from 'node:fs';
import { ExitCode } from '../errors.js';
import { shown } from './terminal.js';

/**
 * Ctrl-C, SIGTERM and SIGHUP do not kill the process outright: they abort the shared signal so
 * that every `finally` block runs (containers are started again, restores put back, temporary
 * directories removed), then the entry point exits with 130.
 *
 * SIGHUP is what a closed terminal or a dropped ssh session sends: left to Node's default it
 * ended the process on the spot, like SIGKILL, with a store stopped for its copy or half
 * replayed by a restore that nobody then put back.
 *
 * A second signal while nothing is at stake exits at once. While something is (a container
 * stopped or paused by this run, a store being restored or put back), the reflexive second
 * Ctrl-C used to exit at once too and leave it so without a word: it now says what is being
 * finished, and only a third exits, naming what is left and how to finish it by hand.
 */
const controller = new AbortController();
export const interruptSignal: AbortSignal = controller.signal;

/** Work an exit now would leave half done: what is being done, and what is left if it is not. */
interface Stake {
  /** e.g. "starting db again". */
  doing: string;
  /** One sentence: what it is left as, and the command that finishes it. */
  left: string;
}

const stakes = new Set<Stake>();

/** A registered stake: released once its work is finished; `leaves` says what an exit would leave now. */
export interface StakeHandle {
  release(): void;
  leaves(left: string): void;
}

/**
 * Registers work an immediate exit would leave half done (a container stopped or paused, a
 * store being restored); returns what tells how it stands and unregisters it once finished.
 */
export function holdStake(doing: string, left: string): StakeHandle {
  const stake = { doing, left };
  stakes.add(stake);
  return {
    release: () => {
      stakes.delete(stake);
    },
    leaves: (now) => {
      stake.left = now;
    },
  };
}

/** What a forced exit now would leave half done (for tests and messages). */
export function currentStakes(): Array<{ doing: string; left: string }> {
  return [...stakes].map((s) => ({ ...s }));
}

/**
 * Writes to fd 2 directly, ignoring failures: after a hangup the terminal is gone (EIO), and a
 * message that cannot be shown must not stop the cleanup it announces.
 */
function say(text: string): void {
  try {
    writeSync(2, text);
  } catch {
    // nobody to tell
  }
}

/**
 * A write to a terminal that hung up (EIO) or a pipe whose reader is gone (EPIPE, e.g. a cron
 * job's mail pipe) emits 'error' on the stream; with no listener that was an uncaught
 * exception, which ended the run in the middle of its cleanup. Output nobody can read is
 * dropped instead, and the run goes on to start its containers again.
 */
function keepGoingWhenOutputIsGone(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EIO' || err.code === 'EPIPE' || err.code === 'ENXIO' || err.code === 'ECONNRESET') return;
      throw err;
    });
  }
}

/** Run, synchronously, just before a forced exit: the last word of a run that cannot unwind. */
const lastWords = new Set<(left: string[]) => void>();

/** Registers `write` to be called with what is left (as the user is told) if the run is forced to exit. */
export function onForcedExit(write: (left: string[]) => void): () => void {
  lastWords.add(write);
  return () => lastWords.delete(write);
}

export function installInterruptHandlers(): void {
  keepGoingWhenOutputIsGone();
  let received = 0;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      received++;
      if (received === 1) {
        say(`stackvault: ${sig} received${sig === 'SIGHUP' ? ' (the terminal was closed?)' : ''}, cleaning up (containers are started again)...\n`);
        controller.abort(new Error(`interrupted by ${sig}`));
        return;
      }
      const pending = [...stakes];
      if (received === 2 && pending.length > 0) {
        // Service names come from labels and manifests: escaped, as everywhere else.
        say(
          `stackvault: still ${pending.map((s) => shown(s.doing)).join('; ')}. Interrupt once more to exit now and leave ${pending.length > 1 ? 'them' : 'it'} as ${pending.length > 1 ? 'they are' : 'it is'}.\n`,
        );
        return;
      }
      exitLeaving(ExitCode.interrupted, 'stackvault: exiting now.', 'stackvault: second interrupt, exiting now.');
    });
  }
}

/** Says what is left half done, gives every last word its chance, and exits with `code`. */
function exitLeaving(code: number, headline: string, ifNothingLeft: string): never {
  const pending = [...stakes];
  say(pending.length ? `${headline} Left as it is:\n${pending.map((s) => `  ${shown(s.left)}\n`).join('')}` : `${ifNothingLeft}\n`);
  for (const write of lastWords) {
    try {
      write(pending.map((s) => s.left));
    } catch {
      // the exit must not wait for, or fail on, its last word
    }
  }
  process.exit(code);
}

/**
 * Node exits with 0 once nothing is left to wait for, even while the run still awaits a promise
 * that can never settle (a stream nobody ends, a callback never called): a backup that stopped
 * half way then looked like a success to cron and to `update`. Such a run exits 1 instead,
 * saying so and naming what it leaves half done.
 */
export function exitFailingIfStalled(finished: () => boolean): void {
  process.on('beforeExit', () => {
    if (finished()) return;
    const headline = 'stackvault: the run stopped before it finished: it waited for something that can never come (a defect of stackvault: please report it). Nothing it was doing is done.';
    exitLeaving(ExitCode.failure, headline, headline);
  });
}
