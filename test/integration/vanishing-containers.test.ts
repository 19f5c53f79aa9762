import Docker from 'dockerode';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { discover } from '../../src/core/discovery.js';
import { DockerodeEngine } from '../../src/docker/dockerode-engine.js';
import { DRIVERS } from '../../src/drivers/registry.js';
import { newProjectName } from '../support/containers.js';
import { IMAGES } from '../support/images.js';

const docker = new Docker();
const realGetContainer = Docker.prototype.getContainer;

/**
 * Makes the engine remove `victimId` for real just before stackvault's first inspection of it:
 * the interleaving of a helper (another run's) removed between a listing and its inspection,
 * forced instead of waited for. The engine, the container and its 404 are real.
 */
function removedWhenInspected(victimId: string): void {
  vi.spyOn(Docker.prototype, 'getContainer').mockImplementation(function (this: Docker, id: string) {
    const real = realGetContainer.call(this, id);
    if (id !== victimId) return real;
    const inspect = async () => {
      await real.remove({ force: true, v: true }).catch(() => undefined);
      return real.inspect();
    };
    return Object.assign(Object.create(Object.getPrototypeOf(real) as object) as Docker.Container, real, { inspect });
  });
}

describe('a container removed between the listing and its inspection', () => {
  const project = newProjectName('vanish');
  const created: string[] = [];
  const create = async (image: string, service: string) => {
    const c = await docker.createContainer({ Image: image, Cmd: ['true'], Labels: { 'com.docker.compose.project': project, 'com.docker.compose.service': service } });
    created.push(c.id);
    return c.id;
  };
  afterEach(async () => {
    vi.restoreAllMocks();
    await Promise.all(
      created.splice(0).map((id) =>
        docker
          .getContainer(id)
          .remove({ force: true, v: true }) // with its anonymous volumes (the image declares some)
          .catch(() => undefined),
      ),
    );
  });

  it('is left out of the listing when it was created from an image id (as helpers are)', async () => {
    const imageId = (await docker.getImage(IMAGES.app).inspect()).Id;
    const victim = await create(imageId, 'helper');
    const kept = await create(imageId, 'kept');
    removedWhenInspected(victim);
    const listed = await new DockerodeEngine().listContainers({ all: true });
    const ids = listed.map((c) => c.id);
    expect(ids).not.toContain(victim);
    expect(ids).toContain(kept);
    expect(listed.find((c) => c.id === kept)?.image).toBe(imageId);
  });

  it('is not there for discovery, which still finds the rest of its project', async () => {
    const victim = await create(IMAGES.app, 'gone');
    // Redis is a store, so the project counts, and the app beside it would be an app container.
    const kept = await create(IMAGES.redis, 'redis');
    removedWhenInspected(victim);
    const found = await discover(new DockerodeEngine(), DRIVERS, { project });
    const seen = [...found.running, ...found.notRunning].map((c) => c.container.id);
    expect(seen).toContain(kept);
    expect(seen).not.toContain(victim);
    expect(found.leftOut.map((l) => l.service)).not.toContain('gone');
  });
});
