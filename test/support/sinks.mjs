// Sinks for the workerSink unit test, in plain JavaScript so a worker thread can load them.
import { createHash } from 'node:crypto';

/** SHA-256 and length of everything pushed. */
export function hashSink() {
  const h = createHash('sha256');
  let bytes = 0;
  return {
    push(chunk) {
      h.update(chunk);
      bytes += chunk.length;
    },
    finish: () => ({ sha256: h.digest('hex'), bytes }),
  };
}

/** Fails on the first byte 0xff. */
export function failingSink() {
  return {
    push(chunk) {
      if (chunk.includes(0xff)) throw new Error('a byte 0xff');
    },
    finish: () => 'never',
  };
}

