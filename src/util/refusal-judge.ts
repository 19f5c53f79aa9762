import { Writable, type Transform } from 'node:stream';

/**
 * Reads a stream along with a backup through the filter its restore will use (a Transform that
 * fails on what it refuses), so that a backup the restore would refuse is known when it is
 * made, not when it is needed. It never fails itself: the first refusal is kept in `refused`
 * and the rest of the stream is skipped; the filter's output is thrown away.
 */
export class RefusalJudge extends Writable {
  refused: string | undefined;
  private filter: Transform | undefined;

  constructor(filter: Transform) {
    super({ highWaterMark: 1 << 20 });
    this.filter = filter;
    filter.on('data', () => undefined);
    filter.on('error', (err: Error) => this.refuse(err.message));
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const filter = this.filter;
    if (!filter) return cb();
    // The filter's callback comes once it has handled the chunk (an error is kept, not passed on).
    filter.write(chunk, () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    const filter = this.filter;
    if (!filter) return cb();
    let called = false;
    const done = () => {
      if (called) return;
      called = true;
      cb();
    };
    // A filter that fails in its flush (a dump cut off) is a refusal too: kept by 'error'.
    filter.once('error', done);
    filter.once('close', done);
    filter.end(done);
  }

  private refuse(why: string): void {
    this.refused ??= why;
    const filter = this.filter;
    this.filter = undefined;
    filter?.destroy();
  }
}

/** The outcome field for a judge's verdict: `restoreRefuses` when it refused. */
export const refusal = (judge: RefusalJudge): { restoreRefuses?: string } => (judge.refused !== undefined ? { restoreRefuses: judge.refused } : {});
