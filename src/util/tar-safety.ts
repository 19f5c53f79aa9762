import { posix } from 'node:path';

export interface TarEntryFacts {
  path: string;
  type: string;
  linkpath?: string;
}

const ALLOWED_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link', 'ExtendedHeader', 'GlobalExtendedHeader', 'NextFileHasLongPath', 'NextFileHasLongLinkpath']);

/**
 * Why an archive entry must not be extracted, or undefined when it is safe. Every entry must
 * stay under its own top-level directory (the archived path, e.g. `data/`): no absolute
 * paths, no `..`, no links that resolve outside, no device files or FIFOs. Pure; tested.
 */
export function unsafeEntry(entry: TarEntryFacts): string | undefined {
  const { path, type, linkpath } = entry;
  if (!ALLOWED_TYPES.has(type)) return `${type} entries (device files, FIFOs) are not allowed`;
  if (path.startsWith('/')) return 'absolute path';
  const normal = posix.normalize(path);
  if (normal === '..' || normal.startsWith('../') || path.split('/').includes('..')) return 'path contains ..';
  const top = normal.split('/')[0]!;
  if (type === 'SymbolicLink' || type === 'Link') {
    if (!linkpath) return 'link without a target';
    // Symlinks resolve from their own directory; hard links name a path inside the archive.
    const base = type === 'SymbolicLink' ? posix.dirname(normal) : '.';
    const resolved = linkpath.startsWith('/') ? posix.normalize(linkpath.slice(1)) : posix.normalize(posix.join(base, linkpath));
    if (resolved === '..' || resolved.startsWith('../') || resolved.split('/')[0] !== top) {
      return `${type === 'Link' ? 'hard link' : 'symlink'} to ${linkpath} points outside ${top}/`;
    }
  }
  return undefined;
}
