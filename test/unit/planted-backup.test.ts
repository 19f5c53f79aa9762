import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listCommand } from '../../src/commands/list.js';
import { type Catalog, readCatalog, resolveBackup } from '../../src/core/catalog.js';
import { DEFAULT_POLICY } from '../../src/core/retention.js';
import { executeRemoval, loadPolicy, offsiteByPolicy, offsiteIn, planCleanup, planPrune, policyIn, readRetentionFile } from '../../src/core/removal.js';
import { ExitCode, StackvaultError } from '../../src/errors.js';
import { shown } from '../../src/util/terminal.js';
import { writtenManifest, writtenService } from '../support/manifests.js';

/**
 * Real files in a temporary backup directory: two real backups and one planted (crafted, copied
 * in, corrupted). Whatever the planted one says, it is listed as incomplete with its reason,
 * is never "latest" nor the newest successful backup, and cleanup and prune treat the real ones
 * exactly as they would without it.
 */
const REAL = ['sv_backup_20260801_000000', 'sv_backup_20260901_000000'];
const NOW = new Date('2026-12-01T00:00:00Z');

const service = (name: string, over: Record<string, unknown> = {}) =>
  writtenService({ name, container: name, containerId: name, image: 'x', driver: 'nosuch', artifact: 'a', bytes: 2, sha256: createHash('sha256').update('hi').digest('hex'), ...over });
const manifestOf = (id: string, createdAt: string, over: Record<string, unknown> = {}) => writtenManifest(id, [service('app')], { createdAt, completedAt: createdAt, ...over });
async function writeBackup(dir: string, name: string, manifest: unknown): Promise<void> {
  await mkdir(join(dir, name));
  await writeFile(join(dir, name, 'a'), 'hi');
  await writeFile(join(dir, name, 'manifest.json'), typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
}
async function directoryWith(planted?: [string, unknown]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'svt-planted-'));
  await writeBackup(dir, REAL[0]!, manifestOf(REAL[0]!, '2026-08-01T00:00:00.000Z'));
  await writeBackup(dir, REAL[1]!, manifestOf(REAL[1]!, '2026-09-01T00:00:00.000Z'));
  if (planted) await writeBackup(dir, planted[0], planted[1]);
  return dir;
}

/** What `backup list --all` prints for people about this catalog. */
async function listedAll(catalog: Catalog): Promise<string> {
  const lines: string[] = [];
  const render = listCommand.render!;
  await render({ catalog }, { out: process.stdout, json: false, say: (line) => lines.push(line) }, { all: true } as Parameters<typeof render>[2]);
  return lines.join('\n');
}
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/; // a line break joins the lines above

const future = 'zz_backup_20991231_000000';
const PLANTED: Array<[string, string, unknown, RegExp]> = [
  // [what, directory name, manifest, the reason list --all gives]
  ['the finding: dated 2099, no services', future, { ...manifestOf(future, '2099-12-31T00:00:00Z'), services: [] }, /services is empty/],
  [
    'status ok although every service failed',
    'zz_backup_20261130_000000',
    manifestOf('zz_backup_20261130_000000', '2026-11-30T00:00:00Z', { services: [service('app', { status: 'failed', error: 'x' })] }),
    /no service succeeded/,
  ],
  [
    'status ok over a failed service',
    'zz_backup_20261130_000000',
    manifestOf('zz_backup_20261130_000000', '2026-11-30T00:00:00Z', { services: [service('app'), service('db', { status: 'failed' })] }),
    /status 'ok' contradicts/,
  ],
  ["a date that is not its id's", 'zz_backup_20261130_000000', manifestOf('zz_backup_20261130_000000', '2099-11-30T00:00:00Z'), /does not match the time in the id/],
  ['a free-form date', 'zz_backup_20000109_000000', manifestOf('zz_backup_20000109_000000', '9 Jan 2000'), /createdAt is not a date/],
  ['a date with an offset', 'zz_backup_20261130_000000', manifestOf('zz_backup_20261130_000000', '2026-11-30T00:00:00+14:00'), /createdAt is not a date/],
  ['a directory that is not a backup name', 'latest-and-greatest', manifestOf('latest-and-greatest', '2026-11-30T00:00:00Z'), /id is not a backup name/],
  ['an id with escape sequences', 'evil\x1b[2J\x1b]0;pwned\x07', manifestOf('evil\x1b[2J\x1b]0;pwned\x07', '2026-11-30T00:00:00Z'), /id is not a backup name/],
  [
    'a status with escape sequences',
    'zz_backup_20261130_000000',
    manifestOf('zz_backup_20261130_000000', '2026-11-30T00:00:00Z', { services: [service('app', { status: 'ok\x1b[2J\x1b]0;pwned\x07' })] }),
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the catalog keeps the raw text; list --all escapes it
    /services\[0\]\.status is 'ok\x1b\[2J\x1b\]0;pwned\x07'/,
  ],
  ['a type that is not a backup type', 'zz_backup_20261130_000000', manifestOf('zz_backup_20261130_000000', '2026-11-30T00:00:00Z', { type: '__proto__' }), /type is not a backup type/],
  ['a status that is a number', 'zz_backup_20261130_000000', manifestOf('zz_backup_20261130_000000', '2026-11-30T00:00:00Z', { status: 5 }), /status is not/],
  [
    'verifications with a numeric time',
    'zz_backup_20261130_000000',
    manifestOf('zz_backup_20261130_000000', '2026-11-30T00:00:00Z', { verifications: [{ at: 5, ok: true, deep: false, services: {} }] }),
    /verifications/,
  ],
  [
    'an extra key 200 000 deep',
    'zz_backup_20261130_000000',
    `${JSON.stringify(manifestOf('zz_backup_20261130_000000', '2026-11-30T00:00:00Z')).slice(0, -1)},"x":${'['.repeat(200_000)}${']'.repeat(200_000)}}`,
    /nested deeper/,
  ],
];

describe('a planted backup costs no real backup', () => {
  it.each(PLANTED)('%s: listed as incomplete, never latest, cleanup 30 keeps the newest real backup', async (_what, name, manifest, reason) => {
    const dir = await directoryWith([name, manifest]);
    const catalog = await readCatalog(dir);
    expect(catalog.backups.map((b) => b.manifest.id)).toEqual([REAL[1], REAL[0]]);
    expect(catalog.incomplete.map((d) => d.name)).toEqual([name]);
    // The catalog keeps the reason as it came (--json carries it raw); list --all escapes it, and the name.
    expect(catalog.incomplete[0]!.reason).toMatch(reason);
    const listed = await listedAll(catalog);
    expect(listed).toContain(`${shown(name)}: ${shown(catalog.incomplete[0]!.reason)}`);
    expect(listed).not.toMatch(RAW);
    expect(resolveBackup(catalog, 'latest').manifest.id).toBe(REAL[1]);

    const plan = await planCleanup(dir, 30, NOW);
    expect(plan.remove.map((r) => r.id)).toEqual([REAL[0]]);
    expect(plan.keep).toContainEqual({ id: REAL[1], keep: true, reason: 'newest successful backup' });
    await executeRemoval(plan, 'backup cleanup 30');
    expect((await readdir(dir)).sort()).toEqual([REAL[1], name].sort());

    const prune = await planPrune(dir, DEFAULT_POLICY, NOW);
    expect(prune.remove).toEqual([]);
    expect(prune.keep).toEqual([{ id: REAL[1], keep: true, reason: 'newest successful backup' }]);
  });

  it('dated 2099 with a service: set apart as dated ahead of this clock, never latest nor the newest successful; cleanup and prune treat the real ones as without it', async () => {
    const dir = await directoryWith([future, manifestOf(future, '2099-12-31T00:00:00Z')]);
    const catalog = await readCatalog(dir, NOW);
    expect(catalog.backups.map((b) => b.manifest.id)).toEqual([REAL[1], REAL[0]]);
    expect(catalog.ahead.map((b) => b.manifest.id)).toEqual([future]);
    expect(resolveBackup(catalog, 'latest').manifest.id).toBe(REAL[1]);
    const plan = await planCleanup(dir, 30, NOW);
    expect(plan.remove.map((r) => r.id)).toEqual([REAL[0]]);
    expect(plan.keep).toEqual([{ id: REAL[1], keep: true, reason: 'newest successful backup' }]);
  });

  it('without a plant, the same directory gives the same plan (the test above is not vacuous)', async () => {
    const plan = await planCleanup(await directoryWith(), 30, NOW);
    expect(plan.remove.map((r) => r.id)).toEqual([REAL[0]]);
  });
});

describe('hunt: the newest backup on record is not always one that restores', () => {
  // The newest backup's manifest says ok, but its files are not what it records: copied in
  // half (rsync cut off), an artifact deleted by hand, or a failed `backup verify`. Before, it
  // alone was "the newest successful backup", and cleanup removed the last one that restores.
  it.each<[string, (dir: string) => Promise<void>]>([
    ['its artifact is missing', (dir) => rm(join(dir, REAL[1]!, 'a'))],
    ['its artifact has another size than recorded', (dir) => writeFile(join(dir, REAL[1]!, 'a'), 'h')],
    [
      'its artifact is a directory',
      async (dir) => {
        await rm(join(dir, REAL[1]!, 'a'));
        await mkdir(join(dir, REAL[1]!, 'a'));
      },
    ],
    [
      'its last verification failed',
      (dir) =>
        writeFile(
          join(dir, REAL[1]!, 'manifest.json'),
          JSON.stringify(
            manifestOf(REAL[1]!, '2026-09-01T00:00:00.000Z', { verifications: [{ at: '2026-11-01T00:00:00.000Z', deep: false, ok: false, services: { app: { ok: false, error: 'checksum' } } }] }),
          ),
        ),
    ],
  ])('%s: cleanup and prune also keep the newest whole backup', async (_what, damage) => {
    const dir = await directoryWith();
    await damage(dir);
    const cleanup = await planCleanup(dir, 30, NOW);
    expect(cleanup.remove).toEqual([]);
    expect(cleanup.keep).toContainEqual({ id: REAL[0], keep: true, reason: 'newest successful backup whose files are whole (a newer one is damaged)' });
    await executeRemoval(cleanup, 'backup cleanup 30');
    const prune = await planPrune(dir, DEFAULT_POLICY, NOW);
    expect(prune.remove).toEqual([]);
    expect((await readdir(dir)).filter((n) => !n.startsWith('.')).sort()).toEqual(REAL);
  });

  it('the directory changed while waiting for the lock: a backup that is now the newest successful one is not removed', async () => {
    const dir = await directoryWith();
    const plan = await planCleanup(dir, 30, NOW); // removes August, spares September as the newest
    expect(plan.remove.map((r) => r.id)).toEqual([REAL[0]]);
    // Meanwhile `backup delete` (holding the lock first) removed September.
    await rm(join(dir, REAL[1]!), { recursive: true });
    const done = await executeRemoval(plan, 'backup cleanup 30');
    expect(await readdir(dir)).toContain(REAL[0]);
    expect(done.removed).toEqual([]);
  });
});

describe('retention.json that is not a policy', () => {
  it.each([
    ['null', /retention\.json must hold a JSON object/],
    ['[14]', /retention\.json must hold a JSON object/],
    ['{bad', /retention\.json is not valid JSON/],
    ['{"dailyDays": "14"}', /retention\.json: dailyDays must be a whole number of at least 1/],
    ['{"dailyDays": 0}', /dailyDays must be a whole number/],
    ['{"offsite": "yes"}', /retention\.json: offsite must be true or false/],
  ])('%s: one sentence naming the file, exit 2, from prune and from create alike', async (text, message) => {
    const dir = await mkdtemp(join(tmpdir(), 'svt-policy-'));
    await writeFile(join(dir, 'retention.json'), text);
    const failure = async (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (err: unknown) => err as StackvaultError,
      );
    const both = [await failure(loadPolicy(dir)), await failure(offsiteByPolicy(dir))].filter((e) => e !== undefined);
    expect(both.length).toBeGreaterThan(0);
    for (const err of both) {
      expect(err).toBeInstanceOf(StackvaultError);
      expect(err!.exitCode).toBe(ExitCode.usage);
      expect(err!.message).toMatch(message);
      expect(err!.message).toContain(join(dir, 'retention.json'));
    }
  });

  it('a valid file still sets the policy, and no file gives the defaults', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'svt-policy-'));
    expect(await loadPolicy(dir)).toEqual(DEFAULT_POLICY);
    await writeFile(join(dir, 'retention.json'), '{"dailyDays": 14, "offsite": true}');
    expect(await loadPolicy(dir)).toEqual({ ...DEFAULT_POLICY, dailyDays: 14 });
    expect(await offsiteByPolicy(dir)).toBe(true);
    // Read once, asked twice (a scheduled run needs both).
    const file = await readRetentionFile(dir);
    expect(policyIn(file)).toEqual({ ...DEFAULT_POLICY, dailyDays: 14 });
    expect(offsiteIn(file)).toBe(true);
  });
});
