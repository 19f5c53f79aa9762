import { describe, expect, it } from 'vitest';
import { lastDurations, longestFirst } from '../../src/core/lane-order.js';

const same = (s: string) => s;

describe('longestFirst', () => {
  it.each([
    { name: 'no history keeps discovery order', items: ['app', 'chroma', 'redis'], last: {}, want: ['app', 'chroma', 'redis'] },
    {
      name: 'the longest last time starts first',
      items: ['app', 'chroma', 'neo4j', 'postgres', 'redis'],
      last: { app: 10_000, chroma: 9_600, neo4j: 10_200, postgres: 14_500, redis: 5_200 },
      want: ['postgres', 'neo4j', 'app', 'chroma', 'redis'],
    },
    { name: 'a service no backup had comes first', items: ['redis', 'postgres', 'new'], last: { postgres: 14_000, redis: 5_000 }, want: ['new', 'postgres', 'redis'] },
    { name: 'ties keep discovery order', items: ['b', 'a', 'c'], last: { a: 5, b: 5, c: 5 }, want: ['b', 'a', 'c'] },
    { name: 'several unknown keep their order among themselves', items: ['x', 'known', 'y'], last: { known: 1 }, want: ['x', 'y', 'known'] },
    { name: 'a zero duration is known, and last', items: ['zero', 'one'], last: { zero: 0, one: 1 }, want: ['one', 'zero'] },
    { name: 'empty', items: [], last: { a: 1 }, want: [] },
  ])('$name', ({ items, last, want }) => {
    expect(longestFirst(items, same, new Map(Object.entries(last)))).toEqual(want);
  });

  it('does not change its input', () => {
    const items = ['a', 'b'];
    longestFirst(items, same, new Map([['b', 9]]));
    expect(items).toEqual(['a', 'b']);
  });
});

describe('lastDurations', () => {
  const svc = (name: string, durationMs: number, status: 'ok' | 'failed' | 'skipped' = 'ok') => ({ name, durationMs, status }) as never;
  it.each([
    { name: 'none', manifests: [], want: {} },
    { name: 'the newest backup that has the service wins', manifests: [[svc('pg', 9)], [svc('pg', 3), svc('redis', 2)]], want: { pg: 9, redis: 2 } },
    { name: 'a failed or skipped service is no measure', manifests: [[svc('pg', 1, 'failed'), svc('app', 0, 'skipped')], [svc('pg', 7)]], want: { pg: 7 } },
  ])('$name', ({ manifests, want }) => {
    expect(Object.fromEntries(lastDurations(manifests.map((services) => ({ services }))))).toEqual(want);
  });
});
