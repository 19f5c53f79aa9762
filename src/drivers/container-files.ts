import { PassThrough } from 'node:stream';
import type { ContainerDetails, DockerEngine } from '../docker/engine.js';
import { writeTar, type BuildEntry } from '../util/tar-build.js';

/** The mount (volume or bind) a path lives on, if any. */
export function mountOf(container: ContainerDetails, path: string) {
  return container.mounts.filter((m) => path === m.destination || path.startsWith(`${m.destination.replace(/\/$/, '')}/`)).sort((a, b) => b.destination.length - a.destination.length)[0];
}

/**
 * Removes paths (or, with `contents`, everything inside them) from a STOPPED container's
 * volumes. A stopped container cannot exec, so a short-lived helper container of the same
 * image mounts its volumes (--volumes-from) and deletes there. Paths must be on a mount.
 */
export async function removeFromVolumes(engine: DockerEngine, container: ContainerDetails, paths: string[], mode: 'contents' | 'paths'): Promise<void> {
  const unmounted = paths.filter((p) => !mountOf(container, p));
  if (unmounted.length) throw new Error(`cannot empty ${unmounted.join(', ')}: not on a volume or bind mount of ${container.name}`);
  const script = mode === 'contents' ? 'set -e; for p; do if [ -d "$p" ]; then find "$p" -mindepth 1 -delete; fi; done' : 'set -e; for p; do rm -rf -- "$p"; done';
  const r = await engine.runToCompletion({ image: container.imageId, entrypoint: ['sh', '-c', script, 'sh'], cmd: paths, user: '0:0', volumesFrom: [container.id] });
  if (r.exitCode !== 0) throw new Error(`emptying ${paths.join(', ')} failed: ${r.stderr.trim().split('\n').pop()}`);
}

/** Streams a tar built from `entries` into `dir` of the container (running or stopped). */
export async function putFiles(engine: DockerEngine, containerId: string, dir: string, entries: BuildEntry[]): Promise<void> {
  const tar = new PassThrough();
  const writing = writeTar(entries, tar).then(
    () => tar.end(),
    (err: unknown) => {
      tar.destroy(err as Error);
      throw err;
    },
  );
  await Promise.all([engine.putArchive(containerId, dir, tar), writing]);
}

/** `uid:gid` -> numbers; undefined when unknown. */
export function parseOwner(owner: string | undefined): { uid: number; gid: number } | undefined {
  const m = /^(\d+):(\d+)$/.exec(owner ?? '');
  return m ? { uid: Number(m[1]), gid: Number(m[2]) } : undefined;
}
