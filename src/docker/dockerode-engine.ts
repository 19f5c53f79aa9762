import './dockerode-lean.js';
import Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { addAbortSignal, Writable, type Duplex, type Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { ExecDemuxer } from '../util/exec-demux.js';
import { ExitCode, StackvaultError } from '../errors.js';
import { defaultEndpoint, type EngineEndpoint } from './endpoints.js';
import { helperOwnerLabels } from './helper-owner.js';
import { sshAgent } from './ssh-agent.js';
import {
  isNotFound,
  undefinedIfNotFound,
  unknownEngine,
  type ContainerDetails,
  type ContainerSummary,
  type DetachedSpec,
  type DockerEngine,
  type EngineVersion,
  type ExecOptions,
  type ExecResult,
  type HelperSpec,
  type TransferOptions,
} from './engine.js';

const IMAGE_ID = /^(sha256:)?[0-9a-f]{12,64}$/;
/** On a network runDetached made for one container: removed with it. */
const OWN_NETWORK_LABEL = 'stackvault.own-network';
/** Socket, DNS and TLS failures, and `ssh` (set by the ssh:// socket when ssh itself fails). */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'ssh']);

/** Turns socket-level failures into the one sentence users need. */
function translate(err: unknown, endpoint: EngineEndpoint): never {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code && (UNREACHABLE_CODES.has(code) || /^ERR_TLS|CERT|SSL/.test(code))) {
    const which = endpoint.name === 'default' ? '' : ` '${endpoint.name}'`;
    throw new StackvaultError(
      `The Docker engine${which} at ${endpoint.url} is unreachable (${code === 'ssh' ? (err as Error).message : code}).`,
      ExitCode.dockerUnreachable,
      endpoint.name === 'default'
        ? 'Start Docker (for example `sudo systemctl start docker` or `dockerd &`), or set DOCKER_HOST.'
        : 'Check that engine (and its address, certificates or ssh access), or leave it out of --host.',
    );
  }
  throw err;
}

const envToRecord = (env: string[] | undefined) =>
  Object.fromEntries(
    (env ?? []).map((kv) => {
      const i = kv.indexOf('=');
      return i < 0 ? [kv, ''] : [kv.slice(0, i), kv.slice(i + 1)];
    }),
  );

const recordToEnv = (env: Record<string, string> | undefined) => Object.entries(env ?? {}).map(([k, v]) => `${k}=${v}`);

/**
 * Every exec carries `STACKVAULT_EXEC=<random>` in its environment, inherited by its children.
 * Docker has no API to kill an exec, so this is how its processes are found in the container.
 */
const EXEC_MARKER = 'STACKVAULT_EXEC';

const reasonOf = (signal: AbortSignal) => (signal.reason instanceof Error ? signal.reason : new Error('interrupted'));

export class DockerodeEngine implements DockerEngine {
  private readonly docker: Docker;
  readonly engineNames: readonly string[];

  constructor(readonly endpoint: EngineEndpoint = defaultEndpoint()) {
    this.docker = new Docker(modemOptions(endpoint));
    this.engineNames = [endpoint.name];
  }

  select(name?: string): DockerEngine {
    if (name === undefined || name === this.endpoint.name) return this;
    throw unknownEngine(name, this.engineNames);
  }

  private guarded<T>(work: () => Promise<T>): Promise<T> {
    return work().catch((err: unknown) => translate(err, this.endpoint));
  }

  version(): Promise<EngineVersion> {
    return this.guarded(async () => {
      const v = await this.docker.version();
      return { version: v.Version, apiVersion: v.ApiVersion };
    });
  }

  listContainers(options: { all?: boolean } = {}): Promise<ContainerSummary[]> {
    return this.guarded(async () => {
      const list = await this.docker.listContainers({ all: options.all ?? false });
      const summaries = await Promise.all(
        list.map(async (c): Promise<ContainerSummary | undefined> => {
          // When the tag a container was created from has moved to a newer image (or it was
          // created from an ID, as helpers are), the list shows only an image ID; the name it
          // was created with is in its config. A container removed since the listing is left out.
          const image = IMAGE_ID.test(c.Image)
            ? await this.docker
                .getContainer(c.Id)
                .inspect()
                .then((d) => d.Config.Image, undefinedIfNotFound)
            : c.Image;
          if (image === undefined) return undefined;
          return { id: c.Id, name: (c.Names[0] ?? c.Id).replace(/^\//, ''), image, labels: c.Labels ?? {}, state: c.State };
        }),
      );
      return summaries.filter((c): c is ContainerSummary => c !== undefined);
    });
  }

  inspect(containerId: string): Promise<ContainerDetails> {
    return this.guarded(async () => {
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
        stopTimeout: (c.Config as { StopTimeout?: number | null }).StopTimeout ?? undefined,
        exitCode: c.State.ExitCode,
        oomKilled: c.State.OOMKilled,
        startedAt: c.State.StartedAt,
        ports: Object.fromEntries(Object.entries(c.NetworkSettings?.Ports ?? {}).flatMap(([k, v]) => (v?.[0]?.HostPort ? [[k, v[0].HostPort]] : []))),
      };
    });
  }

  /**
   * Runs a command. Its stdin is forwarded by hand, not with pipe(): if the stdin source fails,
   * or `signal` aborts, the command (with its children) is killed in the container FIRST, while
   * its stdin is still open (so it never reads a cut-off input as complete), then the connection
   * is closed and exec rejects once the command is gone.
   */
  exec(containerId: string, cmd: string[], options: ExecOptions = {}): Promise<ExecResult> {
    return this.guarded(async () => {
      const { signal, stdin } = options;
      if (signal?.aborted) {
        stdin?.destroy();
        throw reasonOf(signal);
      }
      const container = this.docker.getContainer(containerId);
      const marker = randomBytes(8).toString('hex');
      const exec = await container.exec({
        Cmd: cmd,
        Env: [...recordToEnv(options.env), `${EXEC_MARKER}=${marker}`],
        User: options.user,
        AttachStdin: Boolean(stdin),
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      });
      const stream = (await exec.start({ hijack: true, stdin: Boolean(stdin) })) as unknown as Duplex;
      // Output is kept as bytes and decoded once at the end: a character split across two
      // frames would otherwise be lost.
      const stderrChunks: Buffer[] = [];
      let stderrBytes = 0;
      const stdoutChunks: Buffer[] = [];
      const stdoutTarget =
        options.stdout ??
        new Writable({
          write(chunk, _e, cb) {
            stdoutChunks.push(chunk);
            cb();
          },
        });
      const demux = new ExecDemuxer(stdoutTarget, (chunk) => {
        options.onStderr?.(chunk);
        if (stderrBytes < 64 * 1024) stderrChunks.push(chunk);
        stderrBytes += chunk.length;
      });

      let stopped: { reason: Error; gone: Promise<void> } | undefined;
      const stop = (reason: Error) => {
        if (stopped) return;
        stdin?.destroy(); // no more input, but no EOF either: the socket stays open until the kill
        stopped = {
          reason,
          gone: this.killExec(container, exec, marker)
            .catch(() => undefined)
            .finally(() => stream.destroy()),
        };
      };
      const onAbort = () => stop(reasonOf(signal!));
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) onAbort(); // it came while the exec was being created
      if (stdin) {
        stdin.on('data', (chunk: Buffer) => {
          if (!stream.write(chunk)) {
            stdin.pause();
            stream.once('drain', () => stdin.resume());
          }
        });
        // The stdin stream ending half-closes the hijacked socket: the daemon sees EOF on the
        // command's stdin and keeps sending output until the command exits.
        stdin.once('end', () => stream.end());
        stdin.once('error', (err: Error) => stop(new Error(`${cmd[0]}'s input failed (${err.message}), so it was stopped`)));
      }
      try {
        await pipeline(stream, demux).catch(async (err: unknown) => {
          if (!stopped) throw new Error(`${cmd[0]} was cut off: ${await this.whyCutOff(containerId, err)}`);
        });
        if (stopped) {
          await stopped.gone;
          throw stopped.reason;
        }
      } finally {
        signal?.removeEventListener('abort', onAbort);
        stdin?.destroy(); // the command may have exited without reading all of it
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

  /** TERM to every process of the exec, KILL after 3 s if any is left; resolves when it is gone. */
  private async killExec(container: Docker.Container, exec: Docker.Exec, marker: string): Promise<void> {
    const running = () =>
      exec.inspect().then(
        (i) => i.Running,
        () => false,
      );
    for (const sig of ['TERM', 'KILL'] as const) {
      if (!(await running())) return;
      await this.signalExec(container, exec, marker, sig).catch(() => undefined);
      for (let i = 0; i < 30; i++) {
        if (!(await running())) return;
        await delay(100);
      }
    }
  }

  private async signalExec(container: Docker.Container, exec: Docker.Exec, marker: string, sig: 'TERM' | 'KILL'): Promise<void> {
    // Inside the container, as root: every process whose environment carries the marker.
    const script = `for p in /proc/[0-9]*; do if tr '\\0' '\\n' < "$p/environ" 2>/dev/null | grep -qx '${EXEC_MARKER}=${marker}'; then kill -${sig} "\${p#/proc/}" 2>/dev/null; fi; done; exit 0`;
    try {
      const killer = await container.exec({ Cmd: ['sh', '-c', script], User: '0', AttachStdout: true, AttachStderr: true, Tty: false });
      const out = (await killer.start({ hijack: true, stdin: false })) as unknown as Duplex;
      out.resume();
      await finished(out).catch(() => undefined);
      if ((await killer.inspect()).ExitCode === 0) return;
    } catch {
      // no shell in this image: try from the host below
    }
    // A local engine: the exec's PID on this host, if it is still that process.
    const { Pid } = await exec.inspect();
    const environ =
      Pid > 0
        ? (() => {
            try {
              return readFileSync(`/proc/${Pid}/environ`, 'latin1');
            } catch {
              return '';
            }
          })()
        : '';
    if (environ.split('\0').includes(`${EXEC_MARKER}=${marker}`)) process.kill(Pid, `SIG${sig}`);
  }

  /** Explains a broken exec stream: usually the container stopped or was killed. */
  private async whyCutOff(containerId: string, err: unknown): Promise<string> {
    const detail = err instanceof Error ? err.message : String(err);
    try {
      const state = (await this.docker.getContainer(containerId).inspect()).State;
      if (!state.Running) return `the container stopped (${state.Status}, exit code ${state.ExitCode}) while it ran (${detail})`;
    } catch (inspectErr) {
      // Only a 404 says the container is gone; an engine that does not answer says nothing of it.
      if (isNotFound(inspectErr)) return `the container is gone (${detail})`;
    }
    return `the connection to the Docker engine broke (${detail})`;
  }

  getArchive(containerId: string, path: string, options: TransferOptions = {}): Promise<Readable> {
    return this.guarded(async () => {
      const { signal } = options;
      if (signal?.aborted) throw reasonOf(signal);
      const res = (await this.docker.getContainer(containerId).getArchive({ path, abortSignal: signal })) as unknown as Readable;
      if (signal) addAbortSignal(signal, res); // also once the response streams
      return res;
    });
  }

  putArchive(containerId: string, path: string, tar: Readable, options: TransferOptions = {}): Promise<void> {
    return this.guarded(async () => {
      try {
        if (options.signal?.aborted) throw reasonOf(options.signal);
        await this.docker.getContainer(containerId).putArchive(tar as unknown as NodeJS.ReadableStream, { path, abortSignal: options.signal });
      } catch (err) {
        tar.destroy(); // nobody reads it any more: let whatever produces it stop too
        throw err;
      }
    });
  }

  stop(containerId: string, timeoutSeconds?: number): Promise<void> {
    return this.guarded(async () => {
      try {
        // Without `t`, Docker uses the container's own stop timeout (10 s when it has none).
        await this.docker.getContainer(containerId).stop(timeoutSeconds === undefined ? {} : { t: timeoutSeconds });
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode !== 304) throw err; // 304: already stopped
      }
    });
  }

  start(containerId: string): Promise<void> {
    return this.guarded(async () => {
      try {
        await this.docker.getContainer(containerId).start();
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode !== 304) throw err; // 304: already running
      }
    });
  }

  pause(containerId: string): Promise<void> {
    return this.guarded(async () => {
      await this.docker.getContainer(containerId).pause();
    });
  }

  unpause(containerId: string): Promise<void> {
    return this.guarded(async () => {
      await this.docker.getContainer(containerId).unpause();
    });
  }

  runToCompletion(spec: HelperSpec): Promise<ExecResult> {
    return this.guarded(async () => {
      const container = await this.docker.createContainer({
        Image: spec.image,
        Cmd: spec.cmd,
        Entrypoint: spec.entrypoint,
        User: spec.user,
        // Owned by this run, as pre-copy's helpers are: a run killed while one works leaves it
        // (exited, but holding the store's volumes, which `docker compose down -v` then cannot
        // remove), and the next run removes it (sweepLeftovers).
        Labels: { 'stackvault.exclude': 'true', ...helperOwnerLabels((spec.volumesFrom ?? []).join(',')) },
        HostConfig: { VolumesFrom: spec.volumesFrom, AutoRemove: false },
      });
      try {
        await container.start();
        const { StatusCode } = await container.wait();
        const logs = (await container.logs({ stdout: true, stderr: true })) as Buffer;
        return { exitCode: StatusCode, stdout: '', stderr: logs.toString('utf8').slice(-8192) };
      } finally {
        // With the anonymous volumes its image declares (a helper of another image than the
        // store's has its own at those paths). Docker keeps every named volume, and an anonymous
        // one the store still holds through VolumesFrom (it answers "in use" and keeps it).
        await container.remove({ force: true, v: true }).catch(() => undefined);
      }
    });
  }

  runDetached(spec: DetachedSpec): Promise<string> {
    return this.guarded(async () => {
      const network = spec.ownInternalNetwork ? await this.createOwnNetwork(spec) : undefined;
      const options: Docker.ContainerCreateOptions = {
        Image: spec.image,
        name: spec.name,
        Env: recordToEnv(spec.env),
        Cmd: spec.cmd,
        Entrypoint: spec.entrypoint,
        User: spec.user,
        Labels: { 'stackvault.exclude': 'true', ...spec.labels },
        ...(spec.noHealthcheck ? { Healthcheck: { Test: ['NONE'] } } : {}),
        HostConfig: {
          // A volume mount without a source is a fresh anonymous volume, removed with the container.
          Mounts: (spec.volumes ?? []).map((target) => ({ Type: 'volume', Target: target }) as Docker.MountSettings),
          VolumesFrom: spec.volumesFrom,
          AutoRemove: spec.autoRemove ?? false,
          // NetworkMode none (a loopback only), not Config.NetworkDisabled: with that, images whose
          // entrypoint needs a loopback (MariaDB's) exit at once, without a word.
          ...(spec.noNetwork ? { NetworkMode: 'none' } : network ? { NetworkMode: network } : {}),
        },
      };
      let container: Docker.Container | undefined;
      try {
        container = await this.docker.createContainer(options);
        await container.start();
      } catch (err) {
        await container?.remove({ force: true, v: true }).catch(() => undefined);
        if (network)
          await this.docker
            .getNetwork(network)
            .remove()
            .catch(() => undefined);
        throw err;
      }
      return container.id;
    });
  }

  /** An internal bridge for one container, labelled as its own (and with its labels: its owner's), so `remove` takes it too. */
  private async createOwnNetwork(spec: DetachedSpec): Promise<string> {
    const name = `${spec.name ?? 'stackvault'}-net-${randomBytes(3).toString('hex')}`;
    await this.docker.createNetwork({ Name: name, Driver: 'bridge', Internal: true, Labels: { ...spec.labels, [OWN_NETWORK_LABEL]: 'true' } });
    return name;
  }

  remove(containerId: string, options: { keepVolumes?: boolean } = {}): Promise<void> {
    return this.guarded(async () => {
      const container = this.docker.getContainer(containerId);
      const networks = Object.keys((await container.inspect().catch(() => undefined))?.NetworkSettings?.Networks ?? {});
      await container.remove({ force: true, v: !options.keepVolumes });
      // Its own internal network (runDetached's ownInternalNetwork), never a shared one.
      for (const name of networks) {
        const network = this.docker.getNetwork(name);
        const labels = (await network.inspect().catch(() => undefined))?.Labels ?? {};
        if (labels[OWN_NETWORK_LABEL] === 'true') await network.remove();
      }
    });
  }

  removeOwnNetworks(leftBehind: (labels: Record<string, string>) => boolean): Promise<number> {
    return this.guarded(async () => {
      const networks = await this.docker.listNetworks({ filters: { label: [`${OWN_NETWORK_LABEL}=true`] } });
      let removed = 0;
      for (const summary of networks) {
        if (!leftBehind(summary.Labels ?? {})) continue;
        // The list leaves Containers empty; only an inspect says whether one is on it.
        const network = this.docker.getNetwork(summary.Id);
        const details = await network.inspect().catch(() => undefined);
        if (!details || Object.keys(details.Containers ?? {}).length > 0) continue;
        if (
          await network.remove().then(
            () => true,
            () => false,
          )
        )
          removed++;
      }
      return removed;
    });
  }

  imageExists(ref: string): Promise<boolean> {
    return this.guarded(async () =>
      this.docker
        .getImage(ref)
        .inspect()
        .then(
          () => true,
          (err: unknown) => {
            if (isNotFound(err)) return false;
            throw err;
          },
        ),
    );
  }
}

/**
 * dockerode's options for one endpoint, all of them set: dockerode fills unset ones from
 * DOCKER_HOST and DOCKER_CERT_PATH, which must not leak into an engine named otherwise.
 */
function modemOptions(endpoint: EngineEndpoint): Docker.DockerOptions {
  const none = { socketPath: undefined, host: undefined, port: undefined, protocol: undefined, ca: undefined, cert: undefined, key: undefined, agent: undefined };
  // Node's global agents' settings, in an agent of this engine's own (see failingCutAnswers);
  // dockerode's types leave `agent` out, which docker-modem passes to every request.
  const pooled = { keepAlive: true, scheduling: 'lifo', timeout: 5000 } as const;
  const url = new URL(endpoint.url);
  if (url.protocol === 'unix:') return { ...none, socketPath: url.pathname, agent: failingCutAnswers(new http.Agent(pooled)) } as Docker.DockerOptions;
  if (url.protocol === 'ssh:') {
    // The system's ssh, as the docker CLI uses it: the user's keys, agent, config and known_hosts.
    return { ...none, host: 'docker', port: 80, protocol: 'http', agent: failingCutAnswers(sshAgent(endpoint.url)) } as Docker.DockerOptions;
  }
  const tls = endpoint.tlsDir;
  if (!tls) return { ...none, host: url.hostname, port: url.port, protocol: 'http', agent: failingCutAnswers(new http.Agent(pooled)) } as Docker.DockerOptions;
  const read = (file: string) => readFileSync(join(tls, file));
  return {
    ...none,
    host: url.hostname,
    port: url.port,
    protocol: 'https',
    ca: read('ca.pem'),
    cert: read('cert.pem'),
    key: read('key.pem'),
    agent: failingCutAnswers(new https.Agent(pooled)),
  } as Docker.DockerOptions;
}

/**
 * docker-modem reads an answer that is not a stream (every inspect, create, stop, exec's
 * status) by waiting for its 'end', and for an 'error' of the request. When the connection
 * drops after the answer's headers came and before its end (the engine stopped or restarted,
 * a proxy or ssh link cut), Node ends the answer with neither: it only closes it, and the
 * request has had its answer, so it fails no more. The call then never settled; when nothing
 * else was pending Node found nothing left to do and the run exited 0 halfway, without a
 * summary or a backup (a `backup create` whose store's inspect after its stop was cut: a cron
 * job and `update` took that for a backup). Such an answer now fails its request, with the
 * answer's own error (ECONNRESET "aborted" for a dropped connection): an engine that is gone.
 * A request whose answer modem already handed on (a stream) ignores a later failure.
 */
export function failingCutAnswers<A extends http.Agent>(agent: A): A {
  // addRequest is where Node's ClientRequest hands itself to its agent (agent-base and the
  // proxy agents hook it too); it is the one place that sees both a request and its answer.
  const pooled = agent as unknown as { addRequest(req: http.ClientRequest, ...rest: unknown[]): void };
  const addRequest = pooled.addRequest.bind(agent);
  pooled.addRequest = (req, ...rest) => {
    req.once('response', (res: http.IncomingMessage) => {
      res.once('close', () => {
        if (res.complete || req.listenerCount('error') === 0) return;
        req.emit('error', res.errored ?? Object.assign(new Error('the connection closed in the middle of an answer'), { code: 'ECONNRESET' }));
      });
    });
    addRequest(req, ...rest);
  };
  return agent;
}
