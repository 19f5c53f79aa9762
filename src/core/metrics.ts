import { writeFileAtomic } from '../util/safe-file.js';
import type { Catalog } from './catalog.js';
import type { Manifest } from './manifest.js';

/** One run's outcome, for the metrics file: its manifest when it produced one, else why it failed. */
export interface RunOutcome {
  finishedAt: Date;
  durationMs: number;
  /** 0 ok, 3 partial, anything else failed (the run's exit code). */
  exitCode: number;
  manifest?: Manifest;
}

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const labels = (l: Record<string, string | undefined>) => {
  const set = Object.entries(l).filter((e): e is [string, string] => e[1] !== undefined);
  return set.length ? `{${set.map(([k, v]) => `${k}="${esc(v)}"`).join(',')}}` : '';
};

/**
 * Prometheus text exposition (node_exporter's textfile collector) of the last run and the
 * backup directory: when it ran and how it ended, when a backup last fully succeeded (from the
 * catalog, so a failed run still reports the last good one), and per service of the last run
 * its size, duration, downtime and success. Pure.
 */
export function renderMetrics(run: RunOutcome, catalog: Pick<Catalog, 'backups' | 'ahead'>, project?: string): string {
  const out: string[] = [];
  const metric = (name: string, help: string, samples: Array<[Record<string, string | undefined>, number]>) => {
    if (!samples.length) return;
    out.push(`# HELP stackvault_${name} ${help}`, `# TYPE stackvault_${name} gauge`);
    for (const [l, v] of samples) out.push(`stackvault_${name}${labels(l)} ${Number.isFinite(v) ? v : 'NaN'}`);
  };
  const p = { project };
  const seconds = (d: Date | string) => Math.round(new Date(d).getTime() / 1000);
  metric('last_run_timestamp_seconds', 'When the last backup run ended.', [[p, seconds(run.finishedAt)]]);
  metric('last_run_duration_seconds', 'How long the last backup run took.', [[p, run.durationMs / 1000]]);
  metric('last_run_success', 'Whether the last run backed up every service (1), some (0.5) or none (0).', [[p, run.exitCode === 0 ? 1 : run.exitCode === 3 ? 0.5 : 0]]);
  metric('last_run_exit_code', "The last run's exit code (see --help).", [[p, run.exitCode]]);
  // Never one dated ahead of this clock: its time would make the last success look newer than
  // this run (an age below zero), and hide that nothing has succeeded since. One within the hour
  // the catalog allows two clocks to differ by is placed, but no later than this run's end.
  const good = catalog.backups.find((b) => b.manifest.status === 'ok' && (!project || b.manifest.services.some((s) => s.project === project)));
  if (good)
    metric('last_success_timestamp_seconds', 'When the newest fully successful backup in the directory completed.', [[p, Math.min(seconds(good.manifest.completedAt), seconds(run.finishedAt))]]);
  metric('backups', 'Backups in the directory.', [[p, catalog.backups.length + catalog.ahead.length]]);
  metric('backups_ahead_of_clock', "Backups in the directory dated ahead of this host's clock (made while a clock ran ahead).", [[p, catalog.ahead.length]]);
  const services = run.manifest?.services ?? [];
  const per = (f: (s: Manifest['services'][number]) => number | undefined) =>
    services.flatMap((s): Array<[Record<string, string | undefined>, number]> => {
      const v = f(s);
      return v === undefined ? [] : [[{ service: s.name, driver: s.driver, project: s.project, engine: s.engine }, v]];
    });
  metric(
    'service_success',
    'Whether the service was backed up in the last run.',
    per((s) => (s.status === 'ok' ? 1 : 0)),
  );
  metric(
    'service_bytes',
    "Size of the service's artifact in the last run.",
    per((s) => s.bytes),
  );
  metric(
    'service_raw_bytes',
    "Size of the service's data before compression in the last run.",
    per((s) => s.rawBytes),
  );
  metric(
    'service_duration_seconds',
    "How long the service's backup took in the last run.",
    per((s) => s.durationMs / 1000),
  );
  metric(
    'service_downtime_seconds',
    'How long the service was stopped or paused for its copy in the last run.',
    per((s) => (s.downtimeMs === undefined ? undefined : s.downtimeMs / 1000)),
  );
  return `${out.join('\n')}\n`;
}

/** Writes the file whole or not at all: a scraper never reads half of it (temporary file, then rename). */
export async function writeMetricsFile(file: string, text: string): Promise<void> {
  await writeFileAtomic(file, text, { mode: 0o644 });
}
