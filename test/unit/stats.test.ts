import { describe, expect, it } from 'vitest';
import type { BackupRecord } from '../../src/core/catalog.js';
import type { Manifest, ServiceEntry } from '../../src/core/manifest.js';
import { computeStats } from '../../src/core/stats.js';

const svc = (name: string, status: ServiceEntry['status'], bytes = 0, rawBytes = 0, downtimeMs?: number): ServiceEntry => ({
  name,
  container: name,
  containerId: name,
  image: 'x',
  driver: 'postgres',
  status,
  bytes,
  rawBytes,
  durationMs: 1,
  ...(downtimeMs !== undefined ? { downtimeMs } : {}),
});
const rec = (id: string, createdAt: string, type: Manifest['type'], services: ServiceEntry[]): BackupRecord => ({
  path: id,
  bytes: 0,
  manifest: {
    schemaVersion: 1,
    id,
    createdAt,
    completedAt: createdAt,
    type,
    comment: '',
    status: services.every((s) => s.status === 'ok') ? 'ok' : 'partial',
    tool: { name: 'stackvault', version: '0' },
    docker: { version: '', apiVersion: '' },
    host: 'h',
    services,
  },
});

/** A key that, on a plain object, is the prototype. */
const PROTO = '__proto__';

describe('stats', () => {
  it('sums per type and service, counts failures, finds the last fully successful backup', () => {
    const backups = [
      rec('c', '2026-11-03T00:00:00Z', 'daily', [svc('pg', 'failed'), svc('redis', 'ok', 10, 40)]),
      rec('b', '2026-11-02T00:00:00Z', 'manual', [svc('pg', 'ok', 100, 500), svc('redis', 'ok', 10, 30)]),
      rec('a', '2026-11-01T00:00:00Z', 'daily', [svc('pg', 'ok', 50, 250)]),
    ];
    const s = computeStats(backups, 2);
    expect(s.backups).toBe(3);
    expect(s.bytes).toBe(170);
    expect(s.rawBytes).toBe(820);
    expect(s.compressionRatio).toBe(4.82);
    expect(s.byType.daily).toEqual({ count: 2, bytes: 60, rawBytes: 290 });
    expect(s.byService.pg).toEqual({ count: 2, bytes: 150, rawBytes: 750, failed: 1 });
    expect(s.oldest?.id).toBe('a');
    expect(s.newest?.id).toBe('c');
    expect(s.lastSuccessful).toEqual({ id: 'b', createdAt: '2026-11-02T00:00:00Z', type: 'manual' });
    expect(s.incomplete).toBe(2);
  });
  it('downtime per service: of its newest backup, and the longest; none for services never stopped', () => {
    const backups = [
      rec('c', '2026-11-03T00:00:00Z', 'daily', [svc('neo4j', 'ok', 1, 1, 400), svc('pg', 'ok', 1, 1)]),
      rec('b', '2026-11-02T00:00:00Z', 'daily', [svc('neo4j', 'failed', 0, 0, 9000)]),
      rec('a', '2026-11-01T00:00:00Z', 'daily', [svc('neo4j', 'ok', 1, 1, 5200)]),
    ];
    const s = computeStats(backups, 0);
    expect(s.byService.neo4j).toMatchObject({ lastDowntimeMs: 400, maxDowntimeMs: 5200 });
    expect(s.byService.pg!.lastDowntimeMs).toBeUndefined();
  });
  it('names from manifests are only names: __proto__, toString and constructor change nothing else', () => {
    const proto = { ...svc('__proto__', 'ok', 7, 7), engine: 'EVIL' };
    const backups = [
      rec('c', '2026-11-03T00:00:00Z', '__proto__' as Manifest['type'], [proto, svc('toString', 'ok', 1, 2), svc('constructor', 'failed')]),
      rec('b', '2026-11-02T00:00:00Z', 'daily', [svc('pg', 'ok', 10, 20)]),
    ];
    const s = computeStats(backups, 0);
    expect(({} as Record<string, unknown>).engine).toBeUndefined();
    expect(Object.keys(s.byService).sort()).toEqual(['__proto__', 'constructor', 'pg', 'toString']);
    expect(s.byService.pg).toEqual({ count: 1, bytes: 10, rawBytes: 20, failed: 0 });
    expect(s.byService[PROTO]).toEqual({ count: 1, bytes: 7, rawBytes: 7, failed: 0, engine: 'EVIL' });
    expect(s.byService.toString).toEqual({ count: 1, bytes: 1, rawBytes: 2, failed: 0 });
    expect(s.byService.constructor).toEqual({ count: 0, bytes: 0, rawBytes: 0, failed: 1 });
    expect(Object.keys(s.byType).sort()).toEqual(['__proto__', 'daily']);
    expect([s.bytes, s.rawBytes]).toEqual([18, 29]);
    expect(JSON.parse(JSON.stringify(s)).byService[PROTO].engine).toBe('EVIL');
  });
  it('sizes that are not numbers count as nothing, never as text', () => {
    const s = computeStats([rec('a', '2026-11-01T00:00:00Z', 'daily', [{ ...svc('pg', 'ok'), bytes: '5' as never, rawBytes: Number.NaN }, svc('redis', 'ok', 3, 4)])], 0);
    expect([s.bytes, s.rawBytes, s.byService.pg!.bytes]).toEqual([3, 4, 0]);
  });
  it('handles no backups', () => {
    expect(computeStats([], 0)).toMatchObject({ backups: 0, compressionRatio: null, oldest: undefined, lastSuccessful: undefined });
  });
});
