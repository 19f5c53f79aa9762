import { Writable } from 'node:stream';

/**
 * Splits Docker's multiplexed exec stream (8-byte header: stream type, 3 zero bytes, uint32
 * big-endian length) into stdout and stderr. Unlike docker-modem's demuxStream it honours
 * backpressure: a slow compressor or disk slows the container's output down instead of
 * buffering the whole dump in memory.
 */
export class ExecDemuxer extends Writable {
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    private readonly stdout: Writable,
    private readonly onStderr: (chunk: Buffer) => void,
  ) {
    super();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let waitForDrain = false;
    while (this.pending.length >= 8) {
      const type = this.pending[0];
      const size = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + size) break;
      const payload = this.pending.subarray(8, 8 + size);
      this.pending = this.pending.subarray(8 + size);
      if (type === 2) this.onStderr(payload);
      else if (this.stdout.destroyed) return callback(new Error('the output stream was closed'));
      else if (!this.stdout.write(payload)) waitForDrain = true;
    }
    if (!waitForDrain) return callback();
    // Wait for room, but never forever: a destroyed output would never drain.
    const done = (err?: Error) => {
      this.stdout.off('drain', onDrain);
      this.stdout.off('close', onClose);
      callback(err);
    };
    const onDrain = () => done();
    const onClose = () => done(new Error('the output stream was closed'));
    this.stdout.on('drain', onDrain);
    this.stdout.on('close', onClose);
  }

  override _final(callback: (error?: Error | null) => void): void {
    callback(this.pending.length ? new Error(`exec stream ended inside a frame (${this.pending.length} bytes left)`) : null);
  }
}
