import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { Header } from 'tar';

/**
 * Holes in files (sparse files: a VM disk image, a preallocated database file, `truncate -s
 * 20G`). Docker's archive API knows none: its tar of a path holds every zero byte of a hole, and
 * its extraction writes every one of them (Go's archive/tar writes no sparse entries and reads
 * them into plain writes; GNU's old sparse type 'S' it refuses). So holes are found again by
 * content, as GNU tar's --sparse, restic's restorer and borg's export-tar do: runs of whole
 * zero blocks, aligned in the file, make a hole. A file so restored reads the same bytes; only
 * the disk it takes differs.
 */

/** A hole covers whole blocks of this size, aligned in the file: a file system allocates no smaller unit. */
export const HOLE_BLOCK = 4096;
/** Shorter zero runs stay data: they save little, and a map entry per 4 KiB would make maps large. */
export const MIN_HOLE = 64 * 1024;

const ZEROS = Buffer.alloc(64 * 1024);

/** Whether bytes `from`..`to` of `buf` are all zero (memcmp against a zero buffer, no copies). */
export function allZero(buf: Buffer, from = 0, to = buf.length): boolean {
  for (let at = from; at < to; at += ZEROS.length) {
    const end = Math.min(to, at + ZEROS.length);
    if (buf.compare(ZEROS, 0, end - at, at, end) !== 0) return false;
  }
  return true;
}

/** A file's data regions ([offset, length] pairs, in order, flattened); everything else is a hole. */
export interface SparseMap {
  size: number;
  regions: number[];
  holeBytes: number;
}

/** How many data regions the maps of one run may hold in all (16 bytes each, and their text in a tar). */
export class RegionBudget {
  constructor(public left = 1_000_000) {}
}

/**
 * Finds the holes of one file from its content, fed in order in chunks of any size: runs of at
 * least MIN_HOLE of whole zero HOLE_BLOCKs, aligned in the file (a last, partial block counts as
 * a block). `end` returns the map, or undefined when the file has no hole or the budget ran out.
 */
export class HoleFinder {
  private offset = 0;
  private readonly partial = Buffer.alloc(HOLE_BLOCK);
  private partialBytes = 0;
  /** Where the zero blocks seen last begin, or -1 after a data block. */
  private zeroFrom = -1;
  /** Where the current data region begins (the end of the last hole). */
  private dataFrom = 0;
  private readonly regions: number[] = [];
  private holeBytes = 0;
  private overflow = false;

  constructor(
    private readonly size: number,
    private readonly budget: RegionBudget,
  ) {}

  update(chunk: Buffer): void {
    if (this.overflow) return;
    let at = 0;
    if (this.partialBytes) {
      const take = Math.min(HOLE_BLOCK - this.partialBytes, chunk.length);
      chunk.copy(this.partial, this.partialBytes, 0, take);
      this.partialBytes += take;
      at = take;
      if (this.partialBytes < HOLE_BLOCK) return;
      this.block(allZero(this.partial));
      this.partialBytes = 0;
    }
    for (; at + HOLE_BLOCK <= chunk.length; at += HOLE_BLOCK) this.block(allZero(chunk, at, at + HOLE_BLOCK));
    if (at < chunk.length) {
      chunk.copy(this.partial, 0, at);
      this.partialBytes = chunk.length - at;
    }
  }

  end(): SparseMap | undefined {
    if (this.partialBytes && !this.overflow) this.block(allZero(this.partial, 0, this.partialBytes), this.partialBytes);
    if (this.overflow || this.offset !== this.size) return undefined;
    this.closeRun(this.size);
    if (this.dataFrom < this.size) this.region(this.dataFrom, this.size - this.dataFrom);
    return this.holeBytes > 0 && !this.overflow ? { size: this.size, regions: this.regions, holeBytes: this.holeBytes } : undefined;
  }

  private block(zero: boolean, length = HOLE_BLOCK): void {
    if (zero) {
      if (this.zeroFrom < 0) this.zeroFrom = this.offset;
    } else this.closeRun(this.offset);
    this.offset += length;
  }

  /** The zero blocks from zeroFrom up to `end` are a hole if long enough. */
  private closeRun(end: number): void {
    if (this.zeroFrom >= 0 && end - this.zeroFrom >= MIN_HOLE) {
      if (this.zeroFrom > this.dataFrom) this.region(this.dataFrom, this.zeroFrom - this.dataFrom);
      this.holeBytes += end - this.zeroFrom;
      this.dataFrom = end;
    }
    this.zeroFrom = -1;
  }

  private region(offset: number, length: number): void {
    if (this.budget.left <= 0) {
      this.overflow = true;
      return;
    }
    this.budget.left--;
    this.regions.push(offset, length);
  }
}

/** What a sparse entry's header says besides its map. `name` is the path to extract to. */
export interface SparseEntryHead {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
}

/**
 * The headers and map of a file as a sparse entry in GNU's PAX format 1.0 (what `tar --sparse
 * --format=posix` writes): a PAX header with GNU.sparse.major=1, minor=0, the real name and size;
 * then the entry, whose content is the map in decimal text (the count, then offset and length of
 * each data region, a last region of length 0 at the real size when the file ends in a hole),
 * padded to a 512-byte block, then the data regions' bytes. Returns the bytes before the data
 * and how many data bytes must follow (the caller pads them to a block).
 */
export function sparseEntryStart(head: SparseEntryHead, map: SparseMap): { head: Buffer; dataBytes: number } {
  const regions = [...map.regions];
  const last = regions.length ? regions.at(-2)! + regions.at(-1)! : 0;
  if (last < map.size) regions.push(map.size, 0);
  const mapText = Buffer.from(`${regions.length / 2}\n${regions.join('\n')}\n`, 'latin1');
  const mapBlock = Buffer.alloc(Math.ceil(mapText.length / 512) * 512);
  mapText.copy(mapBlock);
  let dataBytes = 0;
  for (let i = 1; i < regions.length; i += 2) dataBytes += regions[i]!;
  const stored = mapBlock.length + dataBytes;
  const mtime = Math.floor(head.mtime.getTime() / 1000);
  const pax = paxBody([
    ['GNU.sparse.major', '1'],
    ['GNU.sparse.minor', '0'],
    ['GNU.sparse.name', head.name],
    ['GNU.sparse.realsize', String(map.size)],
    // Also in PAX: the ustar fields have 11 octal digits for a size and 7 for ids.
    ['size', String(stored)],
    ['uid', String(head.uid)],
    ['gid', String(head.gid)],
    ['mtime', String(mtime)],
  ]);
  const paxHeader = block({ path: 'PaxHeader/sparse', type: 'ExtendedHeader', size: pax.length, mode: 0o644, uid: 0, gid: 0, mtime: head.mtime });
  const entry = block({ path: 'GNUSparseFile.0/sparse', type: 'File', size: stored, mode: head.mode & 0o7777, uid: head.uid, gid: head.gid, mtime: head.mtime });
  return { head: Buffer.concat([paxHeader, pad(pax), entry, mapBlock]), dataBytes };
}

/** PAX records: `<length> <key>=<value>\n`, the length counting itself. Values are UTF-8. */
function paxBody(records: Array<[string, string]>): Buffer {
  return Buffer.concat(
    records.map(([k, v]) => {
      const body = Buffer.byteLength(` ${k}=${v}\n`);
      let length = body + 1;
      while (String(length).length + body !== length) length = String(length).length + body;
      return Buffer.from(`${length} ${k}=${v}\n`, 'utf8');
    }),
  );
}

function block(fields: ConstructorParameters<typeof Header>[0]): Buffer {
  const header = new Header(fields);
  header.encode(); // numbers too big for ustar are in base-256 there, and in the PAX record
  return header.block!;
}

const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);

/**
 * A Writable into a new file (`wx`, mode 0600) that leaves every aligned zero HOLE_BLOCK
 * unwritten, and sets the file's length at the end: the file reads the same bytes and takes
 * room only for its data (as `cp --sparse=always`). For staging raw copies of a store's files:
 * a 20 GiB sparse file otherwise took 20 GiB beside the backups while it was backed up.
 */
export function sparseFileWriter(path: string): Writable {
  let handle: FileHandle | undefined;
  let position = 0;
  const writeAll = async (buf: Buffer, at: number): Promise<void> => {
    for (let done = 0; done < buf.length; ) {
      const { bytesWritten } = await handle!.write(buf, done, buf.length - done, at + done);
      if (bytesWritten === 0) throw new Error(`${path} could not be written (no space?)`);
      done += bytesWritten;
    }
  };
  return new Writable({
    construct(cb) {
      open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600).then((h) => {
        handle = h;
        cb();
      }, cb);
    },
    write(chunk: Buffer, _enc, cb) {
      const start = position;
      position += chunk.length;
      // The file is new: what is not written reads as zeros. So zero bytes are not written, judged
      // per block aligned in the file (and the pieces of blocks at the chunk's ends); a block
      // that gets some data is allocated whole by the file system, and its zeros read as zeros.
      const writes: Array<[number, number]> = [];
      let from = -1;
      for (let at = 0; at < chunk.length; ) {
        const end = Math.min(chunk.length, at + HOLE_BLOCK - ((start + at) % HOLE_BLOCK));
        const zero = allZero(chunk, at, end);
        if (!zero && from < 0) from = at;
        if (zero && from >= 0) {
          writes.push([from, at]);
          from = -1;
        }
        at = end;
      }
      if (from >= 0) writes.push([from, chunk.length]);
      (async () => {
        for (const [a, b] of writes) await writeAll(chunk.subarray(a, b), start + a);
      })().then(() => cb(), cb);
    },
    final(cb) {
      // A hole at the end is length without a write.
      handle!.truncate(position).then(() => cb(), cb);
    },
    destroy(err, cb) {
      if (!handle) return cb(err);
      handle.close().then(
        () => cb(err),
        () => cb(err),
      );
    },
  });
}
