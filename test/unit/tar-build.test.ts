import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { collect, tarOf } from '../support/tar.js';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { Header, Parser, Pax, type ReadEntry } from 'tar';
import { filterTar, findTarEntry } from '../../src/util/tar-build.js';
import { TarChecker } from '../../src/util/tar-stream.js';

/** Fails the test instead of hanging it when a stream neither ends nor errors. */
const within = <T>(p: Promise<T>, ms = 3000) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still pending after ${ms} ms (hung)`)), ms))]);

/** A source that sends `bytes` in small chunks, then fails (or, without `error`, just ends). */
function sourceOf(bytes: Buffer, error?: Error): Readable {
  let at = 0;
  return new Readable({
    read() {
      if (at < bytes.length) {
        this.push(bytes.subarray(at, at + 4096));
        at += 4096;
      } else if (error) this.destroy(error);
      else this.push(null);
    },
  });
}

describe('findTarEntry', () => {
  const big = randomBytes(200_000);

  it('streams the named entry, complete', async () => {
    const archive = await tarOf({ 'other.txt': Buffer.from('x'), 'db.sqlite': big });
    const entry = await findTarEntry(sourceOf(archive), 'db.sqlite');
    expect(entry.size).toBe(big.length);
    expect((await within(collect(entry.stream))).equals(big)).toBe(true);
  });

  it('a source that errors mid-entry makes the entry stream error (it does not hang)', async () => {
    const archive = await tarOf({ 'db.sqlite': big });
    const source = sourceOf(archive.subarray(0, 80_000), new Error('the disk went away'));
    const entry = await findTarEntry(source, 'db.sqlite');
    await expect(within(collect(entry.stream))).rejects.toThrow('the disk went away');
    expect(source.destroyed).toBe(true);
  });

  it('a source that ends mid-entry (cut off) makes the entry stream error instead of ending short', async () => {
    const archive = await tarOf({ 'db.sqlite': big });
    const entry = await findTarEntry(sourceOf(archive.subarray(0, 80_000)), 'db.sqlite');
    await expect(within(collect(entry.stream))).rejects.toThrow(/truncated/i);
  });

  it('an abort mid-entry errors the entry stream and destroys the source', async () => {
    const archive = await tarOf({ 'db.sqlite': big });
    const controller = new AbortController();
    let sent = 0;
    const source = new Readable({
      read() {
        if (sent < 40_000) {
          this.push(archive.subarray(sent, sent + 4096));
          sent += 4096;
        }
        // then nothing more arrives: a stalled download
      },
    });
    const entry = await findTarEntry(source, 'db.sqlite', controller.signal);
    const reading = collect(entry.stream);
    setTimeout(() => controller.abort(new Error('interrupted by SIGINT')), 50);
    await expect(within(reading)).rejects.toThrow('interrupted by SIGINT');
    expect(source.destroyed).toBe(true);
  });

  it('rejects when the archive has no such file, or the source fails before it', async () => {
    const archive = await tarOf({ 'a.txt': Buffer.from('a') });
    await expect(within(findTarEntry(sourceOf(archive), 'b.txt'))).rejects.toThrow('the archive has no b.txt');
    await expect(within(findTarEntry(sourceOf(archive.subarray(0, 100), new Error('gone')), 'a.txt'))).rejects.toThrow('gone');
  });
});

describe('filterTar', () => {
  interface Spec {
    path: string;
    type: 'File' | 'Directory' | 'SymbolicLink';
    mode: number;
    linkpath?: string;
    data?: Buffer;
  }
  const long = `data/${'deep-directory-name/'.repeat(8)}file ✓ with a long name.store.db`;
  const specs: Spec[] = [
    { path: 'data/', type: 'Directory', mode: 0o750 },
    // Readable but not listable: node-tar's own packer would add the execute bits.
    { path: 'data/closed/', type: 'Directory', mode: 0o640 },
    { path: 'data/public/', type: 'Directory', mode: 0o604 },
    { path: long, type: 'File', mode: 0o600, data: randomBytes(70_000) },
    { path: 'data/link', type: 'SymbolicLink', mode: 0o777, linkpath: `${'../'.repeat(2)}data/${'x'.repeat(120)}` },
    { path: 'other/skipped', type: 'File', mode: 0o644, data: Buffer.from('not kept') },
    { path: 'data/empty', type: 'File', mode: 0o400, data: Buffer.alloc(0) },
  ];

  /** A tar as Docker writes one: a PAX header wherever a ustar field cannot hold the value. */
  function archiveOf(entries: Spec[]): Buffer {
    const blocks: Buffer[] = [];
    for (const e of entries) {
      const fields = {
        path: e.path,
        type: e.type,
        mode: e.mode,
        uid: 7474,
        gid: 7474,
        uname: 'neo4j',
        gname: 'neo4j',
        size: e.data?.length ?? 0,
        mtime: new Date(1_700_000_000_000),
        linkpath: e.linkpath ?? '',
      };
      const h = new Header(fields);
      if (h.encode()) blocks.push(new Pax(fields).encode());
      blocks.push(h.block!);
      if (e.data?.length) blocks.push(e.data, Buffer.alloc((512 - (e.data.length % 512)) % 512));
    }
    blocks.push(Buffer.alloc(1024));
    return Buffer.concat(blocks);
  }

  async function entriesOf(archive: Buffer): Promise<Array<Spec & { uid: number; gid: number; uname?: string; mtime?: number }>> {
    const found: Array<Spec & { uid: number; gid: number; uname?: string; mtime?: number }> = [];
    const parser = new Parser({ strict: true });
    parser.on('entry', (e: ReadEntry) => {
      const chunks: Buffer[] = [];
      e.on('data', (c: Buffer) => chunks.push(c));
      e.on('end', () =>
        found.push({
          path: e.path,
          type: e.type as Spec['type'],
          mode: (e.mode ?? 0) & 0o7777,
          ...(e.linkpath ? { linkpath: e.linkpath } : {}),
          ...(e.type === 'File' ? { data: Buffer.concat(chunks) } : {}),
          uid: e.uid ?? -1,
          gid: e.gid ?? -1,
          uname: e.uname,
          mtime: e.mtime?.getTime(),
        }),
      );
    });
    await new Promise<void>((resolve, reject) => parser.on('end', resolve).on('error', reject).end(archive));
    return found;
  }

  it('keeps exactly the headers and bytes of the kept entries, whatever the chunking', async () => {
    const archive = archiveOf(specs);
    const out = await within(collect(filterTar(sourceOf(archive), (e) => (e.path.startsWith('data/') ? 'keep' : 'skip'))));
    const expected = (await entriesOf(archive)).filter((e) => e.path.startsWith('data/'));
    expect(expected.find((e) => e.path === 'data/closed/')!.mode).toBe(0o640); // the input really holds it
    expect(await entriesOf(out)).toEqual(expected);
  });

  it('stops with the error `decide` gives, and destroys the source', async () => {
    const source = sourceOf(archiveOf(specs));
    const out = filterTar(source, (e) => (e.path === 'data/link' ? new Error('the link leads outside') : 'keep'));
    await expect(within(collect(out))).rejects.toThrow('the link leads outside');
    expect(source.destroyed).toBe(true);
  });

  /** A header block as a hostile archive writes it: any type with any size. */
  const rawHeader = (path: string, type: string, size: number, linkpath = '') => {
    const h = new Header({ path, type: type as 'File', size, linkpath, mode: 0o644, uid: 0, gid: 0, mtime: new Date(0) });
    h.encode();
    return h.block!;
  };
  const body = (data: Buffer) => [data, Buffer.alloc((512 - (data.length % 512)) % 512)];

  it('refuses a symlink or hard link that carries content: Docker would read it as further entries (hunt F2)', async () => {
    const hidden = Buffer.concat([rawHeader('usr/local/bin/suid-shell', 'File', 5), ...body(Buffer.from('#!/sh'))]);
    for (const carrier of [rawHeader('data/carrier', 'SymbolicLink', hidden.length, 'databases'), rawHeader('data/carrier', 'Link', hidden.length, 'data/f')]) {
      const archive = Buffer.concat([rawHeader('data/f', 'File', 0), carrier, ...body(hidden), Buffer.alloc(1024)]);
      await expect(within(collect(filterTar(sourceOf(archive), () => 'keep')))).rejects.toThrow(/'data\/carrier' is a (SymbolicLink|Link) with 1024 bytes of content/);
    }
  });

  it('fails when an entry streams other bytes than its header says (a global PAX size next to a per-file one)', async () => {
    const record = (key: string, value: number) => {
      const text = ` ${key}=${value}\n`;
      const length = text.length + String(text.length + 2).length;
      return Buffer.from(`${length}${text}`);
    };
    const pax = (type: string, data: Buffer) => [rawHeader('PaxHeader', type, data.length), ...body(data)];
    // node-tar reads 10 bytes of content but says the size is 1024: a reader that believed the
    // header written back would take the next entry's header and content as this one's.
    const archive = Buffer.concat([
      ...pax('GlobalExtendedHeader', record('size', 1024)),
      ...pax('ExtendedHeader', record('size', 10)),
      rawHeader('data/f', 'File', 10),
      ...body(Buffer.from('0123456789')),
      rawHeader('data/g', 'File', 3),
      ...body(Buffer.alloc(1024, 'a')),
      Buffer.alloc(1024),
    ]);
    await expect(within(collect(filterTar(sourceOf(archive), () => 'keep')))).rejects.toThrow("the archive entry 'data/f' gave 10 bytes, its header says 1024");
    // The artifact check (verify, and every restore before anything changes) refuses it too.
    await expect(pipeline(sourceOf(archive), new TarChecker())).rejects.toThrow("the entry 'data/f' holds 10 bytes, its header says 1024");
  });

  /**
   * Whatever a hostile archive holds, the tar filterTar writes is read as exactly the entries
   * `decide` saw and kept, by GNU tar (which reads a link's size as content, like node-tar) and
   * by Python's tarfile (which, like Go's archive/tar in Docker, does not): else it fails.
   */
  it('is read by GNU tar and a Go-like reader as exactly the entries decide kept (property)', async () => {
    const entry = fc.record({
      top: fc.constantFrom('data', 'other'),
      kind: fc.constantFrom('File', 'Directory', 'SymbolicLink', 'Link'),
      size: fc.nat({ max: 1500 }),
      /** A link or directory that carries content: a whole hidden entry. */
      carries: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 8 }), async (specs) => {
        const blocks: Buffer[] = [];
        let hostile = false;
        specs.forEach((s, i) => {
          const path = `${s.top}/e${i}${s.kind === 'Directory' ? '/' : ''}`;
          if (s.kind === 'File') blocks.push(rawHeader(path, 'File', s.size), ...body(randomBytes(s.size)));
          else {
            const hidden = s.carries ? Buffer.concat([rawHeader(`smuggled${i}`, 'File', 3), ...body(Buffer.from('x!x'))]) : Buffer.alloc(0);
            blocks.push(rawHeader(path, s.kind, hidden.length, s.kind === 'SymbolicLink' ? 'e0' : s.kind === 'Link' ? `${s.top}/e0` : ''), ...body(hidden));
            // node-tar reads a directory as a header alone (as Go does): no content reaches filterTar.
            if (s.carries && s.top === 'data' && s.kind !== 'Directory') hostile = true;
          }
        });
        const archive = Buffer.concat([...blocks, Buffer.alloc(1024)]);
        const kept: string[] = [];
        const out = filterTar(sourceOf(archive), (e) => {
          if (!e.path.startsWith('data/')) return 'skip';
          kept.push(`${e.type} ${e.path.replace(/\/$/, '')}`);
          return 'keep';
        });
        let bytes: Buffer;
        try {
          bytes = await within(collect(out));
        } catch (err) {
          expect(hostile, String(err)).toBe(true);
          expect(String(err)).toMatch(/bytes of content, which Docker would read as further entries/);
          return;
        }
        expect(hostile).toBe(false);
        const gnuTypes: Record<string, string> = { '-': 'File', d: 'Directory', l: 'SymbolicLink', h: 'Link' };
        const gnu = execFileSync('tar', ['-tvf', '-'], { input: bytes })
          .toString()
          .split('\n')
          .filter(Boolean)
          .map((line) => {
            const [, type, name] = line.match(/^(.)\S* \S+\s+\d+ \S+ \S+ (\S+)/)!;
            return `${gnuTypes[type!]} ${name!.replace(/\/$/, '')}`;
          });
        const goLike = execFileSync('python3', ['-c', 'import sys, tarfile\nfor m in tarfile.open(fileobj=sys.stdin.buffer, mode="r|"): print(m.type.decode(), m.name)'], { input: bytes })
          .toString()
          .split('\n')
          .filter(Boolean)
          .map((line) => {
            const [type, name] = line.split(' ');
            return `${{ '0': 'File', '5': 'Directory', '2': 'SymbolicLink', '1': 'Link' }[type!]} ${name}`;
          });
        expect(gnu).toEqual(kept);
        expect(goLike).toEqual(kept);
      }),
      { numRuns: 40 },
    );
  }, 60_000);
});
