/** Cuts bytes at the given offsets (taken modulo the length) into chunks, empty chunks dropped: for tests of any chunk boundary. */
export function chunked(bytes: Buffer, cuts: number[]): Buffer[] {
  const offsets = [...new Set([0, ...cuts.map((c) => c % (bytes.length + 1)), bytes.length])].sort((a, b) => a - b);
  return offsets
    .slice(1)
    .map((end, i) => bytes.subarray(offsets[i], end))
    .filter((c) => c.length > 0);
}
