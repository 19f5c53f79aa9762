import { parentPort, workerData } from 'node:worker_threads';

/** The worker side of inWorker: runs one exported function and posts its result or its error's message. */
const { module, fn, args } = workerData as { module: string; fn: string; args: unknown[] };
try {
  const f = ((await import(module)) as Record<string, (...a: unknown[]) => unknown>)[fn];
  if (typeof f !== 'function') throw new Error(`${module} exports no function ${fn}`);
  parentPort!.postMessage({ result: await f(...args) });
} catch (err) {
  parentPort!.postMessage({ error: err instanceof Error ? err.message : String(err) });
}
