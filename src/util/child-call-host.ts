import { registerHooks } from 'node:module';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

/**
 * The child side of inChild. Its main thread is a watchdog: the call runs on a worker thread,
 * so that when the parent is gone (killed outright: SIGKILL, the OOM killer) or the deadline
 * has passed, this process still kills itself, even while the worker is inside native code
 * that never returns. The worker runs one exported function and posts its result or its
 * error's message; the main thread sends it to the parent and exits.
 */
type Call = { module: string; fn: string; args: unknown[]; timeoutMs: number };
type Reply = { result?: unknown; error?: string };

if (import.meta.url.endsWith('.ts')) {
  // Run from the sources (tests): a relative or file: import of x.js names x.ts.
  registerHooks({
    resolve(specifier, context, next) {
      try {
        return next(specifier, context);
      } catch (err) {
        if (/^(\.|file:)/.test(specifier) && specifier.endsWith('.js')) return next(`${specifier.slice(0, -3)}.ts`, context);
        throw err;
      }
    },
  });
}

const killSelf = () => process.kill(process.pid, 'SIGKILL');

if (isMainThread) {
  process.once('disconnect', killSelf);
  process.once('message', (call: Call) => {
    // The parent kills this process at the deadline; this is for when the parent cannot.
    setTimeout(killSelf, call.timeoutMs + 5000).unref();
    const worker = new Worker(new URL(import.meta.url), { workerData: call });
    let answered = false;
    const answer = (reply: Reply) => {
      if (answered) return;
      answered = true;
      process.off('disconnect', killSelf);
      // Once the parent has it, the channel closes and the process ends by itself (the timer is unref'd).
      process.send!(reply, () => process.disconnect());
    };
    worker.once('message', answer);
    worker.once('error', (err) => answer({ error: err.message }));
    worker.once('exit', (code) => answer({ error: `the worker exited with code ${code} before answering` }));
  });
} else {
  const { module, fn, args } = workerData as Call;
  let reply: Reply;
  try {
    const f = ((await import(module)) as Record<string, (...a: unknown[]) => unknown>)[fn];
    if (typeof f !== 'function') throw new Error(`${module} exports no function ${fn}`);
    reply = { result: await f(...args) };
  } catch (err) {
    reply = { error: err instanceof Error ? err.message : String(err) };
  }
  parentPort!.postMessage(reply);
}
