import { Worker } from 'node:worker_threads';

/**
 * Our workers stream through many short-lived objects (rows, chunks) and keep little: a small
 * young generation is collected more often and keeps each worker's memory small (V8's default
 * lets it grow to tens of MB per thread).
 */
export const WORKER_LIMITS = { maxYoungGenerationSizeMb: 4 };

/**
 * Calls `fn` exported by the module at `moduleUrl` (a file of dist/) with `args` on a thread of
 * its own and resolves with what it returns (both structured-cloned). For synchronous work
 * that would otherwise hold the main thread, and with it every other service's stream: e.g.
 * node:sqlite reading 700 k rows takes seconds and cannot yield.
 */
export function inWorker<R>(moduleUrl: URL, fn: string, args: unknown[]): Promise<R> {
  // From dist/ the compiled host; from the sources (tests) the TypeScript one, which Node runs as is.
  const host = new URL(import.meta.url.endsWith('.ts') ? './worker-call-host.ts' : './worker-call-host.js', import.meta.url);
  return new Promise<R>((resolve, reject) => {
    const worker = new Worker(host, { workerData: { module: moduleUrl.href, fn, args }, resourceLimits: WORKER_LIMITS });
    let settled = false;
    worker.once('message', (m: { result?: R; error?: string }) => {
      settled = true;
      if (m.error !== undefined) reject(new Error(m.error));
      else resolve(m.result as R);
    });
    worker.once('error', (err) => {
      settled = true;
      reject(err);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`the worker thread exited with code ${code} before answering`));
    });
  });
}

/** Every function the module exports, each called through inWorker (typed from the module). */
export function inWorkers<M>(moduleUrl: URL): { [K in keyof M]: M[K] extends (...a: infer A) => infer R ? (...a: A) => Promise<Awaited<R>> : never } {
  // `then` stays undefined, so the object is never taken for a promise.
  return new Proxy({} as never, { get: (_t, fn: string) => (fn === 'then' ? undefined : (...args: unknown[]) => inWorker(moduleUrl, fn, args)) });
}
