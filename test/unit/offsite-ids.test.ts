import { existsSync } from 'node:fs';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { ResticSnapshot } from '../../src/offsite/restic.js';
import { writtenManifest, writtenService } from '../support/manifests.js';

/**
 * Backup IDs from the restic repository (a tag, a stored manifest) become directory names in
 * the backup directory: the repository may be less trusted than this host. restic itself is
 * replaced here by what a hostile repository would answer; no repository is needed.
 */
const answers = vi.hoisted(() => ({ snapshots: [] as ResticSnapshot[], dump: (): string => '', calls: [] as string[][] }));
vi.mock('../../src/offsite/restic.js', async (original) => ({
  ...(await original<typeof import('../../src/offsite/restic.js')>()),
  snapshots: vi.fn(async () => answers.snapshots),
  restic: vi.fn(async (args: string[]) => {
    answers.calls.push(args);
    return args[0] === 'dump' ? answers.dump() : '';
  }),
}));
const { fetchOffsite, listOffsite, plainBackupId, withFetchedCopy } = await import('../../src/core/offsite.js');
const { LOCK_FILE } = await import('../../src/core/lock.js');

const HOSTILE = '../../../../etc/important';
const ID = 'sv_backup_20260601_000000';
const snapshot = (id: string): ResticSnapshot => ({
  id: 'a'.repeat(64),
  short_id: 'aaaaaaaa',
  time: '2026-06-01T00:00:00Z',
  hostname: 'h',
  tags: ['stackvault', `sv-id:${id}`, 'sv-type:daily', 'sv-part:meta'],
  paths: [],
});
const meta = (id: string) => JSON.stringify({ format: 1, files: {}, manifest: writtenManifest(id, [writtenService({ artifact: 'a', bytes: 2, sha256: 'a'.repeat(64) })]) });
const newDir = () => mkdtemp(join(tmpdir(), 'svu-offsite-'));

beforeEach(() => {
  process.env.RESTIC_REPOSITORY = '/nonexistent/repo';
  answers.calls = [];
  answers.snapshots = [];
});

describe('backup IDs from the restic repository', () => {
  it.each([
    [ID, true],
    [`${ID}_2`, true],
    ['my-stack_backup_20261121_020000', true],
    [HOSTILE, false],
    [`../${ID}`, false],
    [`${ID}/..`, false],
    ['/etc', false],
    ['.', false],
    ['', false],
    [`${ID}\n`, false],
  ])('plainBackupId(%j) accepts: %s', (id, plain) => {
    if (plain) expect(plainBackupId(id, 'x')).toBe(id);
    else
      expect(() => plainBackupId(id, 'The repository')).toThrow(
        expect.objectContaining({ exitCode: 5, message: expect.stringMatching(/^The repository names a backup .* that is not a backup ID; refusing to use it\.$/) }),
      );
  });

  it('a "latest" whose sv-id tag is a path is refused (exit 5) before any directory is made or anything fetched', async () => {
    const root = await newDir();
    answers.snapshots = [snapshot(HOSTILE)];
    const work = vi.fn();
    await expect(withFetchedCopy(root, 'latest', work)).rejects.toMatchObject({ exitCode: 5, message: expect.stringMatching(/not a backup ID/) });
    expect(work).not.toHaveBeenCalled();
    // fetchOffsite comes in through the same one check.
    await expect(fetchOffsite(root, 'latest')).rejects.toMatchObject({ exitCode: 5, message: expect.stringMatching(/not a backup ID/) });
    expect(answers.calls).toEqual([]);
    expect(await readdir(root)).toEqual([]);
  });

  it('an ID asked for that is a path is not looked up or joined to a path (not found, exit 4)', async () => {
    const root = await newDir();
    await expect(fetchOffsite(root, HOSTILE)).rejects.toMatchObject({ exitCode: 4 });
    await expect(withFetchedCopy(root, HOSTILE, vi.fn())).rejects.toMatchObject({ exitCode: 4 });
    expect(answers.calls).toEqual([]);
    expect(await readdir(root)).toEqual([]);
  });

  it('a record whose manifest names another (hostile) ID than its tag is refused', async () => {
    const root = await newDir();
    answers.snapshots = [snapshot(ID)];
    answers.dump = () => meta(HOSTILE);
    await expect(fetchOffsite(root, ID)).rejects.toMatchObject({ exitCode: 5 });
    expect(await readdir(root)).toEqual([]);
  });

  it('a fetch into the backup directory holds its lock, so a cleanup cannot take the unfinished directory for a leftover', async () => {
    const root = await newDir();
    answers.snapshots = [snapshot(ID)];
    let locked: boolean | undefined;
    answers.dump = () => {
      locked = existsSync(join(root, LOCK_FILE));
      return meta(ID);
    };
    expect(await fetchOffsite(root, ID)).toBe(join(root, ID));
    expect(locked).toBe(true);
    expect(await readdir(root)).toEqual([ID]); // lock released
    // verify --remote holds the lock for the fetch and the check of its scratch copy
    let lockedDuringWork: boolean | undefined;
    await withFetchedCopy(root, 'latest', async (scratch, id) => {
      lockedDuringWork = existsSync(join(root, LOCK_FILE));
      expect(await readdir(scratch)).toContain(id);
    });
    expect(lockedDuringWork).toBe(true);
    expect(await readdir(root)).toEqual([ID]);
  });

  it('the newest backup in the repository is the newest by instant, whatever offset restic wrote its time with', async () => {
    // 04:30 in New York is 09:30 UTC: after 08:00 UTC, though before it as text.
    const at = (id: string, time: string, short: string) => ({ ...snapshot(id), time, id: short.repeat(8), short_id: short.repeat(8) });
    const older = 'sv_backup_20261205_080000';
    const newer = 'sv_backup_20261205_093000';
    answers.snapshots = [at(older, '2026-12-05T08:00:00.5Z', 'a'), at(newer, '2026-12-05T04:30:00.123456789-05:00', 'b')];
    expect((await listOffsite()).map((r) => r.id)).toEqual([newer, older]);
    // and "latest" fetches that one
    const root = await newDir();
    answers.dump = () => meta(newer);
    expect(await fetchOffsite(root, 'latest')).toBe(join(root, newer));
  });
});
