import type { Manifest, ServiceEntry } from './manifest.js';
import { formatBytes, formatDate, formatDuration } from '../util/format.js';

/** ⚠️: backed up whole, but stackvault's restore would refuse it (see `restoreRefuses`). */
export const statusMark = (s: ServiceEntry) => (s.status === 'ok' ? (s.restoreRefuses === undefined ? '✅' : '⚠️') : s.status === 'skipped' ? '⏭️' : '❌');

/** The human-readable summary written next to manifest.json. */
export function renderBackupInfo(m: Manifest): string {
  const width = Math.max(8, ...m.services.map((s) => s.name.length));
  const lines = [
    `stackvault backup ${m.id}`,
    `Date:     ${formatDate(new Date(m.createdAt))}`,
    `Type:     ${m.type}`,
    `Comment:  ${m.comment || '-'}`,
    `Status:   ${m.status}`,
    `Tool:     ${m.tool.name} ${m.tool.version}, Docker ${m.docker.version}, host ${m.host}`,
    ...(m.consistency
      ? [
          `Point:    one for every store, at ${formatDate(new Date(m.consistency.at))}; paused ${m.consistency.paused.join(', ') || 'nothing'} for ${formatDuration(m.consistency.pausedMs)}${m.consistency.copiedInWindow ? ` (copied whole in the window: ${m.consistency.copiedInWindow.join(', ')})` : ''}`,
        ]
      : []),
    '',
    'Services:',
    ...m.services.map((s) => {
      const name = s.name.padEnd(width);
      if (s.status !== 'ok') return `  ${statusMark(s)} ${name}  ${s.status}: ${s.error ?? ''}`;
      const hot = s.hot ? ', copied while running' : '';
      const down = s.downtimeMs !== undefined ? `, down ${formatDuration(s.downtimeMs)}` : '';
      return [
        `  ${statusMark(s)} ${name}  ${s.artifact}  ${formatBytes(s.bytes ?? 0)}  (${s.driver}, ${formatDuration(s.durationMs)}${down}${hot})`,
        ...(s.restoreRefuses !== undefined ? [`     a restore would refuse this backup: ${s.restoreRefuses}`] : []),
        ...(s.warnings ?? []).map((w) => `     warning: ${w}`),
      ].join('\n');
    }),
    '',
    `Total: ${formatBytes(m.services.reduce((t, s) => t + (s.bytes ?? 0), 0))}`,
    `Each artifact's SHA-256 is in manifest.json; check them with: ./bot.sh backup verify ${m.id}`,
    '',
  ];
  return lines.join('\n');
}
