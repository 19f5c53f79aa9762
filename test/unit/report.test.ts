import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { renderReport } from '../../src/core/report.js';

const evil = '"><script>alert(1)</script><x y="';
const manifest = (over: Partial<Manifest>): Manifest =>
  ({
    id: 'stackvault_backup_20261201_020000',
    type: 'daily',
    status: 'ok',
    createdAt: '2026-12-01T02:00:00Z',
    completedAt: '2026-12-01T02:00:09Z',
    services: [{ name: 'postgres', driver: 'postgres', status: 'ok', bytes: 10, rawBytes: 40, durationMs: 1000 }],
    ...over,
  }) as unknown as Manifest;

describe('backup report', () => {
  it('a crafted manifest cannot put markup or script into the page', () => {
    const m = manifest({
      id: evil,
      type: evil as never,
      status: evil as never,
      services: [
        { name: evil, driver: 'x', status: 'failed', error: evil, durationMs: 1 },
        { name: 'ok', driver: 'x', status: 'ok', bytes: 5, durationMs: evil as never, downtimeMs: 1000 },
      ] as never,
    });
    const html = renderReport({ dir: evil, backups: [{ manifest: m, path: '/x', bytes: 5 }], now: new Date('2026-12-04T00:00:00Z') });
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<x ');
    expect(html).toContain('&lt;script&gt;');
  });

  it('has one chart per measure, with a point per backup a service was in', () => {
    const backups = [manifest({ createdAt: '2026-12-02T02:00:00Z' }), manifest({})].map((m) => ({ manifest: m, path: '/x', bytes: 10 }));
    const html = renderReport({ dir: '/b', backups, now: new Date('2026-12-04T00:00:00Z') });
    expect(/data-series="postgres"[^>]*points="([^"]+)"/.exec(html)?.[1]?.split(' ')).toHaveLength(2);
    expect(html).toContain('id="chart-downtime" class="muted">No data yet.');
  });

  it("shows a consistent backup's window: how long and which containers were paused", () => {
    const consistent = manifest({ consistency: { at: '2026-12-01T02:00:01Z', pausedMs: 1234, paused: ['bot-app-1', evil] } });
    const html = renderReport({ dir: '/b', backups: [consistent, manifest({ id: 'plain' })].map((m) => ({ manifest: m, path: '/x', bytes: 10 })), now: new Date('2026-12-04T00:00:00Z') });
    expect(html).toContain('<th>one point (consistent)</th>');
    expect(html).toContain('<td>1.2 s, bot-app-1, &quot;&gt;&lt;script&gt;');
    expect(html).toMatch(/<td>plain<\/td>(<td[^>]*>[^<]*<\/td>){4}<td>-<\/td>/);
    // A crafted record does not stop the report.
    const crafted = manifest({ consistency: { at: 'x', pausedMs: 'soon', paused: 'x' } as never });
    expect(renderReport({ dir: '/b', backups: [{ manifest: crafted, path: '/x', bytes: 1 }], now: new Date('2026-12-04T00:00:00Z') })).toContain('<td>?, nothing paused</td>');
  });

  // Each of these once ended `backup report` with "unexpected error" (exit 1) for the whole directory.
  it.each([
    ['a status that is a number', { status: 5 as never }],
    ['a verification whose time is a number', { verifications: [{ at: 5, ok: true, deep: false }] as never }],
    ['drills that are text', { drills: 'x' as never }],
    ['drills holding null', { drills: [null] as never }],
    ['a createdAt that is a number', { createdAt: 5 as never }],
    ['services that are not a list', { services: 'x' as never }],
    ['a service that is null', { services: [null, { name: 'postgres', driver: 'postgres', status: 'ok', bytes: 10, durationMs: 1 }] as never }],
    ['sizes and durations as text', { services: [{ name: 'postgres', driver: 'postgres', status: 'ok', bytes: '10', rawBytes: '40', durationMs: 'slow', downtimeMs: 'long' }] as never }],
    ['a name that is an object', { services: [{ name: { a: 1 }, driver: 'postgres', status: 'failed', error: 7, durationMs: 1 }] as never }],
    ['a consistency record that is text', { consistency: 'x' as never }],
  ])('a manifest with %s still gives a page', (_what, over) => {
    const backups = [manifest(over), manifest({ createdAt: '2026-11-30T02:00:00Z' })].map((m) => ({ manifest: m, path: '/x', bytes: 10 }));
    const html = renderReport({ dir: '/b', backups, now: new Date('2026-12-04T00:00:00Z') });
    expect(html).toContain('</html>');
    expect(html).not.toContain('NaN');
  });
});
