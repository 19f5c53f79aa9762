import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkArtifact, openArtifact } from '../../src/core/artifact-check.js';
import { readCatalog, resolveBackup } from '../../src/core/catalog.js';
import { updateManifest } from '../../src/core/manifest-update.js';
import type { ServiceEntry } from '../../src/core/manifest.js';
import { appendOperation } from '../../src/core/oplog.js';
import { du, planCleanup } from '../../src/core/removal.js';
import { writeMarker } from '../../src/core/stopped-markers.js';
import { verifyBackup } from '../../src/core/verify.js';
import { DRIVERS } from '../../src/drivers/registry.js';
import { readRegularFile, writeFileAtomic } from '../../src/util/safe-file.js';
import { writtenManifest, writtenService } from '../support/manifests.js';

/**
 * Nothing outside the backup directory is read as a backup, followed, written or deleted, and
 * nothing in it can make a command hang: real files, symlinks and FIFOs in a temporary directory.
 */
const newDir = (what: string) => mkdtemp(join(tmpdir(), `svu-safe-${what}-`));
const ID = 'sv_backup_20260601_000000';
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const redis = DRIVERS.find((d) => d.name === 'redis')!;

/** A minimal backup: one service whose artifact `a` holds "hi". */
async function shapeBackup(root: string, service: Partial<ServiceEntry> = {}, id = ID): Promise<string> {
  const dir = join(root, id);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'a'), 'hi');
  const entry = writtenService({ artifact: 'a', bytes: 2, sha256: sha('hi'), ...service });
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(writtenManifest(id, [entry])));
  return dir;
}
const entryOf = (service: Partial<ServiceEntry> = {}): ServiceEntry =>
  ({ name: 'app', driver: 'redis', status: 'ok', artifact: 'a', bytes: 2, sha256: sha('hi'), durationMs: 1, ...service }) as ServiceEntry;
const mkfifo = (path: string) => execFileSync('mkfifo', [path]);
/** Settles within `ms` or fails: a hang is the bug these tests are about. */
const within = <T>(ms: number, p: Promise<T>) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still waiting after ${ms} ms`)), ms).unref())]);

describe('manifest updates never write through a planted symlink', () => {
  it('a symlink at the old temporary name .manifest.json.tmp is not followed; the outside file is unchanged', async () => {
    const root = await newDir('tmp-link');
    const backup = await shapeBackup(root);
    const outside = join(await newDir('victim'), 'important');
    await writeFile(outside, 'precious\n');
    await symlink(outside, join(backup, '.manifest.json.tmp'));
    await updateManifest(root, backup, 'test', (m) => ({ ...m, comment: 'updated' }));
    expect(await readFile(outside, 'utf8')).toBe('precious\n');
    expect((await lstat(join(backup, 'manifest.json'))).isFile()).toBe(true);
    expect(JSON.parse(await readFile(join(backup, 'manifest.json'), 'utf8')).comment).toBe('updated');
    expect((await readdir(backup)).sort()).toEqual(['.manifest.json.tmp', 'a', 'manifest.json']); // no temporary file left
  });

  it('a manifest.json that is a symlink is refused with exit 5 and neither it nor its target changes', async () => {
    const root = await newDir('manifest-link');
    const backup = await shapeBackup(root);
    const outside = join(await newDir('victim'), 'manifest.json');
    await writeFile(outside, await readFile(join(backup, 'manifest.json')));
    const before = await readFile(outside, 'utf8');
    await rm(join(backup, 'manifest.json'));
    await symlink(outside, join(backup, 'manifest.json'));
    await expect(updateManifest(root, backup, 'test', (m) => ({ ...m, comment: 'updated' }))).rejects.toMatchObject({
      exitCode: 5,
      message: expect.stringMatching(/manifest\.json is a symbolic link/),
    });
    expect(await readFile(outside, 'utf8')).toBe(before);
    expect(await readlink(join(backup, 'manifest.json'))).toBe(outside);
  });

  it('writeFileAtomic replaces a symlink at the destination instead of writing through it', async () => {
    const dir = await newDir('atomic');
    const outside = join(await newDir('victim'), 'f');
    await writeFile(outside, 'precious');
    await symlink(outside, join(dir, 'report.html'));
    await writeFileAtomic(join(dir, 'report.html'), 'new', { mode: 0o600 });
    expect(await readFile(outside, 'utf8')).toBe('precious');
    expect((await lstat(join(dir, 'report.html'))).isFile()).toBe(true);
    expect(await readdir(dir)).toEqual(['report.html']);
  });

  it('operations.log: a symlink is not followed (the append fails, the outside file is unchanged)', async () => {
    const dir = await newDir('oplog');
    const outside = join(await newDir('victim'), 'f');
    await writeFile(outside, 'precious');
    await symlink(outside, join(dir, 'operations.log'));
    const op = { at: '2026-06-01T00:00:00Z', user: 'u', command: 'backup list', backupId: '', result: 'ok', durationMs: 1 };
    await expect(appendOperation(dir, op)).rejects.toThrow(/symbolic link/);
    expect(await readFile(outside, 'utf8')).toBe('precious');
    // A FIFO is neither waited on nor written.
    const fifoDir = await newDir('oplog-fifo');
    mkfifo(join(fifoDir, 'operations.log'));
    await expect(within(5000, appendOperation(fifoDir, op))).rejects.toThrow(/ENXIO|FIFO/);
    // And a regular one is appended to.
    const plain = await newDir('oplog-plain');
    await appendOperation(plain, op);
    await appendOperation(plain, op);
    expect((await readFile(join(plain, 'operations.log'), 'utf8')).split('\n')).toHaveLength(3);
  });

  it('the stopped-containers marker directory as a symlink elsewhere is refused; nothing is written there', async () => {
    const dir = await newDir('markers');
    const outside = await newDir('victim');
    await symlink(outside, join(dir, '.stackvault-stopped'));
    await expect(writeMarker(dir, { containerId: 'c1', container: 'c', service: 's', since: 'now', pid: 1 })).rejects.toMatchObject({ exitCode: 7 });
    expect(await readdir(outside)).toEqual([]);
  });
});

describe('a manifest that is not a regular file is an incomplete backup, never a hang', () => {
  it('a FIFO manifest.json is listed as incomplete with its reason', async () => {
    const root = await newDir('fifo-manifest');
    await shapeBackup(root, {}, 'sv_backup_20260601_000001');
    const bad = await shapeBackup(root);
    await rm(join(bad, 'manifest.json'));
    mkfifo(join(bad, 'manifest.json'));
    const catalog = await within(5000, readCatalog(root));
    expect(catalog.backups.map((b) => b.manifest.id)).toEqual(['sv_backup_20260601_000001']);
    expect(catalog.incomplete).toEqual([{ name: ID, path: bad, reason: expect.stringMatching(/^manifest\.json is a named pipe \(FIFO\), not a manifest stackvault wrote/) }]);
    // cleanup and prune read the same catalog: they finish too.
    await within(5000, planCleanup(root, 1, new Date('2027-01-01T00:00:00Z')));
  }, 10_000);

  it('a symlinked manifest.json (pointing at a valid manifest outside) is not a backup', async () => {
    const root = await newDir('link-manifest');
    const bad = await shapeBackup(root);
    const outside = join(await newDir('victim'), 'manifest.json');
    await writeFile(outside, await readFile(join(bad, 'manifest.json')));
    await rm(join(bad, 'manifest.json'));
    await symlink(outside, join(bad, 'manifest.json'));
    const catalog = await readCatalog(root);
    expect(catalog.backups).toEqual([]);
    expect(catalog.incomplete[0]!.reason).toMatch(/^manifest\.json is a symbolic link/);
  });

  it('no manifest.json is "no manifest.json"; a dangling symlink in its place is a symbolic link, not missing', async () => {
    const root = await newDir('no-manifest');
    await mkdir(join(root, 'sv_backup_20260601_000001'));
    const dangling = await shapeBackup(root);
    await rm(join(dangling, 'manifest.json'));
    await symlink(join(root, 'nowhere'), join(dangling, 'manifest.json'));
    const catalog = await readCatalog(root);
    expect(catalog.backups).toEqual([]);
    expect(catalog.incomplete.map((d) => [d.name, d.reason])).toEqual([
      [ID, expect.stringMatching(/^manifest\.json is a symbolic link/)],
      ['sv_backup_20260601_000001', 'no manifest.json'],
    ]);
  });

  it('a backup directory that is a symlink (moved to another disk, linked back) is named as not read, never followed or removed', async () => {
    const root = await newDir('linked-backup');
    const elsewhere = await newDir('other-disk');
    const moved = await shapeBackup(elsewhere);
    await symlink(moved, join(root, ID));
    await symlink(moved, join(root, 'latest')); // a convenience link by another name is none of ours
    const catalog = await readCatalog(root);
    expect(catalog.backups).toEqual([]);
    expect(catalog.incomplete).toEqual([{ name: ID, path: join(root, ID), reason: expect.stringMatching(/^a symbolic link: backups are read only as directories of their own/) }]);
    expect(() => resolveBackup(catalog, ID)).toThrow(expect.objectContaining({ exitCode: 5, message: expect.stringMatching(/is not a usable backup: a symbolic link/) }));
    const plan = await planCleanup(root, 1, new Date('2027-01-01T00:00:00Z'));
    expect([plan.remove, plan.leftovers]).toEqual([[], []]);
    expect(await readdir(moved)).toContain('manifest.json');
  });

  it('a manifest larger than the limit is refused in one sentence without being read', async () => {
    const dir = await newDir('big');
    await writeFile(join(dir, 'f'), '');
    await truncate(join(dir, 'f'), 2048);
    await expect(readRegularFile(join(dir, 'f'), 1024)).rejects.toThrow(/is larger than 1024 bytes/);
    expect(await readRegularFile(join(dir, 'f'), 4096)).toHaveLength(2048);
  });
});

describe('artifacts are regular files of the backup, read no further than the manifest says', () => {
  it('a symlink to /dev/zero is refused at once (exit 5), by verify and by restore', async () => {
    const root = await newDir('zero');
    const backup = await shapeBackup(root);
    await rm(join(backup, 'a'));
    await symlink('/dev/zero', join(backup, 'a'));
    // A manifest that says 0 bytes: /dev/zero's size, so only the file's kind can stop the read.
    const empty = entryOf({ bytes: 0, sha256: sha('') });
    await expect(within(5000, checkArtifact(backup, empty, undefined, redis))).rejects.toMatchObject({ exitCode: 5, message: expect.stringMatching(/is a symbolic link, not a regular file/) });
    const stream = openArtifact(backup, empty);
    await expect(within(5000, stream.toArray())).rejects.toMatchObject({ exitCode: 5 });
  }, 15_000);

  it('a FIFO artifact is refused at once, never opened', async () => {
    const root = await newDir('fifo-artifact');
    const backup = await shapeBackup(root);
    await rm(join(backup, 'a'));
    mkfifo(join(backup, 'a'));
    await expect(within(5000, checkArtifact(backup, entryOf({ bytes: 0, sha256: sha('') }), undefined, redis))).rejects.toMatchObject({
      exitCode: 5,
      message: expect.stringMatching(/named pipe \(FIFO\)/),
    });
  }, 10_000);

  it('a symlink to a file outside with matching size and SHA-256 is refused, and a wrong size tells nothing about the target', async () => {
    const root = await newDir('outside');
    const secret = join(await newDir('victim'), 'secret');
    await writeFile(secret, 'x'.repeat(1234));
    const backup = await shapeBackup(root);
    await rm(join(backup, 'a'));
    await symlink(secret, join(backup, 'a'));
    const matching = entryOf({ bytes: 1234, sha256: sha('x'.repeat(1234)) });
    await expect(checkArtifact(backup, matching, undefined, redis)).rejects.toMatchObject({ exitCode: 5, message: expect.stringMatching(/symbolic link/) });
    const err = await checkArtifact(backup, entryOf(), undefined, redis).catch((e: Error) => e);
    expect(err).toMatchObject({ exitCode: 5 });
    expect((err as Error).message).not.toMatch(/1234/);
    await expect(openArtifact(backup, matching).toArray()).rejects.toMatchObject({ exitCode: 5 });
  });

  it('a file longer than the manifest says is a mismatch, and only its first bytes are streamed', async () => {
    const root = await newDir('long');
    const backup = await shapeBackup(root);
    await writeFile(join(backup, 'a'), 'hi and more');
    await expect(checkArtifact(backup, entryOf(), undefined, redis)).rejects.toMatchObject({ exitCode: 5, message: expect.stringMatching(/has 11 bytes, the manifest says 2/) });
  });

  it('Ctrl-C / SIGTERM stops a long check at once with exit 130, not a failed verification', async () => {
    const root = await newDir('interrupt');
    const backup = await shapeBackup(root);
    const bytes = 8 * 2 ** 30; // sparse: several seconds of hashing
    await truncate(join(backup, 'a'), bytes);
    const stop = new AbortController();
    const started = Date.now();
    const check = checkArtifact(backup, entryOf({ bytes }), undefined, redis, stop.signal);
    setTimeout(() => stop.abort(new Error('interrupted by SIGTERM')), 200);
    await expect(check).rejects.toMatchObject({ exitCode: 130 });
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('unknown drivers', () => {
  it('verify (without --deep) refuses a backup whose driver it does not know, naming it (exit 5)', async () => {
    const root = await newDir('driver');
    await shapeBackup(root, { driver: 'nosuch' as ServiceEntry['driver'] });
    const result = await verifyBackup(root, 'latest', undefined, undefined, DRIVERS);
    expect(result.services).toEqual([{ service: 'app', ok: false, error: expect.stringMatching(/uses driver 'nosuch', which this stackvault does not know/) }]);
    // A known driver with the same artifact passes: the refusal is the driver's alone.
    const ok = await newDir('driver-ok');
    await shapeBackup(ok);
    expect((await verifyBackup(ok, 'latest', undefined, undefined, DRIVERS)).services[0]!.ok).toBe(true);
  });
});

describe('sizes of leftovers (du) never follow symlinks', () => {
  it('symlink loops and links out of the backup directory are counted as links, not walked', async () => {
    const root = await newDir('du');
    const leftover = join(root, '.tmp-x');
    await mkdir(leftover);
    await writeFile(join(leftover, 'data'), 'x'.repeat(100));
    for (const name of ['a', 'b', 'c']) await symlink('.', join(leftover, name));
    await symlink('/usr/lib', join(leftover, 'lib'));
    const links = (await Promise.all(['a', 'b', 'c', 'lib'].map(async (n) => (await lstat(join(leftover, n))).size))).reduce((a, b) => a + b, 0);
    expect(await within(5000, du(leftover))).toBe(100 + links);
    const plan = await within(5000, planCleanup(root, 1, new Date()));
    expect(plan.leftovers).toEqual([{ name: '.tmp-x', bytes: 100 + links }]);
  }, 10_000);

  it('an entry that cannot be read counts 0 instead of failing the cleanup', async () => {
    const root = await newDir('du-missing');
    expect(await du(join(root, 'gone'))).toBe(0);
  });
});
