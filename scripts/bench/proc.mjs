// Processes for the benchmark: commands that fail loudly, a clock, and a sampler of a process
// tree's memory read from /proc.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Every child process still running, so Ctrl-C can pass the signal on and wait for them. */
export const children = new Set();
export const state = { aborting: false };

export class CommandError extends Error {}

/**
 * Runs a command and resolves with its stdout (a string, unless `stdout` routes it elsewhere).
 * A non-zero exit, a signal or a spawn error rejects with the command, the exit status and the
 * end of stderr. `input` is written to stdin; `onSpawn(child)` sees the child before it ends.
 */
export function run(cmd, args, opts = {}) {
  if (state.aborting && !opts.evenWhenAborting) return Promise.reject(new CommandError('interrupted'));
  const label = opts.label ?? [cmd, ...args].join(' ').slice(0, 160);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [opts.input === undefined ? 'ignore' : 'pipe', opts.stdout ?? 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd });
    children.add(child);
    const out = [];
    let err = '';
    child.stdout?.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => {
      err = (err + d.toString()).slice(-4000);
      if (opts.echoStderr) process.stderr.write(d);
    });
    child.on('error', (e) => {
      children.delete(child);
      reject(new CommandError(`${label}: could not start: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      children.delete(child);
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new CommandError(`${label}: ${signal ? `killed by ${signal}` : `exit ${code}`}${err.trim() ? `\n  ${err.trim().split('\n').slice(-12).join('\n  ')}` : ''}`));
    });
    if (opts.input !== undefined) {
      child.stdin.on('error', () => {}); // a child that exits early reports through its exit status
      child.stdin.end(opts.input);
    }
    opts.onSpawn?.(child);
  });
}

/** A bash script with -euo pipefail, so a failing stage of a pipeline fails the whole. */
export const bash = (script, opts = {}) => run('bash', ['-euo', 'pipefail', '-c', script], { label: opts.label ?? `bash: ${script.replace(/\s+/g, ' ').slice(0, 140)}`, ...opts });

export const docker = (...args) => run('docker', args).then((s) => s.trim());

export const now = () => performance.now();
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Times `fn`, returning [milliseconds, result]. */
export async function timed(fn) {
  const t0 = now();
  const result = await fn();
  return [now() - t0, result];
}

/** Single quotes for bash. */
export const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

function readStatus(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
    return { name: /^Name:\s+(.*)$/m.exec(text)?.[1] ?? '?', rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return undefined; // gone meanwhile
  }
}

/** Each live process's parent, from /proc/PID/stat (this kernel has no /proc/PID/task/TID/children). */
function parents() {
  const map = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // The command name is in parentheses and may itself hold spaces or parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      map.set(Number(name), ppid);
    } catch {
      // gone meanwhile
    }
  }
  return map;
}

/**
 * Samples a process and its descendants every `everyMs`: the root's own peak (VmHWM, which the
 * kernel keeps as a high-water mark, so a peak between samples is not missed) and the peak of
 * the whole tree's summed VmRSS (which is only as good as the sampling).
 */
export function sampleTree(rootPid, everyMs = 50) {
  const peak = { rootHwmKb: 0, treeRssKb: 0, helpers: new Map(), samples: 0 };
  const tick = () => {
    const ppid = parents();
    const tree = new Set([rootPid]);
    let grew = true;
    while (grew) {
      grew = false;
      for (const [pid, parent] of ppid) {
        if (!tree.has(pid) && tree.has(parent)) {
          tree.add(pid);
          grew = true;
        }
      }
    }
    let sum = 0;
    for (const pid of tree) {
      const st = readStatus(pid);
      if (!st) continue;
      sum += st.rss;
      if (pid === rootPid) peak.rootHwmKb = Math.max(peak.rootHwmKb, st.hwm);
      else peak.helpers.set(st.name, Math.max(peak.helpers.get(st.name) ?? 0, st.hwm || st.rss));
    }
    peak.treeRssKb = Math.max(peak.treeRssKb, sum);
    peak.samples++;
  };
  tick();
  const timer = setInterval(tick, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return {
        rootHwmMB: peak.rootHwmKb / 1024,
        treeMB: Math.max(peak.treeRssKb, peak.rootHwmKb) / 1024,
        helpers: Object.fromEntries([...peak.helpers].map(([n, kb]) => [n, kb / 1024])),
        samples: peak.samples,
      };
    },
  };
}
