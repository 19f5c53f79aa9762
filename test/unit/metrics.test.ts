import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { renderMetrics } from '../../src/core/metrics.js';

const manifest = (id: string, completedAt: string, status: 'ok' | 'partial', services: Partial<Manifest['services'][number]>[]): Manifest =>
  ({ id, completedAt, status, services: services.map((s) => ({ durationMs: 1500, project: 'bot', ...s })) }) as unknown as Manifest;

describe('Prometheus metrics of a run', () => {
  const good = manifest('b2', '2026-12-01T02:00:10Z', 'ok', [{ name: 'postgres', driver: 'postgres', status: 'ok', bytes: 1000, rawBytes: 4000 }]);
  const partial = manifest('b3', '2026-12-02T02:00:10Z', 'partial', [
    { name: 'postgres', driver: 'postgres', status: 'ok', bytes: 1200, rawBytes: 4800 },
    { name: 'chroma', driver: 'chroma', status: 'failed', downtimeMs: 2500 },
    { name: 'we"ird\\name', driver: 'files', status: 'ok', bytes: 5, engine: 'nas' },
  ]);
  const record = (m: Manifest) => ({ manifest: m, path: `/b/${m.id}`, bytes: 0 });
  const catalog = { backups: [partial, good].map(record), ahead: [] } as never;

  it.each([
    [
      'a partial run',
      { finishedAt: new Date('2026-12-02T02:00:11Z'), durationMs: 11_000, exitCode: 3, manifest: partial },
      [
        'stackvault_last_run_timestamp_seconds{project="bot"} 1796176811',
        'stackvault_last_run_duration_seconds{project="bot"} 11',
        'stackvault_last_run_success{project="bot"} 0.5',
        'stackvault_last_run_exit_code{project="bot"} 3',
        'stackvault_last_success_timestamp_seconds{project="bot"} 1796090410',
        'stackvault_backups{project="bot"} 2',
        'stackvault_service_success{service="chroma",driver="chroma",project="bot"} 0',
        'stackvault_service_bytes{service="postgres",driver="postgres",project="bot"} 1200',
        'stackvault_service_raw_bytes{service="postgres",driver="postgres",project="bot"} 4800',
        'stackvault_service_duration_seconds{service="postgres",driver="postgres",project="bot"} 1.5',
        'stackvault_service_downtime_seconds{service="chroma",driver="chroma",project="bot"} 2.5',
        'stackvault_service_bytes{service="we\\"ird\\\\name",driver="files",project="bot",engine="nas"} 5',
      ],
    ],
    [
      'a run that produced nothing',
      { finishedAt: new Date('2026-12-03T02:00:00Z'), durationMs: 500, exitCode: 6 },
      ['stackvault_last_run_success{project="bot"} 0', 'stackvault_last_run_exit_code{project="bot"} 6', 'stackvault_last_success_timestamp_seconds{project="bot"} 1796090410'],
    ],
  ])('%s', (_what, run, lines) => {
    const text = renderMetrics(run, catalog, 'bot');
    for (const line of lines) expect(text.split('\n')).toContain(line);
    expect(text.endsWith('\n')).toBe(true);
    // Every sample has its HELP and TYPE first, once.
    const names = [
      ...new Set(
        text
          .split('\n')
          .filter((l) => l && !l.startsWith('#'))
          .map((l) => l.split(/[{ ]/)[0]),
      ),
    ];
    for (const n of names) expect(text.match(new RegExp(`^# TYPE ${n} gauge$`, 'gm'))).toHaveLength(1);
  });

  it('backups dated ahead of this clock are counted, said apart, and never the last success: its age is never below zero', () => {
    // Made in 2031 by a clock that ran ahead; this run ends in 2026.
    const future = manifest('b9', '2031-12-02T02:00:10Z', 'ok', [{ name: 'postgres', driver: 'postgres', status: 'ok', bytes: 1 }]);
    // Within the hour two clocks may differ by: placed among the others, but not after this run.
    const skewed = manifest('b4', '2026-12-03T02:20:00Z', 'ok', [{ name: 'postgres', driver: 'postgres', status: 'ok', bytes: 1 }]);
    const finishedAt = new Date('2026-12-03T02:00:00Z');
    const lines = (c: unknown) => renderMetrics({ finishedAt, durationMs: 500, exitCode: 6 }, c as never, 'bot').split('\n');
    const withFuture = lines({ backups: [partial, good].map(record), ahead: [record(future)] });
    expect(withFuture).toContain('stackvault_backups{project="bot"} 3');
    expect(withFuture).toContain('stackvault_backups_ahead_of_clock{project="bot"} 1');
    expect(withFuture).toContain('stackvault_last_success_timestamp_seconds{project="bot"} 1796090410');
    const withSkewed = lines({ backups: [skewed, partial, good].map(record), ahead: [] });
    expect(withSkewed).toContain(`stackvault_last_success_timestamp_seconds{project="bot"} ${finishedAt.getTime() / 1000}`);
    expect(withSkewed).toContain('stackvault_backups_ahead_of_clock{project="bot"} 0');
  });

  it('a run that produced nothing has no service samples', () => {
    expect(renderMetrics({ finishedAt: new Date(), durationMs: 1, exitCode: 1 }, { backups: [], ahead: [] }, undefined)).not.toContain('stackvault_service_');
  });
});
