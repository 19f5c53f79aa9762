import type { DockerEngine, ExecOptions } from '../docker/engine.js';

/** Runs a short command whose output we need, failing with its stderr on a non-zero exit. */
export async function execChecked(engine: DockerEngine, containerId: string, cmd: string[], what: string, options: ExecOptions = {}): Promise<string> {
  const r = await engine.exec(containerId, cmd, options);
  if (r.exitCode !== 0) {
    const why = (r.stderr || r.stdout).trim().split('\n')[0] || 'no error output';
    throw new Error(`${what} failed (exit ${r.exitCode}): ${why}`);
  }
  return r.stdout.trim();
}
