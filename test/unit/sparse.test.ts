import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { Parser, type ReadEntry } from 'tar';
import { afterAll, describe, expect, it } from 'vitest';
import { HoleScan, sparseTar } from '../../src/drivers/sparse-restore.js';
import { HOLE_BLOCK, HoleFinder, MIN_HOLE, RegionBudget, type SparseMap, sparseFileWriter } from '../../src/util/sparse.js';
import { encodeHeader } from '../../src/util/tar-build.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** `bytes` fed in chunks of the given sizes (cycled), as a stream does. */
function mapOf(bytes: Buffer, chunkSizes: number[], budget = new RegionBudget()): SparseMap | undefined {
  const f = new HoleFinder(bytes.length, budget);
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = chunkSizes[i % chunkSizes.length]!;
    f.update(bytes.subarray(at, at + n));
    at += n;
  }
  return f.end();
}

/** A file of `parts`: [length, data?] pieces, data random, else zeros. */
const fileOf = (parts: Array<[number, boolean]>) => Buffer.concat(parts.map(([n, data]) => (data ? randomBytes(n) : Buffer.alloc(n))));

/** The holes a map leaves, as [start, end) pairs. */
function holesOf(map: SparseMap): Array<[number, number]> {
  const holes: Array<[number, number]> = [];
  let at = 0;
  for (let i = 0; i < map.regions.length; i += 2) {
    if (map.regions[i]! > at) holes.push([at, map.regions[i]!]);
    at = map.regions[i]! + map.regions[i + 1]!;
  }
  if (at < map.size) holes.push([at, map.size]);
  return holes;
}

describe('HoleFinder', () => {
  it('finds aligned zero runs of at least 64 KiB, whatever the chunking; a last partial block counts', () => {
    const file = fileOf([
      [100, true],
      [MIN_HOLE * 3, false], // a hole from the first whole block after the data: 4096 .. 4096+(3*64K-4096)
      [5000, true],
      [MIN_HOLE - 1, false], // too short once aligned: stays data
      [70, true],
      [2 * MiB + 123, false], // a hole up to the end, the last partial block included
    ]);
    const expected = mapOf(file, [file.length]);
    for (const chunks of [[1], [511, 4097], [HOLE_BLOCK], [65_536 + 3], [7, 100_000]]) expect(mapOf(file, chunks)).toEqual(expected);
    const holes = holesOf(expected!);
    expect(holes[0]).toEqual([HOLE_BLOCK, 100 + MIN_HOLE * 3 - ((100 + MIN_HOLE * 3) % HOLE_BLOCK)]);
    expect(holes.at(-1)![1]).toBe(file.length);
    expect(holes).toHaveLength(2);
    expect(expected!.holeBytes).toBe(holes.reduce((n, [a, b]) => n + b - a, 0));
  });

  it('a file without a run long enough has no map; an all-zero one is one hole', () => {
    expect(mapOf(fileOf([[MIN_HOLE, true]]), [4096])).toBeUndefined();
    expect(mapOf(Buffer.alloc(MIN_HOLE - 1), [4096])).toBeUndefined(); // 15 blocks and a partial one: under 64 KiB
    expect(mapOf(Buffer.alloc(3 * MiB + 5), [65_536])).toEqual({ size: 3 * MiB + 5, regions: [], holeBytes: 3 * MiB + 5 });
  });

  it('gives up on a file (no map) when the run is out of region budget', () => {
    const file = fileOf([
      [10, true],
      [MIN_HOLE * 2, false],
      [10, true],
      [MIN_HOLE * 2, false],
      [10, true],
    ]);
    expect(mapOf(file, [9999], new RegionBudget(3))?.regions).toHaveLength(6);
    expect(mapOf(file, [9999], new RegionBudget(2))).toBeUndefined();
  });

  it('property: holes are zero, aligned, at least 64 KiB, and no data region holds an aligned zero run that long', () => {
    const piece = fc.tuple(fc.integer({ min: 1, max: 200_000 }), fc.boolean());
    fc.assert(
      fc.property(fc.array(piece, { minLength: 1, maxLength: 12 }), fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 4 }), (parts, chunks) => {
        const file = fileOf(parts as Array<[number, boolean]>);
        const map = mapOf(file, chunks);
        const holes = map ? holesOf(map) : [];
        for (const [a, b] of holes) {
          expect(file.subarray(a, b).every((x) => x === 0)).toBe(true);
          expect(a % HOLE_BLOCK).toBe(0);
          expect(b % HOLE_BLOCK === 0 || b === file.length).toBe(true);
          expect(b - a).toBeGreaterThanOrEqual(MIN_HOLE);
        }
        // Maximal: outside the holes, no run of MIN_HOLE of aligned zero blocks.
        const inHole = (o: number) => holes.some(([a, b]) => o >= a && o < b);
        let run = 0;
        for (let o = 0; o < file.length; o += HOLE_BLOCK) {
          const zero = !inHole(o) && file.subarray(o, o + HOLE_BLOCK).every((x) => x === 0);
          run = zero ? run + Math.min(HOLE_BLOCK, file.length - o) : 0;
          expect(run).toBeLessThan(MIN_HOLE);
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('sparse entries, read by GNU tar', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  /** A tar as Docker gives it: directories, then files with every zero byte. */
  function archiveOf(entries: Array<{ path: string; data?: Buffer; mode?: number; uid?: number; mtime?: Date }>): Buffer {
    const parts: Buffer[] = [];
    for (const e of entries) {
      const mtime = e.mtime ?? new Date('2021-02-03T04:05:06Z');
      const common = { mode: e.mode ?? 0o644, uid: e.uid ?? 0, gid: e.uid ?? 0, mtime };
      if (!e.data) parts.push(encodeHeader({ path: `${e.path}/`, type: 'Directory', size: 0, ...common }));
      else parts.push(encodeHeader({ path: e.path, type: 'File', size: e.data.length, ...common }), e.data, Buffer.alloc((512 - (e.data.length % 512)) % 512));
    }
    return Buffer.concat([...parts, Buffer.alloc(1024)]);
  }

  const scan = async (archive: Buffer) => {
    const holes = new HoleScan();
    const parser = new Parser({ strict: true });
    parser.on('entry', (e: ReadEntry) => {
      holes.entry(e);
      e.resume();
    });
    await pipeline(Readable.from([archive]), parser);
    return holes.result();
  };

  it('extract to the same bytes, owners, modes and times, taking room only for their data', async () => {
    const vm = fileOf([
      [MiB, true],
      [40 * MiB, false],
      [MiB + 17, true],
      [20 * MiB + 3, false], // ends in a hole
    ]);
    const prealloc = fileOf([
      [8 * MiB, false],
      [100_000, true], // ends in data, at an unaligned size
    ]);
    const allHole = Buffer.alloc(16 * MiB);
    const plain = randomBytes(200_000);
    const archive = archiveOf([
      { path: 'top', mode: 0o755 },
      { path: 'top/db', mode: 0o750, uid: 1234, mtime: new Date('2020-01-01T00:00:00Z') },
      { path: 'top/vm.img', data: vm },
      { path: 'top/db/prealloc.dat', data: prealloc, mode: 0o640, uid: 1234 },
      { path: 'top/all-hole', data: allHole },
      { path: 'top/plain', data: plain },
    ]);
    const sparse = await scan(archive);
    expect([...sparse.files.keys()].sort()).toEqual(['top/all-hole', 'top/db/prealloc.dat', 'top/vm.img']);
    const tar = sparseTar(Readable.from([archive]), sparse, (p) => `out/${p}`);
    const chunks: Buffer[] = [];
    for await (const c of tar) chunks.push(c as Buffer);
    const bytes = Buffer.concat(chunks);
    // The tar holds the data, not the holes.
    expect(bytes.length).toBeLessThan(3 * MiB);

    const dir = await mkdtemp(join(tmpdir(), 'svu-sparse-'));
    dirs.push(dir);
    execFileSync('mkdir', ['-p', join(dir, 'out/top/db')]);
    execFileSync('tar', ['-x', '-f', '-', '-C', dir, '--numeric-owner', '--same-owner', '--same-permissions'], { input: bytes });
    for (const [name, data, room] of [
      ['vm.img', vm, 3 * MiB],
      ['db/prealloc.dat', prealloc, 1 * MiB],
      ['all-hole', allHole, 64 * KiB],
    ] as const) {
      const file = join(dir, 'out/top', name);
      expect((await readFile(file)).equals(data), name).toBe(true);
      expect((await stat(file)).blocks * 512, name).toBeLessThan(room);
    }
    const p = await stat(join(dir, 'out/top/db/prealloc.dat'));
    expect([p.mode & 0o7777, p.uid, p.mtime.toISOString()]).toEqual([0o640, 1234, '2021-02-03T04:05:06.000Z']);
    // The directory a file was created in has its archived metadata back, mtime included.
    const d = await stat(join(dir, 'out/top/db'));
    expect([d.mode & 0o7777, d.uid, d.mtime.toISOString()]).toEqual([0o750, 1234, '2020-01-01T00:00:00.000Z']);
  });

  it('a file named twice or by a hard link is left to the archive API', async () => {
    const big = Buffer.alloc(MiB);
    const archive = Buffer.concat([
      archiveOf([
        { path: 'top', mode: 0o755 },
        { path: 'top/twice', data: big },
        { path: 'top/twice', data: big },
        { path: 'top/linked', data: big },
        { path: 'top/alone', data: big },
      ]).subarray(0, -1024),
      encodeHeader({ path: 'top/link', type: 'Link', linkpath: 'top/linked', size: 0, mode: 0o644, uid: 0, gid: 0, mtime: new Date() }),
      Buffer.alloc(1024),
    ]);
    expect([...(await scan(archive)).files.keys()]).toEqual(['top/alone']);
  });

  it('fails when a hole holds data when the tar is made (the archive is not the one scanned)', async () => {
    const archive = archiveOf([{ path: 'top' }, { path: 'top/f', data: Buffer.alloc(MiB) }]);
    const sparse = await scan(archive);
    const changed = archiveOf([{ path: 'top' }, { path: 'top/f', data: Buffer.concat([Buffer.alloc(MiB - 1), Buffer.from([1])]) }]);
    const tar = sparseTar(Readable.from([changed]), sparse, (p) => p);
    await expect(
      (async () => {
        for await (const _ of tar);
      })(),
    ).rejects.toThrow(/top\/f changed since the restore's check read it/);
  });
});

describe('sparseFileWriter', () => {
  it('writes the same bytes, leaving zero blocks unwritten (chunks at any alignment)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'svu-sparse-'));
    try {
      const content = fileOf([
        [1000, true],
        [30 * MiB, false],
        [5000, true],
        [10 * MiB + 7, false],
      ]);
      const chunks: Buffer[] = [];
      for (let at = 0, n = 1; at < content.length; at += n, n = (n * 7 + 13) % 100_000) chunks.push(content.subarray(at, at + n));
      const file = join(dir, 'staged.tar');
      await pipeline(Readable.from(chunks), sparseFileWriter(file));
      expect((await readFile(file)).equals(content)).toBe(true);
      expect((await stat(file)).blocks * 512).toBeLessThan(MiB);
      // A new file only: it never writes over what is there.
      await expect(pipeline(Readable.from([Buffer.from('x')]), sparseFileWriter(file))).rejects.toThrow(/EEXIST/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
