import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName } from '../support/containers.js';
import { execIn } from '../support/stack-content.js';
import { IMAGES } from '../support/images.js';
import { mountTmpfs } from '../support/mounts.js';
import { removeQuietly } from '../support/cleanup.js';

const MiB = 1024 * 1024;

/**
 * Sparse files (a VM disk image, a preallocated database file, `truncate -s 20G`) in an app's
 * volume and bind mount: a restore must give them back with their holes, not write every zero
 * byte (which can fill the disk). Content, owner, mode and times are read back in the container
 * by coreutils (sha256sum, stat), not by stackvault; the allocation by `stat %b` there and by
 * the host's stat for the bind. The backups go to a 48 MiB tmpfs: the raw copy a backup stages
 * beside them while the app runs (pre-copy), and an uncompressed artifact, must not take the
 * holes' room either (1.3 GiB).
 */
describe('sparse files keep their holes through a backup and a restore', () => {
  const docker = new Docker();
  const project = newProjectName('sparse');
  const volume = `${project}-disk`;
  let bind: string;
  let dir: string;
  let id: string;
  let containerId: string;

  /** Every file under both mounts: size, owner, mode, mtime, SHA-256, and each directory's owner, mode, mtime. */
  const facts = () => execIn(containerId, ['sh', '-c', 'cd /srv && find disk uploads -printf "%y %p %s %U:%G %m %Ts\\n" | sort && find disk uploads -type f -print0 | sort -z | xargs -0 sha256sum']);
  /** Bytes allocated on disk for a file in the container (stat's %b is in 512-byte units). */
  const allocated = async (path: string) => Number((await execIn(containerId, ['stat', '-c', '%b', path])).trim()) * 512;

  beforeAll(async () => {
    bind = await tempDir('sparse-bind');
    dir = await tempDir('sparse-backups');
    await mountTmpfs(dir, 'size=48m');
    const c = await docker.createContainer({
      Image: IMAGES.appstub,
      name: `${project}-app`,
      Labels: { 'com.docker.compose.project': project, 'com.docker.compose.service': 'app' },
      HostConfig: { Mounts: [{ Type: 'volume', Source: volume, Target: '/srv/disk' }], Binds: [`${bind}:/srv/uploads`] },
    });
    containerId = c.id;
    await c.start();
    // A 1 GiB disk image with 3 MiB written at scattered places, ending in a hole; a
    // preallocated file of another owner and mode ending in data, in a directory with an old
    // mtime; a file that is all hole; an ordinary small file; and in the bind, 256 MiB with
    // 1 MiB at the start.
    await execIn(containerId, [
      'sh',
      '-c',
      [
        'set -e',
        'truncate -s 1G /srv/disk/vm.img',
        'for o in 0 300 701; do head -c 1048576 /dev/urandom | dd of=/srv/disk/vm.img bs=1M seek=$o conv=notrunc status=none; done',
        'mkdir /srv/disk/db',
        'truncate -s 64M /srv/disk/db/prealloc.dat',
        'head -c 100000 /dev/urandom | dd of=/srv/disk/db/prealloc.dat bs=1 seek=$((64*1048576-100000)) conv=notrunc status=none',
        'chown 1234:2345 /srv/disk/db/prealloc.dat && chmod 640 /srv/disk/db/prealloc.dat',
        'touch -d 2021-02-03T04:05:06 /srv/disk/db/prealloc.dat /srv/disk/db',
        'truncate -s 100M /srv/disk/all-hole',
        'echo hello > /srv/disk/small.txt',
        'truncate -s 256M /srv/uploads/blob.bin',
        'head -c 1048576 /dev/urandom | dd of=/srv/uploads/blob.bin conv=notrunc status=none',
      ].join('\n'),
    ]);
  });

  afterAll(async () => {
    await removeQuietly({ containers: [containerId], volumes: [volume], dirs: [bind] });
    await execa('umount', [dir], { reject: false });
    await rm(dir, { recursive: true, force: true });
  });

  it('the backup holds the files, and the restore puts them back equal, with their holes', async () => {
    const before = await facts();
    expect(await allocated('/srv/disk/vm.img')).toBeLessThan(8 * MiB);

    // Uncompressed: the artifact holds every zero byte Docker's archive gives (1.3 GiB of them).
    const c = await bot(['backup', 'create', '--json', '--compress', 'none', '--project', project, '--dir', dir], { timeout: 300_000 });
    expect(c.exitCode, String(c.stderr)).toBe(0);
    const m = JSON.parse(String(c.stdout)) as Manifest;
    id = m.id;
    // Its holes take no room on disk (which has 48 MiB).
    const artifact = await stat(join(dir, m.id, m.services[0]!.artifact!));
    expect(artifact.size).toBeGreaterThan(1300 * MiB);
    expect(artifact.blocks * 512).toBeLessThan(16 * MiB);
    // Staged beside the backups while the app ran, only what changed copied while it was paused.
    expect(String(c.stderr)).not.toMatch(/no pre-copy/);
    expect(m.services[0]!.details!.preCopy).toBeDefined();

    // Everything changes: the restore must put back exactly the backup's files.
    await execIn(containerId, ['sh', '-c', 'rm -rf /srv/disk/* /srv/uploads/* && head -c 5000000 /dev/urandom > /srv/disk/vm.img && echo new > /srv/uploads/other']);

    const r = await bot(['backup', 'restore', id, '--yes', '--dir', dir], { timeout: 300_000 });
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    expect(String(r.stdout) + String(r.stderr)).toMatch(/content equal/);
    expect(String(r.stdout) + String(r.stderr)).not.toMatch(/no pre-copy|without them/);
    expect(await facts()).toBe(before);
    const point = (JSON.parse(String((await bot(['backup', 'list', '--json', '--dir', dir])).stdout)) as Manifest[]).find((b) => b.type === 'restore-point');
    expect(point, 'a restore point').toBeDefined();
    expect(point!.services[0]!.details!.preCopy).toBeDefined();

    // The holes are holes again: only what holds data takes room (a dense restore takes the
    // apparent size: 1 GiB, 64 MiB, 100 MiB, 256 MiB).
    expect(await allocated('/srv/disk/vm.img')).toBeLessThan(8 * MiB);
    expect(await allocated('/srv/disk/db/prealloc.dat')).toBeLessThan(2 * MiB);
    expect(await allocated('/srv/disk/all-hole')).toBeLessThan(MiB);
    expect((await stat(join(bind, 'blob.bin'))).blocks * 512).toBeLessThan(4 * MiB);
    expect((await stat(join(bind, 'blob.bin'))).size).toBe(256 * MiB);
    // The helper that wrote them is gone.
    expect(await docker.listContainers({ all: true, filters: { label: [`stackvault.helper-for=${containerId}`] } })).toEqual([]);
  });
});

describe('an image without GNU tar', () => {
  const docker = new Docker();
  const project = newProjectName('sparse-notar');
  const image = `${project}:1`;
  let containerId: string;
  let dir: string;

  beforeAll(async () => {
    dir = await tempDir('sparse-notar');
    // The app's image with its tar gone (as in an image whose tar is BusyBox's): helpers run the image, not the container.
    const base = await docker.createContainer({ Image: IMAGES.appstub, Entrypoint: ['rm', '/usr/bin/tar'] });
    await base.start();
    await base.wait();
    await base.commit({ repo: project, tag: '1', changes: ['ENTRYPOINT ["/usr/local/bin/app-standin"]'] });
    await base.remove();
    const c = await docker.createContainer({
      Image: image,
      name: `${project}-app`,
      Labels: { 'com.docker.compose.project': project, 'com.docker.compose.service': 'app' },
      HostConfig: { Mounts: [{ Type: 'volume', Source: `${project}-disk`, Target: '/srv/disk' }] },
    });
    containerId = c.id;
    await c.start();
    await execIn(containerId, ['sh', '-c', 'truncate -s 64M /srv/disk/img && head -c 1048576 /dev/urandom | dd of=/srv/disk/img bs=1M seek=20 conv=notrunc status=none']);
  });

  afterAll(async () => {
    await removeQuietly({ containers: [containerId], volumes: [`${project}-disk`], images: [image], dirs: [dir] });
  });

  it('restores the file equal, written whole as before, and says so', async () => {
    const sum = () => execIn(containerId, ['sha256sum', '/srv/disk/img']);
    const before = await sum();
    const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(c.exitCode, String(c.stderr)).toBe(0);
    await execIn(containerId, ['sh', '-c', 'echo changed > /srv/disk/img']);
    const r = await bot(['backup', 'restore', 'latest', '--yes', '--dir', dir]);
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    expect(String(r.stdout)).toMatch(/content equal/);
    expect(String(r.stdout)).toMatch(/app: 1 file\(s\) with 63 MB of holes restored without them, every zero written: its image has no GNU tar, which writes holes/);
    expect(await sum()).toBe(before);
    expect(Number((await execIn(containerId, ['stat', '-c', '%b', '/srv/disk/img'])).trim()) * 512).toBeGreaterThanOrEqual(64 * MiB);
    expect(await docker.listContainers({ all: true, filters: { label: [`stackvault.helper-for=${containerId}`] } })).toEqual([]);
  });
});
