import Docker from 'dockerode';
import { Writable, type Duplex, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ExecDemuxer } from '../util/exec-demux.js';
import { ExitCode, StackvaultError } from '../errors.js';
import type { ContainerDetails, ContainerSummary, DetachedSpec, DockerEngine, EngineVersion, ExecOptions, ExecResult, HelperSpec } from './engine.js';

const IMAGE_ID = /^(sha256:)?[0-9a-f]{12,64}$/;
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH']);

/** Turns socket-level failures into the one sentence users need. */
function translate(err: unknown): never {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code && UNREACHABLE_CODES.has(code)) {
    const where = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
    throw new StackvaultError(
      `The Docker engine at ${where} is unreachable (${code}).`,
      ExitCode.dockerUnreachable,
      'Start Docker (for example `sudo systemctl start docker` or `dockerd &`), or set DOCKER_HOST.',
    );
  }
  throw err;
}

async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    translate(err);
  }
}

const envToRecord = (env: string[] | undefined) =>
  Object.fromEntries((env ?? []).map((kv) => { const i = kv.indexOf('='); return i < 0 ? [kv, ''] : [kv.slice(0, i), kv.slice(i + 1)]; }));

const recordToEnv = (env: Record<string, string> | undefined) => Object.entries(env ?? {}).map(([k, v]) => `${k}=${v}`);

export class DockerodeEngine implements DockerEngine {
  /** dockerode reads DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH itself. */
  constructor(private readonly docker = new Docker()) {}

  version(): Promise<EngineVersion> {
    return guarded(async () => {
      const v = await this.docker.version();
      return { version: v.Version, apiVersion: v.ApiVersion };
    });
  }

  listContainers(options: { all?: boolean } = {}): Promise<ContainerSummary[]> {
    return guarded(async () => {
      const list = await this.docker.listContainers({ all: options.all ?? false });
      return Promise.all(
        list.map(async (c) => ({
          id: c.Id,
          name: (c.Names[0] ?? c.Id).replace(/^\//, ''),
          // When the tag a container was created from has moved to a newer image, the list
          // shows only an image ID; the name it was created with is in its config.
          image: IMAGE_ID.test(c.Image) ? (await this.docker.getContainer(c.Id).inspect()).Config.Image : c.Image,
          labels: c.Labels ?? {},
          state: c.State,
        })),
      );
    });
  }

  inspect(containerId: string): Promise<ContainerDetails> {
    return guarded(async () => {
      const c = await this.docker.getContainer(containerId).inspect();
      return {
        id: c.Id,
        name: c.Name.replace(/^\//, ''),
        image: c.Config.Image,
        imageId: c.Image,
        labels: c.Config.Labels ?? {},
        state: c.State.Status,
        running: c.State.Running,
        paused: c.State.Paused,
        health: c.State.Health?.Status,
        env: envToRecord(c.Config.Env),
        cmd: [...(c.Config.Entrypoint ? [c.Config.Entrypoint].flat() : []), ...(c.Config.Cmd ?? [])],
        mounts: (c.Mounts ?? []).map((m) => ({ type: m.Type, name: m.Name, source: m.Source, destination: m.Destination, rw: m.RW !== false })),
        ipAddress: Object.values(c.NetworkSettings?.Networks ?? {})[0]?.IPAddress || undefined,
        ports: Object.fromEntries(Object.entries(c.NetworkSettings?.Ports ?? {}).flatMap(([k, v]) => (v?.[0]?.HostPort ? [[k, v[0].HostPort]] : []))),
      };
    });
  }

  exec(containerId: string, cmd: string[], options: ExecOptions = {}): Promise<ExecResult> {
    return guarded(async () => {
      const exec = await this.docker.getContainer(containerId).exec({
        Cmd: cmd,
        Env: recordToEnv(options.env),
        User: options.user,
        AttachStdin: Boolean(options.stdin),
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      });
      const stream = (await exec.start({ hijack: true, stdin: Boolean(options.stdin) })) as unknown as Duplex;
      // Output is kept as bytes and decoded once at the end: a character split across two
      // frames would otherwise be lost.
      const stderrChunks: Buffer[] = [];
      let stderrBytes = 0;
      const stdoutChunks: Buffer[] = [];
      const stdoutTarget = options.stdout ?? new Writable({ write(chunk, _e, cb) { stdoutChunks.push(chunk); cb(); } });
      const demux = new ExecDemuxer(stdoutTarget, (chunk) => {
        if (stderrBytes < 64 * 1024) stderrChunks.push(chunk);
        stderrBytes += chunk.length;
      });
      if (options.stdin) {
        // The stdin stream ending half-closes the hijacked socket: the daemon sees EOF on the
        // command's stdin and keeps sending output until the command exits.
        options.stdin.pipe(stream);
      }
      try {
        await pipeline(stream, demux);
      } catch (err) {
        throw new Error(`${cmd[0]} was cut off: ${await this.whyCutOff(containerId, err)}`);
      }
      // The exit code is only known once the stream has ended; poll briefly until it is set.
      let info = await exec.inspect();
      for (let i = 0; info.Running && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 20));
        info = await exec.inspect();
      }
      return { exitCode: info.ExitCode ?? -1, stdout: Buffer.concat(stdoutChunks).toString('utf8'), stderr: Buffer.concat(stderrChunks).toString('utf8') };
    });
  }

  /** Explains a broken exec stream: usually the container stopped or was killed. */
  private async whyCutOff(containerId: string, err: unknown): Promise<string> {
    const detail = err instanceof Error ? err.message : String(err);
    try {
      const state = (await this.docker.getContainer(containerId).inspect()).State;
      if (!state.Running) return `the container stopped (${state.Status}, exit code ${state.ExitCode}) while it ran (${detail})`;
    } catch {
      return `the container is gone (${detail})`;
    }
    return `the connection to the Docker engine broke (${detail})`;
  }

  getArchive(containerId: string, path: string): Promise<Readable> {
    return guarded(async () => (await this.docker.getContainer(containerId).getArchive({ path })) as unknown as Readable);
  }

  putArchive(containerId: string, path: string, tar: Readable): Promise<void> {
    return guarded(async () => {
      await this.docker.getContainer(containerId).putArchive(tar as unknown as NodeJS.ReadableStream, { path });
    });
  }

  stop(containerId: string, timeoutSeconds = 30): Promise<void> {
    return guarded(async () => {
      try {
        await this.docker.getContainer(containerId).stop({ t: timeoutSeconds });
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode !== 304) throw err; // 304: already stopped
      }
    });
  }

  start(containerId: string): Promise<void> {
    return guarded(async () => {
      try {
        await this.docker.getContainer(containerId).start();
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode !== 304) throw err; // 304: already running
      }
    });
  }

  pause(containerId: string): Promise<void> {
    return guarded(async () => { await this.docker.getContainer(containerId).pause(); });
  }

  unpause(containerId: string): Promise<void> {
    return guarded(async () => { await this.docker.getContainer(containerId).unpause(); });
  }

  runToCompletion(spec: HelperSpec): Promise<ExecResult> {
    return guarded(async () => {
      const container = await this.docker.createContainer({
        Image: spec.image,
        Cmd: spec.cmd,
        Entrypoint: spec.entrypoint,
        User: spec.user,
        Labels: { 'stackvault.helper': 'true', 'stackvault.exclude': 'true' },
        HostConfig: { VolumesFrom: spec.volumesFrom, AutoRemove: false },
      });
      try {
        await container.start();
        const { StatusCode } = await container.wait();
        const logs = (await container.logs({ stdout: true, stderr: true })) as Buffer;
        return { exitCode: StatusCode, stdout: '', stderr: logs.toString('utf8').slice(-8192) };
      } finally {
        await container.remove({ force: true }).catch(() => undefined);
      }
    });
  }

  runDetached(spec: DetachedSpec): Promise<string> {
    return guarded(async () => {
      const options: Docker.ContainerCreateOptions = {
        Image: spec.image,
        name: spec.name,
        Env: recordToEnv(spec.env),
        Cmd: spec.cmd,
        Labels: { 'stackvault.exclude': 'true', ...spec.labels },
        // A volume mount without a source is a fresh anonymous volume, removed with the container.
        HostConfig: { Mounts: (spec.volumes ?? []).map((target) => ({ Type: 'volume', Target: target }) as Docker.MountSettings) },
      };
      const container: Docker.Container = await this.docker.createContainer(options);
      try {
        await container.start();
      } catch (err) {
        await container.remove({ force: true, v: true }).catch(() => undefined);
        throw err;
      }
      return container.id;
    });
  }

  remove(containerId: string): Promise<void> {
    return guarded(async () => {
      await this.docker.getContainer(containerId).remove({ force: true, v: true });
    });
  }

  imageExists(ref: string): Promise<boolean> {
    return guarded(async () => this.docker.getImage(ref).inspect().then(() => true, (err: { statusCode?: number }) => {
      if (err.statusCode === 404) return false;
      throw err;
    }));
  }
}
