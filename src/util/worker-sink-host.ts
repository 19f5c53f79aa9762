import { parentPort, workerData } from 'node:worker_threads';
import type { ChunkSink } from './worker-sink.js';

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
      }
      if (m.end) port.postMessage({ result: sink.finish() });
    } catch (err) {
      port.postMessage({ error: err instanceof Error ? err.message : String(err) });
    }
  });
} catch (err) {
  port.postMessage({ error: `the worker could not start: ${err instanceof Error ? err.message : String(err)}` });
}
