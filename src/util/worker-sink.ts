import { Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { WORKER_LIMITS } from './worker-call.js';

/** What a worker sink module exports: a factory of objects fed the stream's bytes. */
export interface ChunkSink<R> {
  push(chunk: Buffer): void;
  finish(): R;
}

/** Bytes posted to the worker but not yet consumed; past this, writes wait (flat memory). */
const MAX_IN_FLIGHT = 4 << 20;
/** Small chunks are gathered into one message of about this size. */
const BATCH = 256 << 10;

/**
 * A Writable whose bytes are consumed on another thread by `factory` of the module at
 * `moduleUrl` (a file of dist/, exporting a function that returns a ChunkSink). Work such as
 * hashing millions of rows then runs beside the main thread's reading, compressing and
 * writing instead of between them. The bytes are copied once (into the message); what is
 * posted and not yet consumed is bounded. `result` resolves with the sink's `finish()` once
 * the Writable has finished; a failure in the worker fails the Writable.
 */
export function workerSink<R>(moduleUrl: URL, factory: string): { writable: Writable; result: Promise<R> } {
  // From dist/ the compiled host; from the sources (tests) the TypeScript one, which Node runs as is.
  const host = new URL(import.meta.url.endsWith('.ts') ? './worker-sink-host.ts' : './worker-sink-host.js', import.meta.url);
  const worker = new Worker(host, { workerData: { module: moduleUrl.href, factory }, resourceLimits: WORKER_LIMITS });
  let inFlight = 0;
  let waiting: (() => void) | undefined;
  let failure: Error | undefined;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  let settle: { resolve: (r: R) => void; reject: (e: Error) => void };
  const result = new Promise<R>((resolve, reject) => {
    settle = { resolve, reject };
  });
  result.catch(() => undefined); // read by the caller after the Writable finished

  const fail = (err: Error) => {
    failure ??= err;
    settle.reject(failure);
    waiting?.();
    void worker.terminate();
  };
  worker.on('message', (m: { consumed?: number; result?: R; error?: string }) => {
    if (m.error !== undefined) return fail(new Error(m.error));
    if (m.consumed !== undefined) {
      inFlight -= m.consumed;
      if (inFlight <= MAX_IN_FLIGHT / 2 && waiting) {
        const go = waiting;
        waiting = undefined;
        go();
      }
    }
    if ('result' in m) {
      settle.resolve(m.result as R);
      void worker.terminate();
    }
  });
  worker.on('error', (err) => fail(err));
  worker.on('exit', (code) => {
    if (code !== 0) fail(new Error(`the worker thread exited with code ${code}`));
  });

  const post = () => {
    if (batchBytes === 0) return;
    // One fresh ArrayBuffer per message, handed over without a second copy.
    const data = new Uint8Array(batchBytes);
    let at = 0;
    for (const b of batch) {
      data.set(b, at);
      at += b.length;
    }
    batch = [];
    batchBytes = 0;
    inFlight += data.byteLength;
    worker.postMessage({ chunk: data }, [data.buffer]);
  };

  const writable = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (failure) return cb(failure);
      batch.push(chunk);
      batchBytes += chunk.length;
      if (batchBytes >= BATCH) post();
      if (inFlight <= MAX_IN_FLIGHT) return cb();
      waiting = () => cb(failure);
    },
    final(cb) {
      if (failure) return cb(failure);
      post();
      worker.postMessage({ end: true });
      result.then(
        () => cb(),
        (err: Error) => cb(err),
      );
    },
    destroy(err, cb) {
      if (!failure) void worker.terminate();
      cb(err);
    },
  });
  return { writable, result };
}
