import { posix } from 'node:path';

/** What discovery knows about a container when it picks a driver. */
export interface Recognisable {
  name: string;
  image: string;
  labels: Record<string, string>;
  env: Record<string, string>;
  cmd: string[];
}

/** `docker.io/library/postgres:17@sha256:...` -> `postgres`. */
export function imageRepoName(image: string): string {
  const noDigest = image.split('@')[0] ?? image;
  const last = noDigest.split('/').pop() ?? noDigest;
  return last.split(':')[0]!.toLowerCase();
}

export interface ServerSigns {
  /** Image repository names that are this server (exact: `postgres-exporter` is not `postgres`). */
  images: readonly string[];
  /** Environment variables the official images set (PG_MAJOR, REDIS_VERSION, ...). */
  env: readonly string[];
  /** Server programs: a container whose command runs one of them is this server. */
  binaries: readonly string[];
}

/**
 * Whether a container IS this server, from what it holds rather than from a name prefix: the
 * exact image name, the official image's environment, or the server program in its command.
 * Exporters and admin UIs (`postgres-exporter`, `redis-commander`) have none of these.
 */
export function isServer(c: Recognisable, signs: ServerSigns): boolean {
  if (signs.images.includes(imageRepoName(c.image))) return true;
  if (signs.env.some((k) => c.env[k] !== undefined && c.env[k] !== '')) return true;
  return c.cmd.slice(0, 3).some((arg) => signs.binaries.includes(posix.basename(arg)));
}
