import Docker from 'dockerode';
import { execa, type Result } from 'execa';
import { randomBytes } from 'node:crypto';
import { access, cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { composeCommand } from '../../src/core/compose.js';
import { REPO_ROOT } from './cli.js';

/**
 * The compose layouts of real projects in test/layouts/ (see its README), brought up on the
 * local images. Every call gets its own Compose project and its own copy of the layout folder
 * in a temporary directory, so bind mounts (./volumes, ./library, ...) are written there and
 * never into the repository, and several layouts can run side by side.
 */
export const LAYOUTS_DIR = join(REPO_ROOT, 'test', 'layouts');
export const LAYOUTS = ['cognee', 'dify', 'immich', 'langfuse', 'librechat', 'mem0', 'n8n', 'nextcloud', 'paperless', 'plausible', 'whisperengine'] as const;
export type LayoutName = (typeof LAYOUTS)[number];

export interface LayoutContainer {
  service: string;
  id: string;
  name: string;
  image: string;
  /** running, exited, restarting, ... */
  state: string;
  /** Docker's health status when the container has a healthcheck. */
  health?: string;
}

export interface Layout {
  name: LayoutName;
  /** The Compose project (`svl-<name>-<random>`): its label is on every container. */
  project: string;
  /** The layout's copy: the compose file, .env and the bind-mounted directories. */
  dir: string;
  /** The environment compose runs with (local images, LAYOUT_PREFIX, LAYOUT_CPU_CAP). */
  env: Record<string, string>;
  /** Runs compose on this layout (e.g. ['ps'], ['stop', 'redis']); never throws on a non-zero exit. */
  compose(args: string[]): Promise<Result>;
  containers(): Promise<LayoutContainer[]>;
  /** Runs a command in the (first) container of a service, as its configured user. */
  exec(service: string, cmd: string[]): Promise<{ exitCode: number | null; output: string }>;
}

const docker = new Docker();

/** test/layouts/local-images.env as a record (KEY=VALUE lines; comments and blanks skipped). */
export async function localImagesEnv(): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const line of (await readFile(join(LAYOUTS_DIR, 'local-images.env'), 'utf8')).split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!.trim();
  }
  return env;
}

/** The hard limit on open files here, which the Docker daemon started from this machine's shell shares. */
async function openFilesHardLimit(): Promise<number> {
  const out = (await execa('sh', ['-c', 'ulimit -Hn'])).stdout.trim();
  return out === 'unlimited' ? Number.POSITIVE_INFINITY : Number(out);
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/**
 * Brings a layout up (`up -d`) and waits until every container runs and passes its healthcheck.
 * On failure the layout is taken down again and the error names the containers that are not
 * ready, with the end of their logs.
 */
export async function upLayout(name: LayoutName, options: { timeoutMs?: number } = {}): Promise<Layout> {
  const project = `svl-${name}-${randomBytes(3).toString('hex')}`;
  const dir = await mkdtemp(join(tmpdir(), `${project}-`));
  await cp(join(LAYOUTS_DIR, name), dir, { recursive: true });
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    ...(await localImagesEnv()),
    // Fixed container, volume and network names in upstream files get the project in front.
    LAYOUT_PREFIX: `${project}-`,
    LAYOUT_CPU_CAP: String(Math.min(4, availableParallelism())),
  };
  // Upstream nofile limits (up to 262144) only where Docker could not give them (local-images.env).
  const nofile = await openFilesHardLimit();
  if (nofile < 262144) env.LAYOUT_NOFILE_CAP = String(nofile);
  else delete env.LAYOUT_NOFILE_CAP;
  const [cmd, ...pre] = await composeCommand();
  const layout: Layout = {
    name,
    project,
    dir,
    env,
    compose: (args) =>
      execa(cmd!, [...pre, '-p', project, '-f', join(dir, 'docker-compose.yml'), ...args], {
        cwd: dir,
        env,
        extendEnv: false,
        reject: false,
        all: true,
        timeout: 180_000,
      }),
    containers: () => projectContainers(project),
    exec: async (service, cmd) => {
      const c = (await projectContainers(project)).find((x) => x.service === service);
      if (!c) throw new Error(`layout ${name} has no container for service ${service}`);
      return execIn(c.id, cmd);
    },
  };
  try {
    // What a user does before the first `up` (e.g. create bind-mounted directories owned by the
    // app's user). `sh`, not bash: bash would set UID to the caller's own id.
    if (await exists(join(dir, 'prepare.sh'))) {
      await execa('sh', ['prepare.sh'], { cwd: dir, env, extendEnv: false });
    }
    const up = await layout.compose(['up', '-d']);
    if (up.exitCode !== 0) throw new Error(`compose up failed for layout ${name}:\n${tail(String(up.all), 15)}`);
    await waitReady(layout, options.timeoutMs ?? 120_000);
    return layout;
  } catch (err) {
    await downLayout(layout).catch(() => undefined);
    throw err;
  }
}

/** `down -v` (containers, networks, named and anonymous volumes), then removes the copy. */
export async function downLayout(layout: Layout): Promise<void> {
  try {
    const down = await layout.compose(['down', '-v', '--remove-orphans', '--timeout', '10']);
    if (down.exitCode !== 0) throw new Error(`compose down failed for layout ${layout.name}:\n${tail(String(down.all), 10)}`);
  } finally {
    await rm(layout.dir, { recursive: true, force: true });
  }
}

async function projectContainers(project: string): Promise<LayoutContainer[]> {
  const list = await docker.listContainers({ all: true, filters: { label: [`com.docker.compose.project=${project}`] } });
  const out: LayoutContainer[] = [];
  for (const c of list) {
    const info = await docker.getContainer(c.Id).inspect();
    out.push({
      service: c.Labels['com.docker.compose.service'] ?? info.Name.slice(1),
      id: c.Id,
      name: info.Name.replace(/^\//, ''),
      image: info.Config.Image,
      state: info.State.Status,
      health: info.State.Health?.Status,
    });
  }
  return out.sort((a, b) => a.service.localeCompare(b.service));
}

/**
 * Every container running, and every healthcheck passing. A healthcheck's first run can be
 * 30 s away (Docker's default interval, which several upstream files keep), so a container
 * whose status is still `starting` is asked directly: its own test command is run in it.
 */
async function waitReady(layout: Layout, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let pending: string[] = [];
  while (Date.now() < deadline) {
    pending = [];
    const containers = await layout.containers();
    if (containers.length === 0) pending.push('(no containers)');
    for (const c of containers) {
      if (c.state !== 'running') {
        if (c.state === 'exited' || c.state === 'dead') throw new Error(`layout ${layout.name}: ${c.service} ${c.state}:\n${await logTail(c.id)}`);
        pending.push(`${c.service} (${c.state})`);
      } else if (c.health === 'unhealthy') {
        pending.push(`${c.service} (unhealthy)`);
      } else if (c.health && c.health !== 'healthy' && !(await healthcheckPasses(c.id))) {
        pending.push(`${c.service} (${c.health})`);
      }
    }
    if (pending.length === 0) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const logs = await Promise.all((await layout.containers()).filter((c) => pending.some((p) => p.startsWith(`${c.service} `))).map(async (c) => `--- ${c.service}\n${await logTail(c.id)}`));
  throw new Error(`layout ${layout.name} not ready after ${timeoutMs / 1000} s: ${pending.join(', ')}\n${logs.join('\n')}`);
}

async function healthcheckPasses(id: string): Promise<boolean> {
  const test = (await docker.getContainer(id).inspect()).Config.Healthcheck?.Test;
  if (!test || test[0] === 'NONE' || test.length < 2) return true;
  const cmd = test[0] === 'CMD-SHELL' ? ['/bin/sh', '-c', test[1]!] : test.slice(1);
  return (await execIn(id, cmd).catch(() => ({ exitCode: 1 }))).exitCode === 0;
}

/** Runs a command in a container; exit code null when it did not finish within 10 s. */
async function execIn(id: string, cmd: string[]): Promise<{ exitCode: number | null; output: string }> {
  const exec = await docker.getContainer(id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      stream.destroy();
      resolve();
    }, 10_000);
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.on('end', () => {
      clearTimeout(timer);
      resolve();
    });
    stream.on('error', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return { exitCode: (await exec.inspect()).ExitCode, output: demux(Buffer.concat(chunks)) };
}

async function logTail(id: string): Promise<string> {
  const logs = Buffer.from(
    (await docker
      .getContainer(id)
      .logs({ stdout: true, stderr: true, tail: 20 })
      .catch(() => Buffer.alloc(0))) as Buffer,
  );
  return tail(demux(logs), 20);
}

/** Non-TTY logs come in frames with an 8-byte header (stream, 0, 0, 0, size); TTY logs are raw. */
function demux(buf: Buffer): string {
  const framed = buf.length >= 8 && buf[0]! <= 2 && buf[1] === 0 && buf[2] === 0 && buf[3] === 0;
  if (!framed) return buf.toString('utf8');
  const parts: Buffer[] = [];
  for (let i = 0; i + 8 <= buf.length; ) {
    const size = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}

const tail = (text: string, lines: number) => text.trim().split('\n').slice(-lines).join('\n');
