import { rm } from 'node:fs/promises';
import Docker from 'dockerode';

/** Removes what a test made, whatever is already gone: containers (forced), then volumes, images and host directories. */
export async function removeQuietly(made: { containers?: string[]; volumes?: string[]; images?: string[]; dirs?: string[] }): Promise<void> {
  const docker = new Docker();
  for (const id of made.containers ?? [])
    await docker
      .getContainer(id)
      .remove({ force: true })
      .catch(() => undefined);
  for (const name of made.volumes ?? [])
    await docker
      .getVolume(name)
      .remove()
      .catch(() => undefined);
  for (const name of made.images ?? [])
    await docker
      .getImage(name)
      .remove()
      .catch(() => undefined);
  for (const dir of made.dirs ?? []) await rm(dir, { recursive: true, force: true });
}
