/** The artifact codecs; kept apart from artifact.ts so that declaring flags loads no stream code. */
export type Compression = 'gzip' | 'zstd' | 'none';

/**
 * zstd: smaller than gzip -6 on dumps and store files, and several times faster (README:
 * Performance). gzip stays a choice for machines without `zstd`.
 */
export const DEFAULT_COMPRESSION: Compression = 'zstd';

export const COMPRESSION_EXTENSION: Record<Compression, string> = { gzip: '.gz', zstd: '.zst', none: '' };
