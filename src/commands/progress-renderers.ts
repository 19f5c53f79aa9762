import chalk from 'chalk';
import ora, { type Ora } from 'ora';
import type { ServiceEntry } from '../core/manifest.js';
import type { ProgressSink } from '../core/progress.js';
import { statusMark } from '../core/backup-info.js';
import { formatBytes, formatDuration, formatRate } from '../util/format.js';
import { shown } from '../util/terminal.js';

/**
 * Service names, artifact names, errors and every logged message come from container labels,
 * a manifest or a store's own output: each line is escaped whole (`shown`), before any colour,
 * so no control character of theirs (ESC, OSC, BEL, a newline that forges a line) reaches the
 * terminal. The renderers add their own line ends.
 */
function doneLine(e: ServiceEntry): string {
  const down = e.downtimeMs !== undefined ? `, down ${formatDuration(e.downtimeMs)}` : '';
  if (e.status === 'ok') {
    const hot = e.hot ? ' (copied while running)' : '';
    return shown(
      `${statusMark(e)} ${e.name}: ${formatBytes(e.rawBytes ?? 0)} -> ${e.artifact} ${formatBytes(e.bytes ?? 0)} in ${formatDuration(e.durationMs)} (${formatRate(e.rawBytes ?? 0, e.durationMs)}${down})${hot}`,
    );
  }
  return shown(`${statusMark(e)} ${e.name}: ${e.status}: ${e.error ?? ''}${down ? ` (${down.slice(2)})` : ''}`);
}

/** A service's warnings (e.g. killed on stop), one line each; first why a restore would refuse it. */
const warningLines = (e: ServiceEntry) =>
  [...(e.restoreRefuses !== undefined ? [`a restore would refuse this backup: ${e.restoreRefuses}`] : []), ...(e.warnings ?? [])].map((w) => shown(`warning: ${e.name}: ${w}`));

/** Plain lines, for pipes, logs and cron. */
export function plainProgress(write: (line: string) => void): ProgressSink {
  return {
    serviceStarted: (s, activity) => write(shown(`${s}: ${activity}`)),
    serviceBytes: () => undefined,
    serviceDone: (e) => {
      for (const l of [doneLine(e), ...warningLines(e)]) write(l);
    },
    warn: (m) => write(shown(`warning: ${m}`)),
    info: (m) => write(shown(m)),
  };
}

/** A live block with one line per running service (bytes and rate); finished ones print above it. */
export function ttyProgress(stream: NodeJS.WriteStream): ProgressSink & { stop(): void } {
  const running = new Map<string, { started: number; bytes: number }>();
  let spinner: Ora | undefined;
  const width = () => Math.max(0, ...[...running.keys()].map((s) => shown(s).length));
  // ora redraws multi-line text as a block: the first line follows the spinner, the rest are indented.
  const text = () => [...running].map(([s, r]) => `${shown(s).padEnd(width())}  ${formatBytes(r.bytes).padStart(9)}  ${chalk.dim(formatRate(r.bytes, Date.now() - r.started))}`).join('\n  ');
  const timer = setInterval(() => {
    if (spinner) spinner.text = text();
  }, 250);
  timer.unref();
  const above = (line: string) => {
    if (spinner) spinner.clear();
    stream.write(`${line}\n`);
    if (spinner && running.size > 0) spinner.render();
  };
  return {
    serviceStarted(s) {
      running.set(s, { started: Date.now(), bytes: 0 });
      // stdin belongs to the confirmation prompt; ora must not grab it.
      spinner ??= ora({ stream, text: text(), discardStdin: false }).start();
    },
    serviceBytes(s, n) {
      const r = running.get(s);
      if (r) r.bytes = n;
    },
    serviceDone(e) {
      running.delete(e.name);
      above(e.status === 'ok' ? doneLine(e) : chalk.red(doneLine(e)));
      for (const w of warningLines(e)) above(chalk.yellow(w));
      if (running.size === 0 && spinner) {
        spinner.stop();
        spinner = undefined;
      }
    },
    warn: (m) => above(chalk.yellow(shown(`warning: ${m}`))),
    info: (m) => above(chalk.dim(shown(m))),
    stop() {
      clearInterval(timer);
      spinner?.stop();
    },
  };
}

/**
 * Live lines on a real terminal, plain lines otherwise (pipes, cron, CI). A terminal that
 * reports no width (some ptys) gets plain lines too: redrawing needs the width, and without it
 * the spinner would compute an unbounded number of lines to clear.
 */
export function progressFor(out: NodeJS.WriteStream): ProgressSink & { stop?(): void } {
  const live = out.isTTY && !process.env.CI && (out.columns ?? 0) >= 20;
  return live ? ttyProgress(out) : plainProgress((line) => out.write(`${line}\n`));
}
