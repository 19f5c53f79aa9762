import { type ChildProcess, fork } from 'node:child_process';

/** The children still running, killed when this process exits (a second Ctrl-C exits at once). */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

export interface ChildCallOptions {
  /** Killed (SIGKILL) after this long; the call then rejects with `timeoutMessage`. */
  timeoutMs: number;
  /** The error's message when the deadline kills the child. */
  timeoutMessage: string;
  /** Node flags for the child (e.g. a heap size). */
  execArgv?: string[];
  /** Killed when this aborts (the run's signal: Ctrl-C, SIGTERM); the call then rejects with its reason. */
  signal?: AbortSignal;
}

/**
 * Calls `fn` exported by the module at `moduleUrl` (a file of dist/) with `args` in a node
 * process of its own and resolves with what it returns (sent as JSON). Unlike a worker thread,
 * a child can be killed while it is inside native code that never returns (a SQLite query over
 * a hostile schema): at a deadline, on Ctrl-C or SIGTERM, and when this process exits; and the
 * child kills itself when this process is gone (child-call-host.ts). Costs a node start and a
 * thread in it (40-60 ms) and the child's own memory for the length of the call.
 */
export function inChild<R>(moduleUrl: URL, fn: string, args: unknown[], options: ChildCallOptions): Promise<R> {
  const fromSources = import.meta.url.endsWith('.ts');
  // From dist/ the compiled host; from the sources (tests) the TypeScript one, which Node runs with its types removed.
  const host = new URL(fromSources ? './child-call-host.ts' : './child-call-host.js', import.meta.url);
  const execArgv = [...(fromSources ? ['--experimental-transform-types', '--no-warnings'] : []), ...(options.execArgv ?? [])];
  if (options.signal?.aborted) return Promise.reject(reasonOf(options.signal));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const child of running) child.kill('SIGKILL');
    });
  }
  return new Promise<R>((resolve, reject) => {
    const child = fork(host, [], { execArgv, stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' });
    running.add(child);
    let outcome: { result?: R; error?: string } | undefined;
    let killedFor: string | undefined;
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 4000) stderr += d;
    });
    const kill = (why: string) => {
      if (killedFor === undefined) killedFor = why;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill(options.timeoutMessage), options.timeoutMs);
    const onAbort = () => kill(reasonOf(options.signal!).message);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let settled = false;
    const settle = (done: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      running.delete(child);
      options.signal?.removeEventListener('abort', onAbort);
      done();
    };
    child.on('message', (m: { result?: R; error?: string }) => {
      outcome = m;
    });
    // Every error, not only the first: a child that could not be started (its node binary
    // replaced under it by an update, EAGAIN) emits one, and a message sent to it another; an
    // unheard one ended the whole run with a stack trace, in the middle of a restore.
    child.on('error', (err) => {
      outcome ??= { error: err.message };
      // Node may emit no 'exit' for a child that never started.
      if (child.pid === undefined) settle(() => reject(new Error(`a child process could not be started (${err.message})`)));
    });
    child.once('exit', (code, signal) =>
      settle(() => {
        if (killedFor !== undefined) return reject(new Error(killedFor));
        if (outcome?.error !== undefined) return reject(new Error(outcome.error));
        if (outcome) return resolve(outcome.result as R);
        const last = stderr.trim().split('\n').at(-1);
        reject(new Error(`the child process exited with ${signal ?? `code ${code}`} before answering${last ? ` (${last})` : ''}`));
      }),
    );
    // With a callback, a failed send is told there instead of as one more 'error' event.
    child.send({ module: moduleUrl.href, fn, args, timeoutMs: options.timeoutMs }, (err) => {
      if (err) outcome ??= { error: `the child process could not be given its call (${err.message})` };
    });
  });
}

const reasonOf = (signal: AbortSignal) => (signal.reason instanceof Error ? signal.reason : new Error('interrupted'));
