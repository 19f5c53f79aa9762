import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import Docker from 'dockerode';
import * as tar from 'tar';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, run, startApp } from '../support/containers.js';
import { handMadeTar, rawArtifact, replaceArtifact } from '../support/tamper.js';

/** The hunt's F4 file: an FTS5 table whose external content is a view that never ends. */
const ENDLESS_FTS =
  "CREATE VIEW v AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x AS id, 'a' AS body FROM c; CREATE VIRTUAL TABLE t USING fts5(body, content='v', content_rowid='id');";

async function endlessFtsFile(): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'svt-endless-'));
  try {
    const db = new DatabaseSync(join(dir, 'x.db'));
    db.exec(ENDLESS_FTS);
    db.close();
    return await readFile(join(dir, 'x.db'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The app's artifact with one database's copy replaced (checksums fixed, as an attacker holding the backup would). */
async function swapCopy(backupPath: string, service: string, member: string, data: Buffer): Promise<void> {
  const manifest = JSON.parse(await readFile(join(backupPath, 'manifest.json'), 'utf8')) as Manifest;
  const entry = manifest.services.find((s) => s.name === service)!;
  const dir = await mkdtemp(join(tmpdir(), 'svt-swap-'));
  try {
    await writeFile(join(dir, 'a.tar'), await rawArtifact(backupPath, entry.artifact!));
    const names: string[] = [];
    await tar.t({ file: join(dir, 'a.tar'), onReadEntry: (e) => names.push(e.path) });
    await tar.x({ file: join(dir, 'a.tar'), cwd: dir });
    const files = names.filter((n) => n.startsWith('sqlite/') && n !== 'sqlite/');
    expect(files).toContain(member);
    const entries = [{ path: 'sqlite/', type: 'Directory' }, ...(await Promise.all(files.map(async (n) => ({ path: n, data: n === member ? data : await readFile(join(dir, n)) }))))];
    await replaceArtifact(backupPath, service, handMadeTar(entries));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const startedAt = async (c: StartedTestContainer) => {
  const s = (await new Docker().getContainer(c.getId()).inspect()).State;
  return { running: s.Running, startedAt: s.StartedAt };
};

/**
 * Hostile and corrupt SQLite copies in a backup (hunt F4 and F9) are refused by restore's checks,
 * on the host, before the app is stopped or anything written: exit 5, naming the file.
 */
describe('a SQLite copy swapped in the backup', () => {
  const project = newProjectName('sqlitehostile');
  let app: StartedTestContainer;
  let dir: string;
  let notesBefore: string;

  beforeAll(async () => {
    app = await startApp({ project });
    dir = await tempDir('sqlitehostile');
    await run(app, ['sqlite3', '/app/data/notes.db', "PRAGMA busy_timeout=5000; INSERT INTO notes(body) VALUES ('before the backup')"]);
  });
  afterAll(async () => {
    await app?.stop().catch(() => undefined);
  });

  /** A fresh backup, then a note written after it: a restore would take it away. */
  async function freshBackup(): Promise<{ id: string; path: string; service: string }> {
    const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(c.exitCode, String(c.stderr)).toBe(0);
    const m = JSON.parse(String(c.stdout)) as Manifest;
    await run(app, ['sqlite3', '/app/data/notes.db', `PRAGMA busy_timeout=5000; INSERT INTO notes(body) VALUES ('after backup ${m.id}')`]);
    notesBefore = await run(app, ['sqlite3', '/app/data/notes.db', 'SELECT group_concat(body, "|") FROM notes']);
    return { id: m.id, path: join(dir, m.id), service: m.services[0]!.name };
  }

  async function expectUntouched(before: { running: boolean; startedAt: string }): Promise<void> {
    // Never stopped: the same start, still running; its notes as they were; no restore point.
    expect(await startedAt(app)).toEqual(before);
    expect(before.running).toBe(true);
    expect(await run(app, ['sqlite3', '/app/data/notes.db', 'SELECT group_concat(body, "|") FROM notes'])).toBe(notesBefore);
    expect(await run(app, ['sqlite3', '/app/data/notes.db', "SELECT name FROM sqlite_master WHERE name = 't'"])).toBe('');
  }

  it('an FTS table whose content never ends: restore refuses it in seconds (exit 5), the app never stopped; verify --deep too', async () => {
    const b = await freshBackup();
    await swapCopy(b.path, b.service, 'sqlite/1-notes.db', await endlessFtsFile());
    const before = await startedAt(app);
    let started = Date.now();
    const r = await bot(['backup', 'restore', b.id, '--dir', dir, '--yes']);
    const out = String(r.stdout) + String(r.stderr);
    expect(r.exitCode, out).toBe(5);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(out).toContain('the copy of /app/data/notes.db in the artifact (sqlite/1-notes.db) is not the file the backup recorded');
    expect(out).toContain('Nothing was changed');
    await expectUntouched(before);
    started = Date.now();
    const v = await bot(['backup', 'verify', b.id, '--deep', '--dir', dir]);
    expect(v.exitCode, String(v.stdout) + String(v.stderr)).toBe(5);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(String(v.stdout) + String(v.stderr)).toContain('/app/data/notes.db');
  });

  it('the same file in a backup that recorded no fingerprint: checked (virtual table not read) within seconds', async () => {
    const b = await freshBackup();
    await swapCopy(b.path, b.service, 'sqlite/1-notes.db', await endlessFtsFile());
    const manifestPath = join(b.path, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
    delete manifest.services[0]!.fingerprint;
    await writeFile(manifestPath, JSON.stringify(manifest, null, 2));
    const started = Date.now();
    const v = await bot(['backup', 'verify', b.id, '--deep', '--dir', dir]);
    // Its row counts are not the recorded ones (no notes table): refused, and quickly.
    expect(v.exitCode, String(v.stdout) + String(v.stderr)).toBe(5);
    expect(String(v.stdout) + String(v.stderr)).toContain('/app/data/notes.db: row counts differ');
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('a corrupt copy (no fingerprint to catch it): restore refuses it with exit 5 before the app is stopped, naming the file', async () => {
    const b = await freshBackup();
    await swapCopy(b.path, b.service, 'sqlite/1-notes.db', Buffer.alloc(8192, 0x5a));
    const manifestPath = join(b.path, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
    delete manifest.services[0]!.fingerprint;
    await writeFile(manifestPath, JSON.stringify(manifest, null, 2));
    const before = await startedAt(app);
    const r = await bot(['backup', 'restore', b.id, '--dir', dir, '--yes']);
    const out = String(r.stdout) + String(r.stderr);
    expect(r.exitCode, out).toBe(5);
    expect(out).toContain('the copy of /app/data/notes.db: file is not a database (sqlite/1-notes.db in the artifact)');
    expect(out).toContain('Nothing was changed');
    await expectUntouched(before);
  });

  it('the same schema planted in the live app: backup, verify --deep and restore finish in seconds and restore it exactly', async () => {
    // Last: it leaves the hostile schema in the app's notes.db (it is what the backup holds).
    await run(app, ['sqlite3', '/app/data/notes.db', `PRAGMA busy_timeout=5000; ${ENDLESS_FTS}`]);
    let started = Date.now();
    const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(c.exitCode, String(c.stderr)).toBe(0);
    expect(Date.now() - started).toBeLessThan(60_000);
    const m = JSON.parse(String(c.stdout)) as Manifest;
    const entry = m.services[0]!;
    expect(entry.fingerprint?.method).toBe('sqlite-v3');
    // The FTS table's shadow tables are counted and digested; the virtual table itself is not read.
    const notes = (entry.details!.files as Array<{ path: string; tables: Record<string, number> }>).find((f) => f.path === '/app/data/notes.db')!;
    expect(Object.keys(notes.tables).sort()).toEqual(['notes', 't_config', 't_data', 't_docsize', 't_idx']);
    expect(Object.keys(entry.fingerprint!.parts).filter((p) => p.startsWith('/app/data/notes.db table'))).not.toContain('/app/data/notes.db table t');
    started = Date.now();
    const v = await bot(['backup', 'verify', m.id, '--deep', '--dir', dir]);
    expect(v.exitCode, String(v.stdout) + String(v.stderr)).toBe(0);
    await run(app, ['sqlite3', '/app/data/notes.db', "PRAGMA busy_timeout=5000; INSERT INTO notes(body) VALUES ('after the planted backup')"]);
    const r = await bot(['backup', 'restore', m.id, '--dir', dir, '--yes', '--json']);
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    expect(Date.now() - started).toBeLessThan(120_000);
    expect((JSON.parse(String(r.stdout)) as { services: Array<{ check: string }> }).services.map((s) => s.check)).toEqual(['equal']);
    expect(await run(app, ['sqlite3', '/app/data/notes.db', "SELECT count(*) FROM notes WHERE body = 'after the planted backup'"])).toBe('0\n');
  });
});
