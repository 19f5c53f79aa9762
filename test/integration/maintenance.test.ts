import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { timestampPart } from '../../src/core/naming.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, startRedis } from '../support/containers.js';

/** A real backup cloned under another date and type (valid manifests, real artifacts), named `PREFIX_backup_<its time>` as a manifest must be. */
async function cloneAs(dir: string, source: Manifest, prefix: string, type: Manifest['type'], createdAt: string): Promise<string> {
  const id = `${prefix}_backup_${timestampPart(new Date(createdAt))}`;
  await cp(join(sourceDir, source.id), join(dir, id), { recursive: true });
  const m = { ...source, id, type, createdAt, completedAt: createdAt };
  await writeFile(join(dir, id, 'manifest.json'), JSON.stringify(m, null, 2));
  return id;
}

let sourceDir = '';
const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString();
const stampOf = (id: string) => id.slice(id.indexOf('_backup_') + '_backup_'.length);
/** The backup the delete test removes, whose lines the operations log test reads. */
let deleted = '';
const ids = async (dir: string) => (await readdir(dir)).filter((n) => n.includes('_backup_')).sort();

describe('cleanup, prune, delete and the operations log', () => {
  let redis: StartedTestContainer;
  let dir: string;
  let real: Manifest;

  beforeAll(async () => {
    const project = newProjectName('maint');
    redis = await startRedis({ project });
    dir = await tempDir('maint');
    sourceDir = dir;
    const r = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir, '--type', 'daily']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    real = JSON.parse(String(r.stdout)) as Manifest;
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('cleanup DAYS removes old backups but never manual, restore-point or the newest successful; --dry-run removes nothing', async () => {
    const d = join(dir, 'cleanup');
    await mkdir(d);
    await cp(join(dir, real.id), join(d, real.id), { recursive: true });
    const daily = await cloneAs(d, real, 'sv-daily', 'daily', daysAgo(60));
    const preUpdate = await cloneAs(d, real, 'sv-pre-update', 'pre-update', daysAgo(45));
    const manual = await cloneAs(d, real, 'sv-manual', 'manual', daysAgo(400));
    const point = await cloneAs(d, real, 'sv-point', 'restore-point', daysAgo(400));
    const weekly = await cloneAs(d, real, 'sv-weekly', 'weekly', daysAgo(10));
    await mkdir(join(d, '.tmp-sv_backup_20200106_000000')); // left by a killed run
    const before = await ids(d);

    const dry = await bot(['backup', 'cleanup', '30', '--dry-run', '--dir', d]);
    expect(dry.exitCode).toBe(0);
    expect(String(dry.stdout)).toMatch(new RegExp(`would remove ${daily} \\(daily, .*\\): older than 30 days`));
    expect(String(dry.stdout)).toContain(`would remove ${preUpdate} (pre-update`);
    expect(String(dry.stdout)).toMatch(/would remove unfinished \.tmp-sv_backup_20200106_000000/);
    expect(String(dry.stdout)).toMatch(/Would free/);
    expect(await ids(d)).toEqual(before);

    const run = await bot(['backup', 'cleanup', '30', '--dir', d]);
    expect(run.exitCode).toBe(0);
    expect(String(run.stdout)).toContain(`removed ${daily}`);
    expect(String(run.stdout)).toMatch(/Freed \d/);
    expect(await ids(d)).toEqual([real.id, manual, point, weekly].sort());
    expect(await readdir(d)).not.toContain('.tmp-sv_backup_20200106_000000');
  });

  it('prune applies the policy from retention.json and flags', async () => {
    const d = join(dir, 'prune');
    await mkdir(d);
    await cp(join(dir, real.id), join(d, real.id), { recursive: true });
    // A backup goes when past its age and as many newer ones of its type exist as the policy's
    // number: real and these four dailies are the 5 newer ones older's --keep-daily 5 needs.
    const young: string[] = [];
    for (const n of [1, 2, 3, 4]) young.push(await cloneAs(d, real, 'sv-young', 'daily', daysAgo(n)));
    const older = await cloneAs(d, real, 'sv-older', 'daily', daysAgo(10));
    const weeklies = [await cloneAs(d, real, 'sv-weekly', 'weekly', daysAgo(2)), await cloneAs(d, real, 'sv-weekly', 'weekly', daysAgo(9))];
    const weekly = await cloneAs(d, real, 'sv-weekly', 'weekly', daysAgo(20));
    await writeFile(join(d, 'retention.json'), JSON.stringify({ dailyDays: 14, weeklyWeeks: 2 }));
    const plan = JSON.parse(String((await bot(['backup', 'prune', '--dry-run', '--json', '--dir', d])).stdout)) as { removed: Array<{ id: string }> };
    expect(plan.removed.map((r) => r.id)).toEqual([weekly]);
    const flagged = JSON.parse(String((await bot(['backup', 'prune', '--dry-run', '--json', '--dir', d, '--keep-daily', '5'])).stdout)) as { removed: Array<{ id: string }> };
    expect(flagged.removed.map((r) => r.id).sort()).toEqual([older, weekly].sort());
    expect((await bot(['backup', 'prune', '--dir', d])).exitCode).toBe(0);
    expect(await ids(d)).toEqual([real.id, ...young, older, ...weeklies].sort());
  });

  it('delete asks first: refused without a terminal, done with --yes', async () => {
    const d = join(dir, 'delete');
    await mkdir(d);
    deleted = await cloneAs(d, real, 'sv', 'daily', daysAgo(1));
    const refused = await bot(['backup', 'delete', deleted, '--dir', d]);
    expect(refused.exitCode).toBe(9);
    expect(await ids(d)).toEqual([deleted]);
    const done = await bot(['backup', 'delete', stampOf(deleted), '--dir', d, '--yes']);
    expect(done.exitCode, String(done.stderr)).toBe(0);
    expect(String(done.stdout)).toContain(`Deleted ${deleted}; freed`);
    expect(await ids(d)).toEqual([]);
  });

  it('every create, verify, delete and cleanup leaves one line in operations.log', async () => {
    const d = join(dir, 'delete');
    const text = await readFile(join(d, 'operations.log'), 'utf8');
    const lines = text
      .trim()
      .split('\n')
      .map((l) => l.split('\t'));
    expect(lines.map((l) => [l[2], l[4]])).toEqual([
      [`backup delete ${deleted} --dir ${d}`, expect.stringMatching(/^error: Deleting a backup needs confirmation/)],
      [`backup delete ${stampOf(deleted)} --dir ${d} --yes`, 'ok'],
    ]);
    expect(lines[1]![3]).toBe(deleted);
    expect(lines[1]![1]).toBe('root');
    const log = await bot(['backup', 'log', '--dir', dir]);
    expect(String(log.stdout)).toMatch(/root {2}backup create --json .* {2}stackvault_backup_\d{8}_\d{6} {2}ok/);
  });
});
