import { describe, expect, it } from 'vitest';
import { manifestProblem } from '../../src/core/manifest.js';
import { computeStats } from '../../src/core/stats.js';
import { ANY_SHA256, catalogRecord, writtenManifest, writtenService } from '../support/manifests.js';

/** A service as a backup records it: an ok one with its artifact's size, a failed one with its reason. */
const svc = (name: string, status: 'ok' | 'failed', bytes = 0, rawBytes = 0, downtimeMs?: number) =>
  writtenService({
    name,
    container: name,
    containerId: name,
    driver: 'postgres',
    status,
    ...(status === 'ok' ? { artifact: 'dump.sql.gz', sha256: ANY_SHA256, bytes, rawBytes } : { error: 'it failed' }),
    ...(downtimeMs !== undefined ? { downtimeMs } : {}),
  });
/** Backups on 1, 2 and 3 November 2026: the id says when. */
const [A, B, C] = ['sv_backup_20261101_000000', 'sv_backup_20261102_000000', 'sv_backup_20261103_000000'];

/** A key that, on a plain object, is the prototype. */
const PROTO = '__proto__';

describe('stats', () => {
  it('sums per type and service, counts failures, finds the last fully successful backup', () => {
    const backups = [
      catalogRecord(C, [svc('pg', 'failed'), svc('redis', 'ok', 10, 40)]),
      catalogRecord(B, [svc('pg', 'ok', 100, 500), svc('redis', 'ok', 10, 30)], { type: 'manual' }),
      catalogRecord(A, [svc('pg', 'ok', 50, 250)]),
    ];
    const s = computeStats(backups, 2);
    expect(s.backups).toBe(3);
    expect(s.bytes).toBe(170);
    expect(s.rawBytes).toBe(820);
    expect(s.compressionRatio).toBe(4.82);
    expect(s.byType.daily).toEqual({ count: 2, bytes: 60, rawBytes: 290 });
    expect(s.byService.pg).toEqual({ count: 2, bytes: 150, rawBytes: 750, failed: 1 });
    expect(s.oldest?.id).toBe(A);
    expect(s.newest?.id).toBe(C);
    expect(s.lastSuccessful).toEqual({ id: B, createdAt: '2026-11-02T00:00:00.000Z', type: 'manual' });
    expect(s.incomplete).toBe(2);
  });
  it('downtime per service: of its newest backup, and the longest; none for services never stopped', () => {
    const backups = [
      catalogRecord(C, [svc('neo4j', 'ok', 1, 1, 400), svc('pg', 'ok', 1, 1)]),
      catalogRecord(B, [svc('neo4j', 'failed', 0, 0, 9000), svc('pg', 'ok', 1, 1)]),
      catalogRecord(A, [svc('neo4j', 'ok', 1, 1, 5200)]),
    ];
    const s = computeStats(backups, 0);
    expect(s.byService.neo4j).toMatchObject({ lastDowntimeMs: 400, maxDowntimeMs: 5200 });
    expect(s.byService.pg!.lastDowntimeMs).toBeUndefined();
  });
  it('service names are any text: __proto__, toString and constructor change nothing else', () => {
    const backups = [catalogRecord(C, [{ ...svc('__proto__', 'ok', 7, 7), engine: 'EVIL' }, svc('toString', 'ok', 1, 2), svc('constructor', 'failed')]), catalogRecord(B, [svc('pg', 'ok', 10, 20)])];
    const s = computeStats(backups, 0);
    expect(({} as Record<string, unknown>).engine).toBeUndefined();
    expect(Object.keys(s.byService).sort()).toEqual(['__proto__', 'constructor', 'pg', 'toString']);
    expect(s.byService.pg).toEqual({ count: 1, bytes: 10, rawBytes: 20, failed: 0 });
    expect(s.byService[PROTO]).toEqual({ count: 1, bytes: 7, rawBytes: 7, failed: 0, engine: 'EVIL' });
    expect(s.byService.toString).toEqual({ count: 1, bytes: 1, rawBytes: 2, failed: 0 });
    expect(s.byService.constructor).toEqual({ count: 0, bytes: 0, rawBytes: 0, failed: 1 });
    expect(Object.keys(s.byType)).toEqual(['daily']);
    expect([s.bytes, s.rawBytes]).toEqual([18, 29]);
    expect(JSON.parse(JSON.stringify(s)).byService[PROTO].engine).toBe('EVIL');
  });
  // Stats reads the catalog's manifests as they are: what it would have to guard against never gets there.
  it.each([
    ['a size that is text', [{ ...svc('pg', 'ok', 1, 1), bytes: '5' }]],
    ['a raw size that is not a number', [{ ...svc('pg', 'ok', 1, 1), rawBytes: Number.NaN }]],
    ['a negative downtime', [svc('pg', 'ok', 1, 1, -5)]],
  ])('a manifest with %s is refused by the catalog before stats reads it', (_what, services) => {
    expect(manifestProblem(writtenManifest(A, services))).toMatch(/services\[0\]\.(bytes|rawBytes|downtimeMs)/);
  });
  it('a type that is not a backup type is refused too (stats keys types by it)', () => {
    expect(manifestProblem(writtenManifest(A, [svc('pg', 'ok', 1, 1)], { type: PROTO }))).toMatch(/type is not a backup type/);
  });
  it('backups dated ahead of this clock count in every total and are listed apart, never as oldest, newest or last successful', () => {
    const future = 'sv_backup_20311103_000000'; // made while a clock ran five years ahead
    const s = computeStats([catalogRecord(B, [svc('pg', 'ok', 100, 500, 10)]), catalogRecord(A, [svc('pg', 'failed'), svc('redis', 'ok', 0, 0)])], 0, [
      catalogRecord(future, [svc('pg', 'ok', 7, 70, 999), svc('redis', 'ok', 1, 2)]),
    ]);
    expect(s.backups).toBe(3);
    expect([s.bytes, s.rawBytes]).toEqual([108, 572]);
    expect(s.byType.daily).toEqual({ count: 3, bytes: 108, rawBytes: 572 });
    expect(s.byService.pg).toEqual({ count: 2, bytes: 107, rawBytes: 570, failed: 1, lastDowntimeMs: 10, maxDowntimeMs: 999 });
    expect(s.byService.redis).toMatchObject({ count: 2, bytes: 1 });
    expect(s.ahead).toEqual([{ id: future, createdAt: '2031-11-03T00:00:00.000Z' }]);
    expect([s.oldest?.id, s.newest?.id, s.lastSuccessful?.id]).toEqual([A, B, B]);
  });
  it('handles no backups', () => {
    expect(computeStats([], 0)).toMatchObject({ backups: 0, compressionRatio: null, oldest: undefined, lastSuccessful: undefined, ahead: [] });
  });
});
