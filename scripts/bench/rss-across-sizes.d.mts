/** Types for rss-across-sizes.mjs (plain JavaScript, as the rest of the benchmark). */
export function rssAcrossSizes(here: object, there: object): { changes: Array<{ command: string; change: number }>; worst: number | undefined };
