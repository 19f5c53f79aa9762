import type { Readable, Writable } from 'node:stream';
import { errorMessage, ExitCode, StackvaultError } from '../errors.js';
import { keepRawMessage, rawMessage, redactForeign } from '../util/redact.js';

/** What stackvault needs from Docker, and nothing more: core logic is written against this. */
export interface DockerEngine {
  /** The engines spoken to: ['default'] for the one of DOCKER_HOST, else the names given by --host. */
  readonly engineNames: readonly string[];
  /** The engine named `name` (undefined: the first), for what is created there (helpers, throwaways). */
  select(name?: string): DockerEngine;
  version(): Promise<EngineVersion>;
  listContainers(options?: { all?: boolean }): Promise<ContainerSummary[]>;
  inspect(containerId: string): Promise<ContainerDetails>;
  /** Runs a command; stdout goes to `stdout` when given (streamed), else it is collected. */
  exec(containerId: string, cmd: string[], options?: ExecOptions): Promise<ExecResult>;
  /** A tar of `path`; with `signal`, the download is destroyed on abort. */
  getArchive(containerId: string, path: string, options?: TransferOptions): Promise<Readable>;
  /** Extracts `tar` into `path`; on abort or failure the upload and `tar` are destroyed. */
  putArchive(containerId: string, path: string, tar: Readable, options?: TransferOptions): Promise<void>;
  /** Stops with `timeoutSeconds` between the stop signal and a kill (Docker's default: the container's own). */
  stop(containerId: string, timeoutSeconds?: number): Promise<void>;
  start(containerId: string): Promise<void>;
  pause(containerId: string): Promise<void>;
  unpause(containerId: string): Promise<void>;
  /** Runs a short-lived container to completion and removes it. */
  runToCompletion(spec: HelperSpec): Promise<ExecResult>;
  /** Creates and starts a container (throwaway verification targets); returns its id. */
  runDetached(spec: DetachedSpec): Promise<string>;
  /**
   * Removes a container and its anonymous volumes; with `keepVolumes`, only the container (a
   * helper that mounts another container's volumes: Docker would otherwise delete one of them
   * that its container, removed meanwhile, left without an owner).
   */
  remove(containerId: string, options?: { keepVolumes?: boolean }): Promise<void>;
  /**
   * Removes the networks made for `ownInternalNetwork` that no container is on and whose labels
   * (their container's, given at creation) pass `leftBehind`; returns how many went. A run
   * killed between making such a network and its container leaves one, which `remove` never sees.
   */
  removeOwnNetworks(leftBehind: (labels: Record<string, string>) => boolean): Promise<number>;
  imageExists(ref: string): Promise<boolean>;
  /**
   * Text from a container, a helper or the engine (output used in a message, a service's
   * answer) as it may be shown: the secrets of the service this engine works for hidden
   * (util/redact.ts; `spare`: what we gave the program, such as its argv). Only an engine made
   * by `withSecrets` has it; call it through `foreignText`.
   */
  redactOutput?(text: string, spare?: readonly string[]): string;
}

/** `text` that came from a container or the engine, fit for a message (see DockerEngine.redactOutput). */
export const foreignText = (engine: DockerEngine, text: string, spare?: readonly string[]): string => engine.redactOutput?.(text, spare) ?? text;

export interface DetachedSpec {
  image: string;
  name?: string;
  env?: Record<string, string>;
  cmd?: string[];
  labels?: Record<string, string>;
  /** Paths that get a fresh anonymous volume each. */
  volumes?: string[];
  entrypoint?: string[];
  user?: string;
  /** Mounts of other containers (`id` or `id:ro`), at the same paths. */
  volumesFrom?: string[];
  /** No network at all (a helper that only reads files; a throwaway reached by exec only). */
  noNetwork?: boolean;
  /**
   * A network of its own, internal: this host reaches the container, no other container does
   * (a throwaway holding a backup's data, read over HTTP). Removed with the container by `remove`.
   */
  ownInternalNetwork?: boolean;
  /** Docker removes the container once it exits, with its anonymous volumes (never with `volumesFrom`: see `remove`). */
  autoRemove?: boolean;
  /** No healthcheck, whatever the image declares (a helper is not the store). */
  noHealthcheck?: boolean;
}

export interface EngineVersion {
  version: string;
  apiVersion: string;
  /** With several engines (--host): each one's address and version. */
  engines?: Record<string, { url: string; version: string; apiVersion: string }>;
}

export interface ContainerSummary {
  id: string;
  name: string;
  image: string;
  labels: Record<string, string>;
  state: string;
  /** The engine it runs on, when there are several (--host NAME=…). */
  engine?: string;
}

export interface Mount {
  type: string;
  name?: string;
  source: string;
  destination: string;
  /** False for read-only mounts. */
  rw: boolean;
}

export interface ContainerDetails extends ContainerSummary {
  running: boolean;
  paused: boolean;
  /** Healthcheck status when the image defines one ("starting", "healthy", "unhealthy"). */
  health?: string;
  env: Record<string, string>;
  cmd: string[];
  mounts: Mount[];
  imageId: string;
  /** Published ports: "8000/tcp" -> host port. */
  ports?: Record<string, string>;
  /** Address on its first network, reachable from a Linux host. */
  ipAddress?: string;
  /** Its own stop timeout in seconds (Compose stop_grace_period); unset means Docker's 10. */
  stopTimeout?: number;
  /** State.ExitCode and State.OOMKilled: how it ended last. */
  exitCode?: number;
  oomKilled?: boolean;
  /** State.StartedAt: when it last started (a restart changes it; a pause does not). */
  startedAt?: string;
}

export interface ExecOptions {
  env?: Record<string, string>;
  user?: string;
  stdout?: Writable;
  /** Called with each chunk of stderr as it comes (it is still collected for the result). */
  onStderr?: (chunk: Buffer) => void;
  /** The command's stdin. If it fails, the command is killed and exec rejects. */
  stdin?: Readable;
  /** On abort the command (and its children) is killed in the container and exec rejects. */
  signal?: AbortSignal;
}

export interface TransferOptions {
  signal?: AbortSignal;
}

/**
 * The engine with `signal` given to every exec and archive transfer that brings none of its
 * own, for code (drivers) that should stop when the run is interrupted without knowing it.
 */
export function withSignal(engine: DockerEngine, signal: AbortSignal): DockerEngine {
  return {
    engineNames: engine.engineNames,
    select: (name) => withSignal(engine.select(name), signal),
    version: () => engine.version(),
    listContainers: (o) => engine.listContainers(o),
    inspect: (id) => engine.inspect(id),
    exec: (id, cmd, o = {}) => engine.exec(id, cmd, { signal, ...o }),
    getArchive: (id, path, o = {}) => engine.getArchive(id, path, { signal, ...o }),
    putArchive: (id, path, tar, o = {}) => engine.putArchive(id, path, tar, { signal, ...o }),
    stop: (id, t) => engine.stop(id, t),
    start: (id) => engine.start(id),
    pause: (id) => engine.pause(id),
    unpause: (id) => engine.unpause(id),
    runToCompletion: (spec) => engine.runToCompletion(spec),
    runDetached: (spec) => engine.runDetached(spec),
    remove: (id, options) => engine.remove(id, options),
    removeOwnNetworks: (leftBehind) => engine.removeOwnNetworks(leftBehind),
    imageExists: (ref) => engine.imageExists(ref),
    ...(engine.redactOutput ? { redactOutput: engine.redactOutput.bind(engine) } : {}),
  };
}

/**
 * The engine as one service's work sees it: what comes back from it that is foreign text has
 * that service's `secrets` hidden before any code makes a message of it, so no driver has to
 * remember to: every error the engine raises (its message and stack), the stderr of each exec
 * and of each helper run. What a program's stdout holds is data (a dump, a listing) and stays
 * as it is; where a driver quotes it in a message it calls `foreignText`. What we gave the
 * program or the engine (argv, a path, a name) is spared where the text echoes it.
 */
export function withSecrets(engine: DockerEngine, secrets: readonly string[]): DockerEngine {
  if (secrets.length === 0) return engine;
  const hide = (text: string, spare: readonly string[] = []) => redactForeign(text, secrets, spare);
  const guard = <T>(spare: readonly string[], call: () => Promise<T>): Promise<T> => call().catch((err: unknown) => Promise.reject(redactedError(err, (t) => hide(t, spare))));
  const specWords = (spec: { image: string; cmd?: string[]; entrypoint?: string[]; name?: string }) => [spec.image, ...(spec.cmd ?? []), ...(spec.entrypoint ?? []), ...(spec.name ? [spec.name] : [])];
  return {
    engineNames: engine.engineNames,
    select: (name) => withSecrets(engine.select(name), secrets),
    version: () => guard([], () => engine.version()),
    listContainers: (o) => guard([], () => engine.listContainers(o)),
    inspect: (id) => guard([id], () => engine.inspect(id)),
    exec: (id, cmd, o) =>
      guard([id, ...cmd], async () => {
        const r = await engine.exec(id, cmd, o);
        return { ...r, stderr: hide(r.stderr, cmd) };
      }),
    getArchive: (id, path, o) => guard([id, path], () => engine.getArchive(id, path, o)),
    putArchive: (id, path, tar, o) => guard([id, path], () => engine.putArchive(id, path, tar, o)),
    stop: (id, t) => guard([id], () => engine.stop(id, t)),
    start: (id) => guard([id], () => engine.start(id)),
    pause: (id) => guard([id], () => engine.pause(id)),
    unpause: (id) => guard([id], () => engine.unpause(id)),
    runToCompletion: (spec) =>
      guard(specWords(spec), async () => {
        const r = await engine.runToCompletion(spec);
        return { ...r, stderr: hide(r.stderr, specWords(spec)) };
      }),
    // Never the spec's env among the spared words: a throwaway's password is in it.
    runDetached: (spec) => guard(specWords(spec), () => engine.runDetached(spec)),
    remove: (id, options) => guard([id], () => engine.remove(id, options)),
    removeOwnNetworks: (leftBehind) => guard([], () => engine.removeOwnNetworks(leftBehind)),
    imageExists: (ref) => guard([ref], () => engine.imageExists(ref)),
    redactOutput: (text, spare) => hide(engine.redactOutput ? engine.redactOutput(text, spare) : text, spare),
  };
}

/**
 * The same failure with its message (and stack) passed through `hide`: a copy, so that its
 * class, exit code and status code still say what it is (`isNotFound`, exit 6 for a lost
 * engine) and an error object another caller holds is not changed under it.
 */
function redactedError(err: unknown, hide: (text: string) => string): unknown {
  if (typeof err === 'string') return hide(err);
  if (!(err instanceof Error)) return err;
  const message = hide(err.message);
  const stack = err.stack === undefined ? undefined : hide(err.stack);
  if (message === err.message && stack === err.stack) return err;
  const copy = Object.create(Object.getPrototypeOf(err) as object, Object.getOwnPropertyDescriptors(err)) as Error & { json?: unknown };
  Object.defineProperty(copy, 'message', { value: message, writable: true, configurable: true, enumerable: false });
  Object.defineProperty(copy, 'stack', { value: stack, writable: true, configurable: true, enumerable: false });
  // dockerode keeps the engine's answer beside the message: it would tell the same thing.
  if ('json' in copy) copy.json = undefined;
  return keepRawMessage(copy, rawMessage(err));
}

export interface ExecResult {
  exitCode: number;
  /** Collected stdout when no `stdout` stream was given. */
  stdout: string;
  stderr: string;
}

export interface HelperSpec {
  image: string;
  cmd: string[];
  entrypoint?: string[];
  user?: string;
  volumesFrom?: string[];
}

export const unknownEngine = (name: string, known: readonly string[]) =>
  new StackvaultError(
    `No Docker engine named '${name}' is configured (there is ${known.map((k) => `'${k}'`).join(', ')}).`,
    ExitCode.usage,
    `Name it: --host ${name}=URL (unix://, tcp:// with TLS, ssh://) or a docker context, or set STACKVAULT_HOSTS.`,
  );

/** Whether `err` is the engine's "no such container" (or image): the thing is not there. */
export function isNotFound(err: unknown): boolean {
  return (err as { statusCode?: number } | undefined)?.statusCode === 404;
}

/** The program Docker could not start a container with because its image has none (a distroless image has no `sh`), when that is what `err` says. */
export function missingProgram(err: unknown): string | undefined {
  return /exec: "([^"]+)": executable file not found/.exec(errorMessage(err))?.[1];
}

/** For `.catch`: undefined when the engine said "not there", else the failure as it was. */
export function undefinedIfNotFound(err: unknown): undefined {
  if (isNotFound(err)) return undefined;
  throw err;
}

/**
 * The container's details, or undefined when it is gone: for a container just seen in a
 * listing, which another run (its helpers, a test) may have removed since.
 */
export function inspectIfPresent(engine: DockerEngine, containerId: string): Promise<ContainerDetails | undefined> {
  return engine.inspect(containerId).catch(undefinedIfNotFound);
}
