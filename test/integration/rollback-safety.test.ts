import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { Header } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { chromaApi, newProjectName, run, startChromaOldLayout, untilAnswers } from '../support/containers.js';
import { IMAGES } from '../support/images.js';
import { seedChroma, snapshotChroma } from '../support/seed.js';
import { handMadeTar, rawArtifact, replaceArtifact } from '../support/tamper.js';

const exists = async (c: StartedTestContainer, path: string) => (await c.exec(['test', '-e', path])).exitCode === 0;
const restorePoints = async (dir: string) => (await readdir(dir)).filter((n) => n.startsWith('restore-point'));

/** The raw tar up to its end-of-archive blocks, with hand-written entries after its own. */
function appendEntries(raw: Buffer, entries: Parameters<typeof handMadeTar>[0]): Buffer {
  let at = 0;
  while (at + 512 <= raw.length && raw.subarray(at, at + 512).some((b) => b !== 0)) {
    const h = new Header(raw.subarray(at, at + 512));
    at += 512 + Math.ceil((h.size ?? 0) / 512) * 512;
  }
  return Buffer.concat([raw.subarray(0, at), handMadeTar(entries)]);
}

/** A fresh backup of `service` in its own directory, whose archive gets `entries` appended (checksums fixed). */
async function backupWithAppended(project: string, service: string, prefix: string, entries: Parameters<typeof handMadeTar>[0]): Promise<{ copy: string; m: Manifest }> {
  const copy = await tempDir(prefix);
  const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', copy]);
  expect(c.exitCode, String(c.stderr)).toBe(0);
  const m = JSON.parse(String(c.stdout)) as Manifest;
  const entry = m.services.find((s) => s.name === service)!;
  await replaceArtifact(join(copy, m.id), service, appendEntries(await rawArtifact(join(copy, m.id), entry.artifact!), entries));
  return { copy, m };
}

/**
 * Chroma as real compose files lay it out: the volume at /chroma/chroma, the data in /data on
 * the container's own layer. A restore must leave exactly the archive's files there, and a
 * store whose live data a restore would refuse gets no restore that could not be put back.
 */
describe('a restore into a path that is not on a volume, and restore points that could not be put back', () => {
  const project = newProjectName('rbchroma');
  let chroma: StartedTestContainer;
  let dir: string;
  let backup: Manifest;
  let seeded: string;

  beforeAll(async () => {
    chroma = await startChromaOldLayout(project, await tempDir('rb-chroma-vol'));
    await seedChroma(chroma);
    seeded = await snapshotChroma(chroma);
    dir = await tempDir('rbchroma');
    const created = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(created.exitCode, String(created.stderr)).toBe(0);
    backup = JSON.parse(String(created.stdout)) as Manifest;
    expect(backup.services[0]!.details!.paths).toEqual(['/data']);
  });

  afterAll(async () => {
    await chroma?.stop().catch(() => undefined);
  });

  it('removes files added since the backup: the path ends with exactly the backup content', async () => {
    await untilAnswers(() => chromaApi(chroma)('/collections'));
    await run(chroma, ['sh', '-c', 'echo later > /data/added-after-the-backup && mkdir -p /data/later-dir && echo x > /data/later-dir/f']);
    const r = await bot(['backup', 'restore', backup.id, '--dir', dir, '--yes', '--json']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(JSON.parse(String(r.stdout)).services).toEqual([expect.objectContaining({ status: 'restored', check: 'equal' })]);
    expect(await exists(chroma, '/data/added-after-the-backup')).toBe(false);
    expect(await exists(chroma, '/data/later-dir')).toBe(false);
    expect(await snapshotChroma(chroma)).toBe(seeded);
  });

  it('a restore refused by its read-back is put back exactly: nothing the refused archive added stays', async () => {
    // Nothing any check refuses: the same file twice with different content, beside a new one.
    // The read-back holds one of the two, so it differs from the archive and the restore is put back.
    const { copy, m } = await backupWithAppended(project, 'chromadb', 'rb-dup', [
      { path: 'data/planted-by-the-backup', data: 'planted\n' },
      { path: 'data/twice', data: 'first\n' },
      { path: 'data/twice', data: 'second\n' },
    ]);
    await untilAnswers(() => chromaApi(chroma)('/collections'));
    const r = await bot(['backup', 'restore', m.id, '--dir', copy, '--yes', '--json']);
    expect(r.exitCode).toBe(5);
    expect(JSON.parse(String(r.stdout)).services).toEqual([expect.objectContaining({ status: 'rolled-back' })]);
    expect(await exists(chroma, '/data/planted-by-the-backup')).toBe(false);
    expect(await exists(chroma, '/data/twice')).toBe(false);
    expect(await snapshotChroma(chroma)).toBe(seeded);
  });

  it('live data a restore would refuse: backup create says such a backup can never be restored (⚠️, partial, exit 3), and keeps its bytes', async () => {
    const api = chromaApi(chroma);
    await untilAnswers(() => api('/collections'));
    await run(chroma, ['sh', '-c', 'ln -s /etc/hostname /data/hostname-link && echo newer > /data/written-after-the-backup']);
    const copy = await tempDir('rb-refusable');
    const created = await bot(['backup', 'create', '--json', '--project', project, '--dir', copy]);
    expect(created.exitCode, String(created.stderr)).toBe(3);
    const warned = JSON.parse(String(created.stdout)) as Manifest;
    expect(warned.status).toBe('partial');
    expect(warned.services[0]!.status).toBe('ok'); // its bytes are kept, whole and hashed
    expect(warned.services[0]!.restoreRefuses).toMatch(/'data\/hostname-link' points to \/etc\/hostname/);
    const list = await bot(['backup', 'list', '--dir', copy, '--all']);
    expect(String(list.stdout)).toMatch(/⚠️|partial/);
    expect(String(list.stdout)).not.toMatch(/✅/);
  });

  it('live data a restore would refuse: its restore point could never be put back, so the restore is refused before anything changes (exit 5)', async () => {
    // A failed restore would otherwise lose the newer data for good.
    const api = chromaApi(chroma);
    await untilAnswers(() => api('/collections'));
    await api('/collections', { body: { name: 'made-after-the-backup' } });
    const r = await bot(['backup', 'restore', backup.id, '--dir', dir, '--yes']);
    expect(r.exitCode, String(r.stderr)).toBe(5);
    expect(String(r.stderr)).toMatch(
      /^stackvault: Nothing was restored: the restore point restore-point_\S+ of chromadb could not be put back if the restore failed, .*'data\/hostname-link' points to \/etc\/hostname, outside \/data\.\n/,
    );
    await untilAnswers(() => api('/collections'));
    expect(await api<Array<{ name: string }>>('/collections')).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'made-after-the-backup' })]));
    expect(await exists(chroma, '/data/hostname-link')).toBe(true);
    expect((await run(chroma, ['cat', '/data/written-after-the-backup'])).trim()).toBe('newer');
    await run(chroma, ['rm', '/data/hostname-link', '/data/written-after-the-backup']);
  });
});

/**
 * An app whose project source tree is bind-mounted: only its SQLite file is a recorded path,
 * valid because it is a database. A refused restore that turned it into a directory must still
 * be put back, and so must the restore point afterwards.
 */
describe('the rollback puts back the paths valid when the restore began', () => {
  const project = newProjectName('rbsrc');
  let app: StartedTestContainer;
  let tree: string;

  beforeAll(async () => {
    tree = await tempDir('rb-src');
    await writeFile(join(tree, 'docker-compose.yml'), 'services:\n  app:\n    image: stackvault-local/appstub:1\n    volumes:\n      - ./:/src\n');
    const db = new DatabaseSync(join(tree, 'app.db'));
    db.exec("CREATE TABLE t(x); INSERT INTO t VALUES ('kept by the rollback');");
    db.close();
    app = await new GenericContainer(IMAGES.appstub)
      .withLabels({ 'com.docker.compose.project': project, 'com.docker.compose.service': 'app', 'com.docker.compose.project.config_files': join(tree, 'docker-compose.yml') })
      .withBindMounts([{ source: tree, target: '/src', mode: 'rw' }])
      .withWaitStrategy(Wait.forHealthCheck())
      .start();
  });

  afterAll(async () => {
    await app?.stop().catch(() => undefined);
  });

  it('a restore that turned the database into a directory, then failed, is put back, database and all', async () => {
    const original = await readFile(join(tree, 'app.db'));
    const copy = await tempDir('rb-src-backup');
    const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', copy]);
    expect(c.exitCode, String(c.stderr)).toBe(0);
    const m = JSON.parse(String(c.stdout)) as Manifest;
    expect(m.services[0]!.details!.paths).toEqual(['/src/app.db']);
    // Under the recorded path, no link: nothing a check refuses, but the read-back differs (one file, two entries).
    await replaceArtifact(
      join(copy, m.id),
      'app',
      handMadeTar([
        { path: 'app.db/', type: 'Directory' },
        { path: 'app.db/x', data: 'first\n' },
        { path: 'app.db/x', data: 'second\n' },
      ]),
    );
    const r = await bot(['backup', 'restore', m.id, '--dir', copy, '--yes', '--json']);
    expect(r.exitCode).toBe(5);
    expect(JSON.parse(String(r.stdout)).services).toEqual([expect.objectContaining({ status: 'rolled-back' })]);
    expect(await readFile(join(tree, 'app.db'))).toEqual(original);
    // The undo printed after a run still works too.
    const [point] = await restorePoints(copy);
    const undo = await bot(['backup', 'restore', point!, '--dir', copy, '--yes', '--json']);
    expect(undo.exitCode, String(undo.stderr)).toBe(0);
    expect(await readFile(join(tree, 'app.db'))).toEqual(original);
  });
});
