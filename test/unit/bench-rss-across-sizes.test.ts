import { describe, expect, it } from 'vitest';
import { rssAcrossSizes } from '../../scripts/bench/rss-across-sizes.mjs';

const medians = (create: number, gzip: number, consistent: number, restore?: [number, number]) => ({
  default: { rss: [create - 1, create] },
  gzip: { rss: [gzip - 1, gzip] },
  consistent: { rss: [consistent - 1, consistent] },
  ...(restore ? { restore: { rss: [0, restore[0]], verifyRss: [0, restore[1]] } } : {}),
});

describe('rssAcrossSizes (the benchmark compares peak RSS with a run at another size)', () => {
  it.each([
    { name: 'flat', here: medians(100, 100, 100), there: medians(100, 100, 100), worst: 0, count: 3 },
    { name: 'the largest change in size wins, up or down', here: medians(105, 88, 110), there: medians(100, 100, 100), worst: 0.12, count: 3 },
    { name: 'restore and verify when both runs have them', here: medians(100, 100, 100, [130, 100]), there: medians(100, 100, 100, [100, 100]), worst: 0.3, count: 5 },
    { name: 'restore left out when one run has none (--no-restore)', here: medians(100, 100, 100), there: medians(100, 100, 100, [300, 300]), worst: 0, count: 3 },
    { name: 'nothing to compare', here: {}, there: medians(100, 100, 100), worst: undefined, count: 0 },
  ])('$name', ({ here, there, worst, count }) => {
    const r = rssAcrossSizes(here, there);
    expect(r.changes).toHaveLength(count);
    if (worst === undefined) expect(r.worst).toBeUndefined();
    else expect(r.worst).toBeCloseTo(worst, 10);
  });

  it('names each command with its change', () => {
    expect(rssAcrossSizes(medians(105, 100, 90), medians(100, 100, 100)).changes.map((c) => [c.command, Math.round(c.change * 100)])).toEqual([
      ['create', 5],
      ['create --compress gzip', 0],
      ['create --consistent', -10],
    ]);
  });
});
