import { Writable } from 'node:stream';

/** How much of a stream's end is kept: a dump's final line and the few short ones after it. */
const TAIL_BYTES = 256;

/**
 * Keeps a stream's last bytes (to look for a dump's final line) and, given a marker, tells when
 * the marker first went by. Chunks are not copied whole: only their ends, and for the marker
 * the few bytes where it could straddle two chunks.
 */
export class TailKeeper extends Writable {
  private tail = Buffer.alloc(0);
  private markerSeen = false;
  private found!: () => void;
  /** Resolves once the marker went by (never without one). */
  readonly seen = new Promise<void>((resolve) => {
    this.found = resolve;
  });
  constructor(private readonly marker?: Buffer) {
    super();
  }
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    if (this.marker && !this.markerSeen && this.holdsMarker(chunk)) {
      this.markerSeen = true;
      this.found();
    }
    this.tail = Buffer.concat([this.tail, chunk.subarray(-TAIL_BYTES)]).subarray(-TAIL_BYTES);
    cb();
  }
  /** The last bytes as text, one character per byte. */
  text(): string {
    return this.tail.toString('latin1');
  }
  /** In this chunk, or across its start: begun in the kept tail, ended in the chunk. */
  private holdsMarker(chunk: Buffer): boolean {
    const m = this.marker!;
    if (chunk.includes(m)) return true;
    return Buffer.concat([this.tail.subarray(-(m.length - 1)), chunk.subarray(0, m.length - 1)]).includes(m);
  }
}
