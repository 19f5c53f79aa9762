import { Writable } from 'node:stream';

/**
 * Writes `chunk` to `out` and calls `done` when there is room for more, or with an error when
 * `out` is closed or destroyed meanwhile. A destroyed stream never emits 'drain', so waiting
 * for drain alone can hang forever (and keep a stopped container stopped).
 */
export function writeWithRoom(out: Writable, chunk: Buffer, done: (err?: Error) => void): void {
  if (out.destroyed || out.writableEnded) return done(new Error('the output stream was closed'));
  if (out.write(chunk)) return done();
  const finish = (err?: Error) => {
    out.off('drain', onDrain);
    out.off('close', onClose);
    done(err);
  };
  const onDrain = () => finish();
  const onClose = () => finish(new Error('the output stream was closed'));
  out.on('drain', onDrain);
  out.on('close', onClose);
}

/** A Writable that forwards into `out` without ending it: for copying several sources into one. */
export function forwardTo(out: Writable): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      writeWithRoom(out, chunk, cb);
    },
  });
}
