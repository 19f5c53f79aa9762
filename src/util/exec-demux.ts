import { Writable } from 'node:stream';
import { writeWithRoom } from './backpressure.js';

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
    const frames: Buffer[] = [];
    while (this.pending.length >= 8) {
      const size = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + size) break;
      const payload = this.pending.subarray(8, 8 + size);
      if (this.pending[0] === 2) this.onStderr(payload);
      else frames.push(payload);
      this.pending = this.pending.subarray(8 + size);
    }
    // One write at a time, each waiting for room: a slow consumer slows the container down.
    const next = (err?: Error) => {
      const frame = frames.shift();
      if (err || !frame) return callback(err);
      writeWithRoom(this.stdout, frame, next);
    };
    next();
  }

  override _final(callback: (error?: Error | null) => void): void {
    callback(this.pending.length ? new Error(`exec stream ended inside a frame (${this.pending.length} bytes left)`) : null);
  }
}
