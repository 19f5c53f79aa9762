import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadEntry } from 'tar';
import { TarChecker } from '../util/tar-stream.js';
import { type Fingerprint, MultisetDigest } from './fingerprint.js';

export const FILES_FINGERPRINT_METHOD = 'files-v1';

/** Parts group files by their first three path components, so a difference names a directory. */
const GROUP_DEPTH = 3;

/**
 * The fingerprint of a file tree carried by a tar stream: per directory group, a multiset of
 * (type, path, mode, owner, size, link target, SHA-256 of the content). Modification times
 * are not content and are left out; so is the order of entries.
 */
export class TarFingerprinter {
  private readonly groups = new Map<string, MultisetDigest>();
  private pending = 0;
  readonly checker: TarChecker;

  /** `onEntry` sees every entry's header as it streams by (e.g. to check where it would go). */
  constructor(onEntry?: (entry: ReadEntry) => void) {
    this.checker = new TarChecker((entry) => {
      onEntry?.(entry);
      this.entry(entry);
    });
  }

  private entry(e: ReadEntry): void {
    const path = e.path.replace(/^\.\//, '').replace(/\/$/, '');
    if (!path || e.type === 'ExtendedHeader' || e.type === 'GlobalExtendedHeader') return;
    const group = path.split('/').slice(0, GROUP_DEPTH).join('/');
    const digest = this.groups.get(group) ?? new MultisetDigest();
    this.groups.set(group, digest);
    const hash = createHash('sha256');
    this.pending++;
    e.on('data', (c: Buffer) => hash.update(c));
    e.on('end', () => {
      const facts = `${e.type}\0${path}\0${((e.mode ?? 0) & 0o7777).toString(8)}\0${e.uid ?? 0}:${e.gid ?? 0}\0${e.size ?? 0}\0${e.linkpath ?? ''}\0`;
      digest.add(createHash('sha256').update(facts).update(hash.digest()).digest());
      this.pending--;
    });
  }

  result(): Fingerprint {
    if (this.pending) throw new Error('the archive ended inside an entry');
    const parts: Record<string, string> = {};
    for (const [group, digest] of this.groups) parts[`files ${group}`] = digest.toString();
    return { method: FILES_FINGERPRINT_METHOD, parts };
  }
}

/** Reads a whole tar stream and returns its fingerprint. */
export async function fingerprintTar(source: Readable): Promise<Fingerprint> {
  const f = new TarFingerprinter();
  await pipeline(source, f.checker);
  return f.result();
}
