import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openArtifact } from '../../src/core/artifact-check.js';
import { ArtifactStaging } from '../../src/core/artifact-staging.js';
import type { ServiceEntry } from '../../src/core/manifest.js';

/**
 * What a restore checks is what it writes (HUNT-TAR F3): every read of an artifact is checked
 * against the manifest's SHA-256 before its end is passed on, and a staged copy is read, not
 * the backup's file, however often the driver opens it.
 */
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const never = new AbortController().signal;

async function backupWith(content: Buffer): Promise<{ root: string; path: string; entry: ServiceEntry }> {
  const root = await mkdtemp(join(tmpdir(), 'svu-staging-'));
  const path = join(root, 'backup');
  await mkdir(path);
  await writeFile(join(path, 'redis.tar'), content);
  const entry = { name: 'redis', driver: 'redis', status: 'ok', artifact: 'redis.tar', bytes: content.length, sha256: sha(content), compression: 'none', durationMs: 1 } as ServiceEntry;
  return { root, path, entry };
}

/** Everything a reader got before the stream ended or failed, and how it ended. */
async function drain(stream: NodeJS.ReadableStream): Promise<{ bytes: Buffer; error?: Error & { exitCode?: number } }> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of stream) chunks.push(c as Buffer);
    return { bytes: Buffer.concat(chunks) };
  } catch (err) {
    return { bytes: Buffer.concat(chunks), error: err as Error };
  }
}

describe('every read of an artifact is checked against the manifest', () => {
  it('a file changed after its check (same size) fails the read with exit 5, and its last bytes are never passed on', async () => {
    const honest = randomBytes(300_000);
    const { path, entry } = await backupWith(honest);
    const swapped = Buffer.concat([honest.subarray(0, 200_000), randomBytes(100_000)]);
    await writeFile(join(path, 'redis.tar'), swapped);
    const { bytes, error } = await drain(openArtifact(path, entry));
    expect(error).toMatchObject({ exitCode: 5, message: expect.stringMatching(/SHA-256 of redis \(redis.tar\) does not match the manifest/) });
    expect(bytes.length).toBeLessThan(swapped.length); // a tar's end, a dump's last statements: held back
  });

  it('a matching file is passed on whole', async () => {
    const honest = randomBytes(300_000);
    const { path, entry } = await backupWith(honest);
    const { bytes, error } = await drain(openArtifact(path, entry));
    expect(error).toBeUndefined();
    expect(bytes.equals(honest)).toBe(true);
  });
});

describe('a staged artifact', () => {
  it('is read from its private copy: a file swapped into the backup afterwards is never read', async () => {
    const honest = randomBytes(300_000);
    const { root, path, entry } = await backupWith(honest);
    const staging = new ArtifactStaging(root);
    try {
      const staged = await staging.stage(path, entry, never);
      // The copy has no name: its 0700 directory is empty while it is used.
      const [dir] = (await readdir(root)).filter((n) => n.startsWith('.tmp-restore-staging-'));
      expect((await stat(join(root, dir!))).mode & 0o777).toBe(0o700);
      expect(await readdir(join(root, dir!))).toEqual([]);
      // The attacker's file, of the same length, renamed over the artifact.
      await writeFile(join(path, 'other'), randomBytes(honest.length));
      await rename(join(path, 'other'), join(path, 'redis.tar'));
      for (let i = 0; i < 3; i++) {
        const { bytes, error } = await drain(openArtifact(path, entry, undefined, staged));
        expect(error).toBeUndefined();
        expect(bytes.equals(honest)).toBe(true);
      }
      // A reader that stops early (the size of a tar entry) neither closes the copy nor holds up its removal.
      const early = openArtifact(path, entry, undefined, staged);
      await new Promise<void>((resolve) => early.once('data', () => resolve()));
      early.destroy();
      expect((await drain(openArtifact(path, entry, undefined, staged))).bytes.equals(honest)).toBe(true);
    } finally {
      await staging.remove();
    }
    expect((await readdir(root)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });

  it("is refused (exit 5) when the file is not the manifest's, and nothing is left behind", async () => {
    const honest = randomBytes(70_000);
    const { root, path, entry } = await backupWith(honest);
    await writeFile(join(path, 'redis.tar'), randomBytes(honest.length));
    const staging = new ArtifactStaging(root);
    await expect(staging.stage(path, entry, never)).rejects.toMatchObject({ exitCode: 5, message: expect.stringMatching(/SHA-256 of redis \(redis.tar\) does not match/) });
    await staging.remove();
    expect((await readdir(root)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });
});
