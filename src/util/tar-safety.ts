import { posix } from 'node:path';

export interface TarEntryFacts {
  path: string;
  type: string;
  linkpath?: string;
  /** The size in the entry's header (node-tar reads that many bytes as its content). */
  size?: number;
}

const ALLOWED_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link', 'ExtendedHeader', 'GlobalExtendedHeader', 'NextFileHasLongPath', 'NextFileHasLongLinkpath']);

/**
 * The types whose content follows their header. Every other entry is a header alone for Go's
 * archive/tar (Docker), whatever its size says, while node-tar and GNU tar read `size` bytes as
 * its content: Docker would read those bytes as further entries that no check saw.
 */
export const CONTENT_TYPES: ReadonlySet<string> = new Set(['File', 'OldFile', 'ContiguousFile']);

/** Whether a path inside an archive is normal: relative, without `.`, `..` or empty segments (posix.normalize leaves it as it is). */
export const isNormalPath = (path: string): boolean => path !== '' && path.split('/').every((s) => s !== '' && s !== '.' && s !== '..');

/**
 * The entry's path as one normal path (a directory's one trailing slash dropped, as Docker
 * writes them), or undefined when it is not normal: `data/./b` or `data//b` name `data/b` on
 * disk but not in a comparison of the text.
 */
export function normalEntryPath(path: string, type: string): string | undefined {
  const p = type === 'Directory' && path.endsWith('/') ? path.slice(0, -1) : path;
  return isNormalPath(p) ? p : undefined;
}

/**
 * Why an archive entry must not be extracted, or undefined when it is safe. Every entry must
 * stay under its own top-level directory (the archived path, e.g. `data/`): a normal path (no
 * absolute paths, no `..`, `.` or empty segments), no content on an entry that has none for
 * Docker, symlinks that cannot climb (no `..` in their target: through other links a lexically
 * harmless `a/..` can lead anywhere), hard links to a normal path in the same top, no device
 * files or FIFOs. Pure; tested. The rules that need the entries before (behind a symlink, hard
 * links to a file the archive made) are EntryGuard's.
 */
export function unsafeEntry(entry: TarEntryFacts): string | undefined {
  const { path, type, linkpath, size } = entry;
  if (!ALLOWED_TYPES.has(type)) return `${type} entries (device files, FIFOs) are not allowed`;
  if (path.startsWith('/')) return 'absolute path';
  if (path.split('/').includes('..')) return 'path contains ..';
  const normal = normalEntryPath(path, type);
  if (normal === undefined) return "path is not in normal form (it has a '.' or an empty segment)";
  if (!CONTENT_TYPES.has(type) && (size ?? 0) !== 0) return `a ${type} entry with ${size} bytes of content, which Docker would read as further entries`;
  const top = normal.split('/')[0]!;
  if (type === 'SymbolicLink' || type === 'Link') {
    if (!linkpath) return 'link without a target';
    const what = type === 'Link' ? 'hard link' : 'symlink';
    if (linkpath.split('/').includes('..')) return `${what} to ${linkpath} uses '..', which could climb out through other links`;
    if (type === 'Link') {
      // Docker makes a hard link to this path inside the archive, so it must be one as written.
      if (!isNormalPath(linkpath)) return `hard link to ${linkpath} is not a normal path inside the archive`;
      if (linkpath.split('/')[0] !== top) return `hard link to ${linkpath} points outside ${top}/`;
      return undefined;
    }
    // A symlink resolves from its own directory; an absolute one names the archive's top.
    const resolved = linkpath.startsWith('/') ? posix.normalize(linkpath.slice(1)) : posix.normalize(posix.join(posix.dirname(normal), linkpath));
    if (resolved.split('/')[0] !== top) return `symlink to ${linkpath} points outside ${top}/`;
  }
  return undefined;
}
