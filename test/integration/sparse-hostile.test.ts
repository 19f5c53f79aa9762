import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import { Header, Pax } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName } from '../support/containers.js';
import { IMAGES } from '../support/images.js';
import { execIn } from '../support/stack-content.js';
import { replaceArtifact } from '../support/tamper.js';
import { removeQuietly } from '../support/cleanup.js';

const MiB = 1024 * 1024;

interface E {
  path: string;
  type?: string;
  linkpath?: string;
  data?: Buffer;
  mode?: number;
}
function tarOf(entries: E[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    const fields = {
      path: e.path,
      type: (e.type ?? 'File') as 'File',
      linkpath: e.linkpath,
      size: e.type && e.type !== 'File' ? 0 : data.length,
      mode: e.mode ?? 0o644,
      uid: 0,
      gid: 0,
      mtime: new Date(1_600_000_000_000),
    };
    const h = new Header(fields);
    if (h.encode()) blocks.push(new Pax(fields).encode());
    blocks.push(h.block!);
    if (data.length) blocks.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
const sparseData = () => {
  const b = Buffer.alloc(16 * MiB);
  b.write('head', 0);
  b.write('tail', 16 * MiB - 10);
  return b;
};

describe('rvsparse: hostile archives with sparse files', () => {
  const docker = new Docker();
  const project = newProjectName('rvsparse');
  let dir: string;
  let containerId: string;
  let backupId: string;

  beforeAll(async () => {
    dir = await tempDir('rvsparse');
    const c = await docker.createContainer({
      Image: IMAGES.appstub,
      name: `${project}-app`,
      Labels: { 'com.docker.compose.project': project, 'com.docker.compose.service': 'app' },
      HostConfig: {
        Mounts: [
          { Type: 'volume', Source: `${project}-disk`, Target: '/srv/disk' },
          { Type: 'volume', Source: `${project}-other`, Target: '/srv/other' },
        ],
      },
    });
    containerId = c.id;
    await c.start();
    await execIn(containerId, ['sh', '-c', 'mkdir -p /srv/disk/d && echo hi > /srv/disk/small && echo secret > /srv/other/keep']);
    const r = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const m = JSON.parse(String(r.stdout)) as Manifest;
    backupId = m.id;
  });

  afterAll(async () => {
    await removeQuietly({ containers: [containerId], volumes: [`${project}-disk`, `${project}-other`], dirs: [dir] });
  });

  const attempt = async (entries: E[]) => {
    await replaceArtifact(join(dir, backupId), 'app', tarOf(entries));
    // A crafted backup records no fingerprint: the restore computes it from the artifact.
    const mf = join(dir, backupId, 'manifest.json');
    const manifest = JSON.parse(await readFile(mf, 'utf8')) as Manifest;
    delete manifest.services[0]!.fingerprint;
    await writeFile(mf, JSON.stringify(manifest, null, 2));
    const r = await bot(['backup', 'restore', backupId, '--yes', '--dir', dir], { timeout: 300_000 });
    const out = String(r.stdout) + String(r.stderr);
    const after = await execIn(containerId, [
      'sh',
      '-c',
      'find / -xdev \\( -path /proc -o -path /sys \\) -prune -o -newer /srv/stamp -print 2>/dev/null; echo ---; find /srv -printf "%y %p %s %m %l\\n" | sort',
    ]);
    const helpers = await docker.listContainers({ all: true, filters: { label: [`stackvault.helper-for=${containerId}`] } });
    return { r, out, after, helpers };
  };

  it('a directory replaced by a symlink after the sparse file inside it', async () => {
    await execIn(containerId, ['sh', '-c', 'touch /srv/stamp']);
    const res = await attempt([
      { path: 'disk/', type: 'Directory', mode: 0o755 },
      { path: 'other/', type: 'Directory', mode: 0o755 },
      { path: 'disk/x/', type: 'Directory', mode: 0o755 },
      { path: 'disk/d/', type: 'Directory', mode: 0o755 },
      { path: 'disk/d/big', data: sparseData() },
      { path: 'disk/d', type: 'SymbolicLink', linkpath: '/srv/disk/x' },
    ]);
    // Refused by the content check and rolled back; nothing written beside the recorded paths.
    expect(res.r.exitCode).toBe(5);
    expect(res.after).toContain('f /srv/other/keep 7 644');
    expect(res.after).not.toMatch(/big/);
    expect(res.helpers).toEqual([]);
  });

  for (const kind of ['sparse'] as const) {
    const fill = () => (kind === 'sparse' ? sparseData() : Buffer.from('dense data'));
    for (const nl of [''])
      it(`${kind}: a long name ${JSON.stringify(nl)}`, async () => {
        await execIn(containerId, ['sh', '-c', 'touch /srv/stamp']);
        const name = `disk/${'n'.repeat(120)}${nl}line/${'m'.repeat(150)}`;
        const res = await attempt([
          { path: 'disk/', type: 'Directory', mode: 0o755 },
          { path: 'other/', type: 'Directory', mode: 0o755 },
          { path: `disk/${'n'.repeat(120)}${nl}line/`, type: 'Directory', mode: 0o700 },
          { path: name, data: fill() },
        ]);
        expect(res.r.exitCode, res.out).toBe(0);
        expect(res.out).toMatch(/content equal/);
        expect(res.out).not.toMatch(/without them/);
        expect(res.helpers).toEqual([]);
      });

    it(`${kind}: a name starting with -- and a name -`, async () => {
      await execIn(containerId, ['sh', '-c', 'touch /srv/stamp']);
      const res = await attempt([
        { path: 'disk/', type: 'Directory', mode: 0o755 },
        { path: 'other/', type: 'Directory', mode: 0o755 },
        { path: 'disk/--to-command=touch', data: fill() },
        { path: 'disk/-', data: fill() },
      ]);
      expect(res.r.exitCode, res.out).toBe(0);
      expect(res.out).toMatch(/content equal/);
      expect(res.out).not.toMatch(/without them/);
      // Written by GNU tar with their holes: 16 MiB long, a few KiB on disk.
      for (const f of ['/srv/disk/-', '/srv/disk/--to-command=touch']) expect(Number((await execIn(containerId, ['stat', '-c', '%b', f])).trim()) * 512).toBeLessThan(MiB);
      expect(res.helpers).toEqual([]);
    });
  }
});
