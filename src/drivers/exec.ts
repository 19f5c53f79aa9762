import { type DockerEngine, type ExecOptions, foreignText } from '../docker/engine.js';

/** Runs a short command whose output we need, failing with its stderr on a non-zero exit. */
export async function execChecked(engine: DockerEngine, containerId: string, cmd: string[], what: string, options: ExecOptions = {}): Promise<string> {
  const r = await engine.exec(containerId, cmd, options);
  if (r.exitCode !== 0) {
    // stderr comes back with secrets hidden; stdout is data until it is quoted here.
    const why = foreignText(engine, (r.stderr || r.stdout).trim().split('\n')[0] || 'no error output', cmd);
    throw new Error(`${what} failed (exit ${r.exitCode}): ${why}`);
  }
  return r.stdout.trim();
}

/** Whether something listens on a TCP port inside the container (needs bash, as most images have). */
export async function tcpAnswers(engine: DockerEngine, containerId: string, port: number): Promise<boolean> {
  const r = await engine.exec(containerId, ['bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`]);
  return r.exitCode === 0;
}
