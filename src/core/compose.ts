import { execa } from 'execa';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitCode, StackvaultError } from '../errors.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const COMPOSE_FILE = join(REPO_ROOT, 'compose', 'docker-compose.yml');

/** The Compose project `./bot.sh start|stop|...` and the demo drive. */
export const DEMO_PROJECT = 'stackvault-demo';
export const stackProject = () => process.env.STACKVAULT_PROJECT || DEMO_PROJECT;

/** `docker compose` (v2 plugin) when present, else Debian's `docker-compose` v1. */
export async function composeCommand(): Promise<string[]> {
  if ((await execa('docker', ['compose', 'version'], { reject: false })).exitCode === 0) return ['docker', 'compose'];
  if ((await execa('docker-compose', ['version'], { reject: false })).exitCode === 0) return ['docker-compose'];
  throw new StackvaultError('Neither `docker compose` nor `docker-compose` is installed.', ExitCode.failure, 'Install the Compose plugin, or `apt-get install docker-compose`.');
}

/** Runs compose on compose/docker-compose.yml; `inherit` shows its output (logs, ps) as is. */
export async function compose(project: string, args: string[], env: Record<string, string> = {}, inherit = false): Promise<void> {
  const [cmd, ...pre] = await composeCommand();
  const r = await execa(cmd!, [...pre, '-f', COMPOSE_FILE, '-p', project, ...args], { env, reject: false, ...(inherit ? { stdio: 'inherit' as const } : { all: true }) });
  if (r.exitCode !== 0) {
    const detail = inherit ? '' : `: ${String(r.all).trim().split('\n').slice(-3).join(' / ')}`;
    throw new StackvaultError(`${[cmd, ...pre].join(' ')} ${args.join(' ')} failed${detail}`);
  }
}
