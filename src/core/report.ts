import { formatBytes as bytes } from '../util/format.js';
import { aheadBackups, type BackupRecord } from './catalog.js';
import { type ConsistencyRecord, type ServiceEntry, succeeded } from './manifest.js';
import type { SchedulerStatus } from './scheduler.js';

/**
 * `backup report`: one self-contained HTML page (no script, no network: charts are SVG drawn
 * here) with the history of a backup directory: size, duration and downtime per service over
 * time, compression, verify and drill results, failures and their reasons, the scheduler's last
 * and next run. Pure: the same input gives the same page.
 */
export function renderReport(input: { dir: string; backups: readonly BackupRecord[]; ahead?: readonly BackupRecord[]; scheduler?: SchedulerStatus; now: Date }): string {
  // The catalog's manifests are validated (manifestProblem): every field has its type, so the
  // page reads them as they are; what a person wrote or a container was named is still escaped.
  const backups = [...input.backups].filter((b) => b.manifest.type !== 'restore-point').reverse(); // oldest first
  // Dated ahead of this clock (the catalog's `ahead`): counted, listed and their failures shown,
  // but in a table of their own and on no chart, whose time axis they would stretch by years.
  const ahead = aheadBackups({ ahead: input.ahead ?? [] });
  const services = [...new Set(backups.flatMap((b) => b.manifest.services.map((s) => s.name)))].sort();
  const series = (value: (s: ServiceEntry) => number | undefined) =>
    services.map((name) => ({
      name,
      points: backups.flatMap((b) => {
        const s = b.manifest.services.find((x) => x.name === name);
        const v = s?.status === 'ok' ? value(s) : undefined;
        return v === undefined ? [] : [[Date.parse(b.manifest.createdAt), v] as [number, number]];
      }),
    }));
  const failures = [...backups, ...ahead].flatMap((b) =>
    b.manifest.services.filter((s) => s.status !== 'ok').map((s) => ({ id: b.manifest.id, service: s.name, why: `${s.status}: ${s.error ?? 'no reason recorded'}` })),
  );
  const newest = input.backups[0]?.manifest;
  const good = input.backups.find((b) => succeeded(b.manifest))?.manifest;
  const sched = input.scheduler;
  const row = (b: BackupRecord) => {
    const m = b.manifest;
    const raw = m.services.reduce((n, s) => n + (s.rawBytes ?? 0), 0);
    const verify = m.verifications?.at(-1);
    const drill = m.drills?.at(-1);
    return `<tr class="${esc(m.status)}"><td>${esc(m.id)}</td><td>${esc(m.type)}</td><td>${esc(m.status)}</td><td class="n">${bytes(b.bytes)}</td><td class="n">${b.bytes ? `${(raw / b.bytes).toFixed(1)}x` : '-'}</td><td>${m.consistency ? windowCell(m.consistency) : '-'}</td><td>${verify ? `${verify.ok ? 'ok' : 'FAILED'} ${verify.deep ? 'deep' : 'checksums'} ${esc(verify.at.slice(0, 16))}` : '-'}</td><td>${drill ? `${drill.ok ? 'ok' : 'FAILED'} ${esc(drill.at.slice(0, 16))}` : '-'}</td><td>${
      m.services
        .filter((s) => s.status !== 'ok')
        .map((s) => esc(s.name))
        .join(', ') || '-'
    }</td></tr>`;
  };
  const rows = [...backups].reverse().map(row);
  const head = '<thead><tr><th>id</th><th>type</th><th>status</th><th>size</th><th>ratio</th><th>one point (consistent)</th><th>verify</th><th>drill</th><th>failed</th></tr></thead>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>stackvault report: ${esc(input.dir)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2430;background:#fff}h1{font-size:20px}h2{font-size:16px;margin-top:28px}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #d8dee8;border-radius:6px;padding:10px 14px;min-width:180px}.card b{display:block;font-size:18px}
table{border-collapse:collapse;margin-top:8px}td,th{border-bottom:1px solid #e4e8ef;padding:4px 10px;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.partial td{background:#fff6e0}svg{border:1px solid #e4e8ef;border-radius:6px;background:#fbfcfe}.legend span{margin-right:14px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
.muted{color:#6a7483}.overdue{color:#b3261e}
</style></head><body>
<h1>stackvault report</h1>
<p class="muted">${esc(input.dir)}, made ${esc(input.now.toISOString().slice(0, 16).replace('T', ' '))} UTC</p>
<div class="cards">
<div class="card">Backups<b>${backups.length + ahead.length}</b>${ahead.length ? `${ahead.length} dated ahead of this clock` : ''}</div>
<div class="card">On disk<b>${bytes([...backups, ...ahead].reduce((n, b) => n + b.bytes, 0))}</b></div>
<div class="card">Newest<b>${newest ? esc(newest.createdAt.slice(0, 16).replace('T', ' ')) : '-'}</b>${newest ? esc(newest.status) : ''}</div>
<div class="card">Last fully successful<b>${good ? esc(good.createdAt.slice(0, 16).replace('T', ' ')) : 'none'}</b></div>
<div class="card">Scheduler<b>${sched?.installed ? esc(sched.words ?? sched.expr ?? 'installed') : 'not installed'}</b>${sched?.lastRun ? `last run ${esc(sched.lastRun.at.slice(0, 16).replace('T', ' '))}: ${esc(sched.lastRun.result)}` : 'no run yet'}${sched?.nextRun ? `<br>next ${esc(sched.nextRun.slice(0, 16).replace('T', ' '))}` : ''}${sched?.overdue ? `<br><strong class="overdue">overdue: no run for more than two intervals${sched.lastRun ? '' : ' since it was installed'}</strong>` : ''}</div>
</div>
<h2>Size per service (compressed)</h2>
${lineChart(
  'size',
  series((s) => s.bytes),
  bytes,
)}
<h2>Duration per service</h2>
${lineChart(
  'duration',
  series((s) => s.durationMs / 1000),
  (v) => `${v.toFixed(1)} s`,
)}
<h2>Downtime per service (stopped or paused for the copy)</h2>
${lineChart(
  'downtime',
  series((s) => (s.downtimeMs === undefined ? undefined : s.downtimeMs / 1000)),
  (v) => `${v.toFixed(1)} s`,
)}
<h2>Backups</h2>
<table>${head}<tbody>
${rows.join('\n')}
</tbody></table>
${
  ahead.length
    ? `<h2 id="ahead">Dated ahead of this clock</h2>
<p class="muted">Made while a clock ran ahead (this host's, set back since, or another host's): whole backups, restored, verified or deleted by their ID, but their dates cannot place them among the others, so they are on no chart and never the newest or last successful one.</p>
<table>${head}<tbody>
${ahead.map(row).join('\n')}
</tbody></table>`
    : ''
}
<h2>Failures</h2>
${failures.length ? `<table><tbody>${failures.map((f) => `<tr><td>${esc(f.id)}</td><td>${esc(f.service)}</td><td>${esc(f.why)}</td></tr>`).join('')}</tbody></table>` : '<p>None.</p>'}
</body></html>
`;
}

/** A consistent backup's window: how long, and which containers were paused. */
function windowCell(window: ConsistencyRecord): string {
  return `${(window.pausedMs / 1000).toFixed(1)} s, ${esc(window.paused.join(', ') || 'nothing')} paused`;
}

const COLORS = ['#2f6fdd', '#d9481c', '#1b9e5a', '#9b3fc4', '#c79100', '#0a8ea0', '#d43f8d', '#5b6b7f'];

/** A line per series over time, drawn as SVG; points carry a <title> for the exact value. */
function lineChart(id: string, series: Array<{ name: string; points: Array<[number, number]> }>, format: (v: number) => string): string {
  const all = series.flatMap((s) => s.points);
  if (!all.length) return `<p id="chart-${id}" class="muted">No data yet.</p>`;
  const [w, h, left, bottom, top, right] = [760, 240, 70, 28, 10, 16];
  const t0 = Math.min(...all.map((p) => p[0]));
  const t1 = Math.max(...all.map((p) => p[0]));
  const max = Math.max(...all.map((p) => p[1])) || 1;
  const x = (t: number) => left + (t1 === t0 ? (w - left - right) / 2 : ((t - t0) / (t1 - t0)) * (w - left - right));
  const y = (v: number) => h - bottom - (v / max) * (h - bottom - top);
  const lines = series
    .filter((s) => s.points.length)
    .map((s, i) => {
      const color = COLORS[i % COLORS.length];
      const pts = s.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
      const dots = s.points
        .map(
          ([t, v]) =>
            `<circle cx="${x(t).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${color}"><title>${esc(s.name)}: ${esc(format(v))} (${new Date(t).toISOString().slice(0, 16)})</title></circle>`,
        )
        .join('');
      return `<polyline class="series" data-series="${esc(s.name)}" fill="none" stroke="${color}" stroke-width="2" points="${pts}"/>${dots}`;
    })
    .join('\n');
  const day = (t: number) => esc(new Date(t).toISOString().slice(0, 16).replace('T', ' '));
  const legend = series
    .filter((s) => s.points.length)
    .map((s, i) => `<span><i style="background:${COLORS[i % COLORS.length]}"></i>${esc(s.name)}</span>`)
    .join('');
  return `<svg id="chart-${id}" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${id} per service">
<line x1="${left}" y1="${h - bottom}" x2="${w - right}" y2="${h - bottom}" stroke="#9aa4b2"/><line x1="${left}" y1="${top}" x2="${left}" y2="${h - bottom}" stroke="#9aa4b2"/>
<text x="${left - 6}" y="${top + 10}" text-anchor="end" font-size="11">${esc(format(max))}</text><text x="${left - 6}" y="${h - bottom}" text-anchor="end" font-size="11">0</text>
<text x="${left}" y="${h - 8}" font-size="11">${day(t0)}</text><text x="${w - right}" y="${h - 8}" text-anchor="end" font-size="11">${day(t1)}</text>
${lines}
</svg><div class="legend">${legend}</div>`;
}

const esc = (s: unknown) => text(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Text from a field that should hold text (the scheduler's state file is not validated): anything else shows as '?'. */
const text = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '?');
