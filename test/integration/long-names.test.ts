import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/artifacts.js';
import { removeQuietly } from '../support/cleanup.js';
import { bot } from '../support/cli.js';
import { newProjectName, startVolumeApp } from '../support/containers.js';
import { execIn } from '../support/stack-content.js';

/**
 * Names too long for a tar header's 100 bytes travel in PAX records, which node-tar read
 * wrongly in two ways: a record whose value holds a newline was dropped, and a record of
 * multi-byte characters cut between two chunks of the engine's stream was garbled. Either way
 * the name fell back to its first 100 bytes, and the restore refused the archive (so a backup
 * reported ✅ could not be restored). Here: a deep tree of Cyrillic and CJK names (hundreds of
 * PAX records, so some straddle the stream's chunks), long names with newlines, a directory
 * with one, and a symbolic link to a long CJK target. What comes back is read in the container
 * by GNU find, stat and sha256sum, not by stackvault.
 */
describe('long names (PAX records) with newlines and multi-byte characters', () => {
  const project = newProjectName('longnames');
  const volume = `${project}-data`;
  let dir: string;
  let containerId: string;

  /** Every entry's name, type, mode and link target, and every file's SHA-256, in name order. */
  const facts = () => execIn(containerId, ['sh', '-c', 'cd /srv/data && find . -mindepth 1 -printf "%p|%y|%m|%l\\0" | sort -z && find . -type f -print0 | sort -z | xargs -0 sha256sum']);

  beforeAll(async () => {
    dir = await tempDir('longnames');
    containerId = await startVolumeApp({ project, volume, target: '/srv/data', labels: { 'stackvault.paths': '/srv/data' } });
    await execIn(containerId, [
      'sh',
      '-c',
      [
        'set -e',
        'cd /srv/data',
        `deep="${'ж'.repeat(100)}/${'語'.repeat(60)}/${'é'.repeat(100)}"`,
        'mkdir -p "$deep"',
        'i=0; while [ $i -lt 300 ]; do head -c $((i * 37)) /dev/urandom > "$deep/файл-$i-$(printf "ж%.0s" $(seq 1 60))"; i=$((i + 1)); done',
        `long="${'n'.repeat(120)}"`,
        'printf one > "$long\nsecond line"',
        'printf two > "$long=\n=\nend"',
        'mkdir "$long\ndir" && printf three > "$long\ndir/inside"',
        `ln -s "$deep/${'語'.repeat(40)}" "link-$long"`,
      ].join('\n'),
    ]);
  }, 180_000);

  afterAll(async () => {
    await removeQuietly({ containers: [containerId], volumes: [volume], dirs: [dir] });
  });

  it('back up, verify --deep and restore with every name, link and byte as it was', async () => {
    const before = await facts();
    expect(before.split('\0').length).toBeGreaterThan(300);
    const created = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(created.exitCode, String(created.stderr)).toBe(0);
    const id = (JSON.parse(String(created.stdout)) as { id: string }).id;
    const verified = await bot(['backup', 'verify', id, '--deep', '--dir', dir]);
    expect(verified.exitCode, String(verified.stdout) + String(verified.stderr)).toBe(0);

    await execIn(containerId, ['sh', '-c', 'cd /srv/data && rm -rf ./* && echo junk > junk']);
    const restored = await bot(['backup', 'restore', id, '--yes', '--dir', dir]);
    expect(restored.exitCode, String(restored.stdout) + String(restored.stderr)).toBe(0);
    expect(await facts()).toBe(before);
  }, 600_000);
});
