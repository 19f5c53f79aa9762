/**
 * Issue 11's "peak RSS within 10 % between 1 GB and 4 GB": each command's median peak RSS (its
 * process tree) in this run against another run's at another size, both from the benchmark's
 * `medians`. Commands missing from either run (restore after --no-restore) are left out.
 * Returns the commands' changes as fractions (+0.05 = 5 % more here) and the largest in size.
 */
export function rssAcrossSizes(here, there) {
  const commands = [
    ['create', (m) => m.default?.rss?.[1]],
    ['create --compress gzip', (m) => m.gzip?.rss?.[1]],
    ['create --consistent', (m) => m.consistent?.rss?.[1]],
    ['restore', (m) => m.restore?.rss?.[1]],
    ['verify --deep', (m) => m.restore?.verifyRss?.[1]],
  ];
  const changes = [];
  for (const [command, peak] of commands) {
    const a = peak(here);
    const b = peak(there);
    if (a > 0 && b > 0) changes.push({ command, change: a / b - 1 });
  }
  const worst = changes.length ? Math.max(...changes.map((c) => Math.abs(c.change))) : undefined;
  return { changes, worst };
}
