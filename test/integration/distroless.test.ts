import Docker from 'dockerode';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/artifacts.js';
import { removeQuietly } from '../support/cleanup.js';
import { bot } from '../support/cli.js';
import { newProjectName, redisCli, startRedis, startVolumeApp } from '../support/containers.js';
import { IMAGES } from '../support/images.js';
import { execIn } from '../support/stack-content.js';

/**
 * An app on an image without a shell (distroless, scratch-based), beside a store that has one.
 * A restore empties the app's volume with a helper container, which ran `sh` in the app's own
 * image: the backup was shown ✅, and its restore failed, as did putting the restore point back.
 * The files are read back by Python's hashlib in the app's container, not by stackvault.
 */
describe('an app whose image has no shell', () => {
  const docker = new Docker();
  const project = newProjectName('distroless');
  const image = `${project}-nosh:1`;
  let app: string;
  let redis: StartedTestContainer;
  let dir: string;

  const facts = () =>
    execIn(app, [
      'python3',
      '-c',
      'import hashlib, os\nfor root, dirs, files in sorted(os.walk("/srv/data")):\n  for f in sorted(files):\n    p = os.path.join(root, f)\n    print(p, oct(os.stat(p).st_mode), hashlib.sha256(open(p, "rb").read()).hexdigest())',
    ]);

  beforeAll(async () => {
    dir = await tempDir('distroless');
    // The test image without sh, dash or bash (its app is Python).
    const base = await docker.createContainer({ Image: IMAGES.appstub, Entrypoint: ['rm', '-f', '/usr/bin/sh', '/usr/bin/dash', '/usr/bin/bash'] });
    await base.start();
    await base.wait();
    await base.commit({ repo: `${project}-nosh`, tag: '1', changes: ['ENTRYPOINT ["/usr/local/bin/app-standin"]'] });
    await base.remove();
    app = await startVolumeApp({ project, volume: `${project}-data`, target: '/srv/data', image });
    const probe = await docker.getContainer(app).exec({ Cmd: ['sh', '-c', 'true'], AttachStdout: true, AttachStderr: true });
    const probed = await probe.start({});
    probed.resume();
    await new Promise((r) => probed.on('end', r));
    expect((await probe.inspect()).ExitCode).not.toBe(0); // really no shell
    await execIn(app, ['python3', '-c', 'import os\nos.makedirs("/srv/data/sub", exist_ok=True)\nfor i in range(20): open(f"/srv/data/sub/f{i}", "wb").write(os.urandom(i * 1000))']);
    redis = await startRedis({ project });
  }, 180_000);

  afterAll(async () => {
    await redis?.stop();
    await removeQuietly({ containers: [app], volumes: [`${project}-data`], images: [image], dirs: [dir] });
  });

  it('restores with every file as it was (the helper that empties its volume runs in another image of the stack); a drill says why it is not drilled', async () => {
    const before = await facts();
    await redisCli(redis, 'SET', 'kept', 'before');
    // Redis keeps /data on an anonymous volume (its image's VOLUME): the helpers that empty it
    // are removed with their anonymous volumes, and Docker must keep this one, which Redis holds.
    const dataVolume = async () => (await docker.getContainer(redis.getId()).inspect()).Mounts.find((m) => m.Destination === '/data')?.Name;
    const volumeBefore = await dataVolume();
    expect(volumeBefore).toMatch(/^[0-9a-f]{64}$/);
    const created = await bot(['backup', 'create', '--project', project, '--dir', dir]);
    expect(created.exitCode, String(created.stderr)).toBe(0);
    await redisCli(redis, 'SET', 'kept', 'after');
    await execIn(app, ['python3', '-c', 'import os\nos.remove("/srv/data/sub/f3")\nopen("/srv/data/junk", "w").write("x")\nopen("/srv/data/sub/f5", "w").write("changed")']);
    const restored = await bot(['backup', 'restore', 'latest', '--yes', '--dir', dir]);
    expect(restored.exitCode, String(restored.stdout) + String(restored.stderr)).toBe(0);
    expect(await facts()).toBe(before);
    expect(await dataVolume()).toBe(volumeBefore);
    expect(await redisCli(redis, 'GET', 'kept')).toBe('"before"');
    // A drill cannot keep an empty copy of the app running (no shell to wait in): said so, the rest drilled.
    const drill = await bot(['backup', 'drill', 'latest', '--json', '--dir', dir]);
    const result = JSON.parse(String(drill.stdout)) as { services: Record<string, { ok: boolean; check: string }> };
    expect(result.services.redis?.ok, String(drill.stderr)).toBe(true);
    expect(result.services.app).toEqual({ ok: false, check: `not drilled: its image ${image} has no sh to keep an empty copy running in (a distroless image?)` });
  }, 300_000);
});
