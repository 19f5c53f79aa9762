import { randomUUID } from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import type { DockerEngine, ExecOptions } from './engine.js';

/**
 * A command kept running in a container with its stdin open: requests go in on its stdin, and
 * each answer comes back on its stdout, ended by a marker the request asks the command to
 * print. One `docker exec` serves many requests: an exec costs 0.1-0.6 s on a busy machine,
 * an answer through a session about a millisecond, which is what a pause or a stop must not
 * wait for (psql holding a snapshot, redis-cli sending BGSAVE, a shell listing a store's files).
 *
 * Output stays bytes until the caller decodes an answer. Requests are answered one at a time,
 * in the order they are read.
 */
export interface CommandSession {
  /** Writes to the command's stdin (ignored once the session is closed). */
  send(input: string): void;
  /** The output up to the first `end` (consumed with it, not returned); rejects if the command ends or fails first. */
  readUntil(end: Buffer | string): Promise<Buffer>;
  /** Ends the command's input and waits for it to exit; resolves to its exit code. */
  close(): Promise<number>;
}

export interface SessionOptions extends Pick<ExecOptions, 'env' | 'user' | 'signal'> {
  /**
   * Anything on stderr fails the answer being waited for (and every later one). For commands
   * that print their errors there and go on, such as redis-cli when it is not connected: the
   * marker it was asked for would never come.
   */
  stderrFails?: boolean;
  /** What the command is, for messages ("redis-cli in svc"). */
  label: string;
}

/** Output held while nobody reads it, beyond which the command is held (backpressure) until it is read. */
const HELD_BYTES = 1024 * 1024;

export function openSession(engine: DockerEngine, containerId: string, cmd: string[], options: SessionOptions): CommandSession {
  const input = new PassThrough();
  let held: Buffer = Buffer.alloc(0);
  /** Where the search for the current marker goes on from (the bytes before it were searched). */
  let searched = 0;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  let release: (() => void) | undefined;
  let closed = false;
  const letGo = () => {
    const r = release;
    release = undefined;
    r?.();
  };
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const fail = (err: Error) => {
    failure ??= err;
    notify();
  };
  const stdout = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (closed) return cb(); // nobody asks any more: what it still says is dropped
      held = held.length ? Buffer.concat([held, chunk]) : chunk;
      notify();
      if (held.length < HELD_BYTES) cb();
      else release = cb;
    },
  });
  const stderrChunks: Buffer[] = [];
  const onStderr = (chunk: Buffer) => {
    stderrChunks.push(chunk);
    if (options.stderrFails) fail(new Error(`${options.label}: ${Buffer.concat(stderrChunks).toString('utf8').trim().split('\n')[0]}`));
  };
  const { env, user, signal } = options;
  const exited = engine.exec(containerId, cmd, { stdin: input, stdout, onStderr, ...(env ? { env } : {}), ...(user ? { user } : {}), ...(signal ? { signal } : {}) }).then(
    (r) => {
      fail(new Error(`${options.label} ended (exit ${r.exitCode}): ${r.stderr.trim().split('\n')[0] || 'no error output'}`));
      return r.exitCode;
    },
    (err: unknown) => {
      fail(err instanceof Error ? err : new Error(String(err)));
      return -1;
    },
  );
  let queue: Promise<unknown> = Promise.resolve();
  const readUntil = async (end: Buffer): Promise<Buffer> => {
    searched = 0;
    for (;;) {
      const at = held.indexOf(end, searched);
      if (at >= 0) {
        const answer = Buffer.from(held.subarray(0, at));
        held = held.subarray(at + end.length);
        searched = 0;
        letGo();
        return answer;
      }
      if (failure) throw failure;
      searched = Math.max(0, held.length - end.length + 1);
      const woken = new Promise<void>((resolve) => {
        wake = resolve;
      });
      // A long answer fills what is held: let the command go on (its next write may come at
      // once, inside this call, so the wake-up is set first).
      letGo();
      await woken;
    }
  };
  return {
    send: (text) => {
      if (!input.writableEnded) input.write(text);
    },
    readUntil: (end) => {
      const answer = queue.then(() => readUntil(typeof end === 'string' ? Buffer.from(end) : end));
      queue = answer.catch(() => undefined);
      return answer;
    },
    close: async () => {
      closed = true;
      held = Buffer.alloc(0);
      letGo();
      input.end();
      return exited;
    },
  };
}

/** A random marker no answer can hold by chance, to end an answer with. */
export function answerMarker(): string {
  return `stackvault-${randomUUID().replaceAll('-', '')}`;
}
