import type { Readable, Writable } from 'node:stream';

/** What stackvault needs from Docker, and nothing more: core logic is written against this. */
export interface DockerEngine {
  version(): Promise<EngineVersion>;
  listContainers(options?: { all?: boolean }): Promise<ContainerSummary[]>;
  inspect(containerId: string): Promise<ContainerDetails>;
  /** Runs a command; stdout goes to `stdout` when given (streamed), else it is collected. */
  exec(containerId: string, cmd: string[], options?: ExecOptions): Promise<ExecResult>;
  getArchive(containerId: string, path: string): Promise<Readable>;
  putArchive(containerId: string, path: string, tar: Readable): Promise<void>;
  stop(containerId: string, timeoutSeconds?: number): Promise<void>;
  start(containerId: string): Promise<void>;
  pause(containerId: string): Promise<void>;
  unpause(containerId: string): Promise<void>;
  /** Runs a short-lived container to completion and removes it. */
  runToCompletion(spec: HelperSpec): Promise<ExecResult>;
  /** Creates and starts a container (throwaway verification targets); returns its id. */
  runDetached(spec: DetachedSpec): Promise<string>;
  /** Removes a container and its anonymous volumes. */
  remove(containerId: string): Promise<void>;
  imageExists(ref: string): Promise<boolean>;
}

export interface DetachedSpec {
  image: string;
  name?: string;
  env?: Record<string, string>;
  cmd?: string[];
  labels?: Record<string, string>;
  /** Paths that get a fresh anonymous volume each. */
  volumes?: string[];
}

export interface EngineVersion {
  version: string;
  apiVersion: string;
}

export interface ContainerSummary {
  id: string;
  name: string;
  image: string;
  labels: Record<string, string>;
  state: string;
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
}

export interface ExecOptions {
  env?: Record<string, string>;
  user?: string;
  stdout?: Writable;
  stdin?: Readable;
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
