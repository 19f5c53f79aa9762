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

/**
 * A Writable that gathers small chunks into `out` in pieces of at least `size` bytes, with room
 * as writeWithRoom gives it, without ending `out`; ending it writes what is left. A tar of many
 * small files comes as a 512-byte header and a few bytes per entry, and each chunk written
 * costs a compressor a trip to the thread pool and every tap a call: 200,000 files took 59 s
 * that way, against 14 s for Docker's own archive of them in 32 KiB chunks.
 */
export function gatheredInto(out: Writable, size = 64 * 1024): Writable {
  let held: Buffer[] = [];
  let heldBytes = 0;
  const flush = (cb: (err?: Error | null) => void) => {
    if (!heldBytes) return cb();
    const chunk = held.length === 1 ? held[0]! : Buffer.concat(held, heldBytes);
    held = [];
    heldBytes = 0;
    writeWithRoom(out, chunk, cb);
  };
  const gathered = new Writable({
    write(chunk: Buffer, _enc, cb) {
      held.push(chunk);
      heldBytes += chunk.length;
      if (heldBytes >= size) flush(cb);
      else cb();
    },
    final: flush,
  });
  // A failure reaches the writer through its callbacks and `finished`; the event itself went
  // unhandled (an output destroyed by Ctrl-C while a pre-copy was emitted crashed the run).
  gathered.on('error', () => undefined);
  return gathered;
}

/** A Writable that forwards into `out` without ending it: for copying several sources into one. */
export function forwardTo(out: Writable): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      writeWithRoom(out, chunk, cb);
    },
  });
}

/**
 * A Writable that sends every chunk to `out` and to each tap (a parser, hasher or judge that
 * reads along), and asks for the next chunk only when all have room: a tap slower than the
 * output (a hash on another thread) holds the source back instead of queueing the whole stream
 * in memory. Ending it ends the taps, not `out`: see `finished`. A failure of any fails the
 * write under way with that failure, so the 'error' event itself is not left unhandled.
 */
export function teeTo(out: Writable, ...taps: Writable[]): Writable {
  return fanOut([forwardTo(out), ...taps]);
}

/** Ends a Writable and resolves once everything written to it went through, or rejects with its error. */
export function finished(w: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    if (w.errored) return reject(w.errored);
    w.once('error', reject);
    w.end(() => (w.errored ? reject(w.errored) : resolve()));
  });
}

/**
 * One Writable for several taps: each chunk goes to every one, the next is asked for when all
 * have room, ending it ends all of them, and a failure of any fails it. One that fails or is
 * destroyed before its end (the output closed: disk full, Ctrl-C) takes every tap down too: a
 * tap neither ended nor destroyed leaves whoever waits for its result (a fingerprint) waiting
 * forever.
 */
function fanOut(taps: Writable[]): Writable {
  for (const t of taps) t.on('error', () => undefined); // reported through the callbacks below
  const all = (each: (t: Writable, done: (err?: Error | null) => void) => void, cb: (err?: Error | null) => void) => {
    let waiting = taps.length;
    let failure: Error | undefined;
    if (waiting === 0) return cb();
    for (const t of taps)
      each(t, (err) => {
        failure ??= err ?? t.errored ?? undefined;
        if (--waiting === 0) cb(failure);
      });
  };
  const fan = new Writable({
    write(chunk: Buffer, _enc, cb) {
      all((t, done) => writeWithRoom(t, chunk, (err) => done(err && (t.errored ?? err))), cb);
    },
    final(cb) {
      all((t, done) => (t.errored ? done(t.errored) : t.end((err?: Error | null) => done(err ?? t.errored))), cb);
    },
    destroy(err, cb) {
      for (const t of taps) if (!t.writableFinished && !t.destroyed) t.destroy(err ?? new Error('the stream was cut off'));
      cb(err);
    },
  });
  fan.on('error', () => undefined);
  return fan;
}
