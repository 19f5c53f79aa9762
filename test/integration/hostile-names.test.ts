import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, startRedis } from '../support/containers.js';

/**
 * A service name is input: a Compose service label, or a manifest that was copied in, edited or
 * planted. The README promises every control character of such text is shown as \xNN: no ESC
 * (colours, screen clears), OSC (window titles, hyperlinks), BEL, C1 CSI or newline (a forged
 * line) reaches the terminal, in the progress lines (`X: backing up`, `X: verifying`,
 * `X: restoring`, `X: computed …`, the driver's own log lines) as in the result lines.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;
const HOSTILE = 'esc\x1b]0;pwned-title\x07\x1b[2J\nFORGED: ok\r\x9b31m';

function expectNoControl(r: { stdout: unknown; stderr: unknown }) {
  for (const text of [String(r.stdout), String(r.stderr)]) {
    const hit = RAW_CONTROL.exec(text);
    expect(hit ? `raw 0x${hit[0].charCodeAt(0).toString(16)} in: ${JSON.stringify(text)}` : undefined).toBeUndefined();
    // A newline inside a name would start a line of its own.
    expect(text).not.toMatch(/^FORGED/m);
  }
}

describe('control characters in service names never reach the terminal raw', () => {
  const project = newProjectName('hostile-names');
  let redis: StartedTestContainer;
  let dir: string;

  beforeAll(async () => {
    redis = await startRedis({ project, service: HOSTILE, password: false });
    dir = await tempDir('hostile-names');
  });
  afterAll(async () => {
    await redis?.stop().catch(() => undefined);
  });

  it('create, verify --deep and restore of a service whose Compose label holds ESC, OSC, BEL and a newline', async () => {
    const created = await bot(['backup', 'create', '--project', project, '--dir', dir, '--verbose']);
    expect(created.exitCode, String(created.stderr)).toBe(0);
    expectNoControl(created);
    expect(String(created.stdout)).toContain('esc\\x1b]0;pwned-title\\x07\\x1b[2J\\x0aFORGED');

    const verified = await bot(['backup', 'verify', 'latest', '--deep', '--dir', dir]);
    expect(verified.exitCode, String(verified.stderr)).toBe(0);
    expectNoControl(verified);
    expect(String(verified.stdout)).toMatch(/esc\\x1b.*: verifying/);

    const restored = await bot(['backup', 'restore', 'latest', '--yes', '--dir', dir]);
    expect(restored.exitCode, String(restored.stderr)).toBe(0);
    expectNoControl(restored);
    expect(String(restored.stdout)).toMatch(/esc\\x1b.*: restoring/);
  });

  it('a planted manifest whose service name holds them: verify --deep and restore print them escaped', async () => {
    const id = (await readdir(dir)).filter((n) => n.includes('_backup_')).sort()[0]!;
    const file = join(dir, id, 'manifest.json');
    const manifest = JSON.parse(await readFile(file, 'utf8')) as { services: Array<{ name: string }> };
    manifest.services[0]!.name = `planted\x1b]8;;http://evil.example\x07link\x1b]8;;\x07\nFORGED: ok`;
    await writeFile(file, JSON.stringify(manifest, null, 2));

    const verified = await bot(['backup', 'verify', id, '--deep', '--dir', dir]);
    expectNoControl(verified);
    expect(String(verified.stdout)).toMatch(/planted\\x1b\]8;;http:\/\/evil\.example\\x07link/);

    const restored = await bot(['backup', 'restore', id, '--yes', '--dir', dir]);
    expectNoControl(restored);
  });
});
