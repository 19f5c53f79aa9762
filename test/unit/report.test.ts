import { describe, expect, it } from 'vitest';
import { manifestProblem } from '../../src/core/manifest.js';
import { renderReport } from '../../src/core/report.js';
import { ANY_SHA256, catalogRecord, writtenManifest, writtenService } from '../support/manifests.js';

const evil = '"><script>alert(1)</script><x y="';
const NOW = new Date('2026-12-04T00:00:00Z');
const ID = 'stackvault_backup_20261201_020000';
const postgres = (over: Record<string, unknown> = {}) =>
  writtenService({ name: 'postgres', driver: 'postgres', artifact: 'postgres.sql.gz', sha256: ANY_SHA256, bytes: 10, rawBytes: 40, durationMs: 1000, ...over });
/** A valid backup (as the catalog hands it on) of one postgres service, taken at its id's time. */
const backup = (id = ID, over: Record<string, unknown> = {}, services = [postgres()]) => catalogRecord(id, services, over);

describe('backup report', () => {
  it('text a manifest may hold (service names, reasons, paused containers) and the directory cannot put markup or script into the page', () => {
    const b = backup(ID, { consistency: { at: '2026-12-01T02:00:01Z', pausedMs: 1, paused: [evil] } }, [
      writtenService({ name: evil, driver: 'x', status: 'failed', error: evil }),
      postgres({ name: 'ok', downtimeMs: 1000 }),
    ]);
    const html = renderReport({ dir: evil, backups: [b], now: NOW });
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<x ');
    expect(html).toContain('&lt;script&gt;');
  });

  it('backups dated ahead of this clock are counted and listed in a table of their own, on no chart, never the newest', () => {
    const future = 'stackvault_backup_20311201_020000'; // made while a clock ran five years ahead
    const html = renderReport({ dir: '/b', backups: [backup()], ahead: [backup(future, {}, [postgres(), writtenService({ name: 'redis', status: 'failed', error: 'disk full' })])], now: NOW });
    expect(html).toContain('Backups<b>2</b>1 dated ahead of this clock');
    expect(html).toContain('On disk<b>20 B</b>');
    expect(html).toMatch(new RegExp(`<h2 id="ahead">Dated ahead of this clock</h2>[\\s\\S]*<td>${future}</td>`));
    expect(html).toContain(`<td>${future}</td><td>redis</td><td>failed: disk full</td>`);
    expect(html).toContain('Newest<b>2026-12-01 02:00</b>');
    // One point: the chart's time axis is not stretched to 2031.
    expect(/data-series="postgres"[^>]*points="([^"]+)"/.exec(html)?.[1]?.split(' ')).toHaveLength(1);
    // A point's title ends with its time in brackets: `postgres: 10 B (2031-12-01T02:00)</title>`.
    expect(html).not.toContain('(2031-12-01T02:00)</title>');
    expect(html).toContain('(2026-12-01T02:00)</title>');
  });

  it('has one chart per measure, with a point per backup a service was in', () => {
    const backups = [backup('stackvault_backup_20261202_020000'), backup()];
    const html = renderReport({ dir: '/b', backups, now: NOW });
    expect(/data-series="postgres"[^>]*points="([^"]+)"/.exec(html)?.[1]?.split(' ')).toHaveLength(2);
    expect(html).toContain('id="chart-downtime" class="muted">No data yet.');
  });

  it("shows a consistent backup's window: how long and which containers were paused", () => {
    const consistent = backup(ID, { consistency: { at: '2026-12-01T02:00:01Z', pausedMs: 1234, paused: ['bot-app-1', evil] } });
    const plain = 'stackvault_backup_20261130_020000';
    const html = renderReport({ dir: '/b', backups: [consistent, backup(plain)], now: NOW });
    expect(html).toContain('<th>one point (consistent)</th>');
    expect(html).toContain('<td>1.2 s, bot-app-1, &quot;&gt;&lt;script&gt;');
    expect(html).toMatch(new RegExp(`<td>${plain}</td>(<td[^>]*>[^<]*</td>){4}<td>-</td>`));
  });

  it('shows the last verification and drill, and the failures with their reasons', () => {
    const checked = backup(ID, {
      verifications: [{ at: '2026-12-01T03:00:00.000Z', deep: true, ok: true, services: { postgres: { ok: true } } }],
      drills: [{ at: '2026-12-01T04:00:00.000Z', ok: false, durationMs: 5, services: { postgres: { ok: false, check: 'rows differ' } } }],
    });
    const partial = backup('stackvault_backup_20261130_020000', {}, [postgres(), writtenService({ name: 'redis', status: 'failed', error: 'no space left' })]);
    const html = renderReport({ dir: '/b', backups: [checked, partial], now: NOW });
    expect(html).toContain('<td>ok deep 2026-12-01T03:00</td><td>FAILED 2026-12-01T04:00</td>');
    expect(html).toContain('<td>redis</td><td>failed: no space left</td>');
    expect(html).toContain(`Last fully successful<b>2026-12-01 02:00</b>`);
  });

  // Each of these once ended `backup report` with "unexpected error" (exit 1) for the whole
  // directory. The report now reads the catalog's manifests as they are: the catalog refuses
  // these (they are listed as incomplete), so none reaches the page.
  it.each([
    ['a status that is a number', { status: 5 }],
    ['a verification whose time is a number', { verifications: [{ at: 5, ok: true, deep: false, services: {} }] }],
    ['drills that are text', { drills: 'x' }],
    ['drills holding null', { drills: [null] }],
    ['a createdAt that is a number', { createdAt: 5 }],
    ['services that are not a list', { services: 'x' }],
    ['a service that is null', { services: [null, postgres()] }],
    ['sizes and durations as text', { services: [postgres({ bytes: '10', rawBytes: '40', durationMs: 'slow', downtimeMs: 'long' })] }],
    ['a name that is an object', { services: [postgres(), writtenService({ name: { a: 1 }, status: 'failed', error: 7 })] }],
    ['a consistency record that is text', { consistency: 'x' }],
    ['a consistency record of the wrong shape', { consistency: { at: 'x', pausedMs: 'soon', paused: 'x' } }],
  ])('a manifest with %s is refused by the catalog before the report reads it', (_what, over) => {
    expect(manifestProblem(writtenManifest(ID, [postgres()], over))).toBeDefined();
  });

  it.each([
    [{ installed: true, cronRunning: true, overdue: true }, 'overdue: no run for more than two intervals since it was installed'],
    [
      { installed: true, cronRunning: true, overdue: true, lastRun: { at: '2026-11-01T02:00:00.000Z', type: 'daily', result: 'ok' as const, durationMs: 1 } },
      'overdue: no run for more than two intervals<',
    ],
    [{ installed: true, cronRunning: true, overdue: false }, undefined],
  ])('says when the schedule is overdue (%j)', (scheduler, text) => {
    const html = renderReport({ dir: '/b', backups: [backup()], scheduler, now: NOW });
    if (text) expect(html).toContain(text);
    else expect(html).not.toContain('overdue:');
  });
});
