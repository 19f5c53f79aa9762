import { randomUUID } from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import { type DockerEngine, type ExecOptions, foreignText } from './engine.js';

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
  /**
   * As readUntil, but an answer also ends at a whole line that `line` matches (read as latin1),
   * if one comes before `end`: the command refused, and the marker the request asked for may
   * never come. `line` is then that line; the session is out of step (what the request still
   * prints comes later), so the caller closes it.
   */
  readUntilOr(end: Buffer | string, line: RegExp): Promise<{ answer: Buffer; line?: string }>;
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
  /** Output not read yet, as it came (a long answer is copied once, when it is taken). */
  let held: Buffer[] = [];
  let heldBytes = 0;
  /** How many of the held bytes the search for the current marker has been through. */
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
  /** Held bytes [from, to) as one buffer (a copy only when they span chunks). */
  const bytes = (from: number, to: number): Buffer => {
    const parts: Buffer[] = [];
    let at = 0;
    for (const c of held) {
      const start = Math.max(from - at, 0);
      const end = Math.min(to - at, c.length);
      if (start < end) parts.push(c.subarray(start, end));
      at += c.length;
      if (at >= to) break;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  };
  /** Drops the first `n` held bytes. */
  const drop = (n: number) => {
    while (n > 0 && held.length) {
      const c = held[0]!;
      if (c.length <= n) {
        held.shift();
        n -= c.length;
        heldBytes -= c.length;
      } else {
        held[0] = c.subarray(n);
        heldBytes -= n;
        n = 0;
      }
    }
  };
  const stdout = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (closed) return cb(); // nobody asks any more: what it still says is dropped
      held.push(chunk);
      heldBytes += chunk.length;
      notify();
      if (heldBytes < HELD_BYTES) cb();
      else release = cb;
    },
  });
  const stderrChunks: Buffer[] = [];
  const onStderr = (chunk: Buffer) => {
    if (stderrChunks.length < 64) stderrChunks.push(chunk); // enough to say what went wrong
    // The chunks come raw (only the exec's whole stderr is redacted): the line is, before it is quoted.
    if (options.stderrFails) fail(new Error(`${options.label}: ${foreignText(engine, Buffer.concat(stderrChunks).toString('utf8').trim().split('\n')[0] ?? '', cmd)}`));
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
  const ask = (end: Buffer | string, refusal?: RegExp) => {
    const answer = queue.then(() => readUntil(typeof end === 'string' ? Buffer.from(end) : end, refusal));
    queue = answer.catch(() => undefined);
    return answer;
  };
  const readUntil = async (end: Buffer, refusal?: RegExp): Promise<{ answer: Buffer; line?: string }> => {
    searched = 0;
    for (;;) {
      // Only the bytes not searched yet, with enough before them for a marker cut in two.
      const from = Math.max(0, searched - end.length + 1);
      const found = heldBytes > from ? bytes(from, heldBytes).indexOf(end) : -1;
      if (found >= 0) {
        const answer = Buffer.from(bytes(0, from + found));
        drop(from + found + end.length);
        searched = 0;
        letGo();
        return { answer };
      }
      // Sought in the whole held answer: these answers are a few lines (redis-cli's).
      const refused = refusal && heldBytes > 0 ? refusalLine(bytes(0, heldBytes), refusal) : undefined;
      if (refused) {
        drop(refused.end);
        searched = 0;
        letGo();
        return { answer: Buffer.alloc(0), line: refused.line };
      }
      searched = heldBytes;
      if (failure) throw failure;
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
    readUntil: (end) => ask(end).then((r) => r.answer),
    readUntilOr: (end, line) => ask(end, line),
    close: async () => {
      closed = true;
      held = [];
      heldBytes = 0;
      letGo();
      input.end();
      return exited;
    },
  };
}

/** The first whole line of `held` that `refusal` matches, and where it ends. */
function refusalLine(held: Buffer, refusal: RegExp): { line: string; end: number } | undefined {
  let start = 0;
  for (let nl = held.indexOf(10); nl >= 0; start = nl + 1, nl = held.indexOf(10, start)) {
    const line = held.subarray(start, nl).toString('latin1');
    if (refusal.test(line)) return { line, end: nl + 1 };
  }
  return undefined;
}

/** A random marker no answer can hold by chance, to end an answer with. */
export function answerMarker(): string {
  return `stackvault-${randomUUID().replaceAll('-', '')}`;
}
