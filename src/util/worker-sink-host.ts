import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort, workerData } from 'node:worker_threads';
import type { ChunkSink } from './worker-sink.js';

/**
 * A full collection of this worker's heap after every COLLECT_EVERY bytes consumed. A sink
 * that keeps a view of a chunk across pushes (the Postgres fingerprinter keeps the tail of a
 * row) gets that chunk promoted to the old generation, where V8 frees it only at a full
 * collection, which it starts by itself only once 64 MB of such memory piled up. Measured on
 * the benchmark's 4 GB stack (`create --only postgres`): peak RSS 190 -> 150 MB, the same CPU.
 * The heap here is a few MB, so each collection takes about a millisecond.
 */
const COLLECT_EVERY = 16 << 20;
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;
let sinceCollected = 0;

/** The worker side of workerSink: feeds each message's bytes to the sink, acknowledges them, and sends the result at the end. */
const { module, factory } = workerData as { module: string; factory: string };
const port = parentPort!;
try {
  const sink = ((await import(module)) as Record<string, () => ChunkSink<unknown>>)[factory]!();
  port.on('message', (m: { chunk?: Uint8Array; end?: boolean }) => {
    try {
      if (m.chunk) {
        sink.push(Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength));
        port.postMessage({ consumed: m.chunk.byteLength });
        sinceCollected += m.chunk.byteLength;
        if (sinceCollected >= COLLECT_EVERY) {
          sinceCollected = 0;
          collect();
        }
      }
      if (m.end) port.postMessage({ result: sink.finish() });
    } catch (err) {
      port.postMessage({ error: err instanceof Error ? err.message : String(err) });
    }
  });
} catch (err) {
  port.postMessage({ error: `the worker could not start: ${err instanceof Error ? err.message : String(err)}` });
}
