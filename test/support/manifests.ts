import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { BackupRecord } from '../../src/core/catalog.js';
import { type Manifest, manifestProblem } from '../../src/core/manifest.js';

/**
 * A manifest with every field stackvault writes, dated by its id (the id's second, UTC), for
 * tests that plant backups on disk: the catalog refuses anything less as not written by it.
 */
export function writtenManifest(id: string, services: Array<Record<string, unknown>>, over: Record<string, unknown> = {}): Record<string, unknown> {
  const m = /_(\d{4})(\d\d)(\d\d)_(\d\d)(\d\d)(\d\d)(?:_\d+)?$/.exec(id);
  // An id that is not one (a hostile record) gets a date all the same: the id is what is under test.
  const at = m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.000Z` : '2026-06-01T00:00:00.000Z';
  return {
    schemaVersion: 1,
    id,
    createdAt: at,
    completedAt: at,
    type: 'daily',
    comment: '',
    status: 'ok',
    tool: { name: 'stackvault', version: '1.0.0' },
    docker: { version: '28.0.0', apiVersion: '1.41' },
    host: 'test-host',
    services,
    ...over,
  };
}

/** A service entry as stackvault writes one for a container, with its artifact's facts. */
export function writtenService(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'app', container: 'bot-app-1', containerId: 'c0ffee', image: 'app:1', driver: 'redis', status: 'ok', durationMs: 1, ...over };
}

/** A SHA-256 of the right shape, for artifacts no test reads. */
export const ANY_SHA256 = '0'.repeat(64);

/**
 * What the catalog hands on for a backup: its manifest (writtenManifest; status 'partial' unless
 * every service is ok) checked as readCatalog checks one, and its bytes. For tests of what reads
 * the catalog (stats, report), which rely on that check; a manifest it refuses throws here.
 */
export function catalogRecord(id: string, services: Array<Record<string, unknown>>, over: Record<string, unknown> = {}): BackupRecord {
  const written = writtenManifest(id, services, { status: services.every((s) => s.status === 'ok') ? 'ok' : 'partial', ...over });
  const problem = manifestProblem(written);
  if (problem) throw new Error(`catalogRecord(${id}): not a valid manifest: ${problem}`);
  const manifest = written as unknown as Manifest;
  return { manifest, path: `/backups/${id}`, bytes: manifest.services.reduce((t, s) => t + (s.bytes ?? 0), 0) };
}

/**
 * A backup on disk as `backup create` leaves one for an app's files: a real tar of `/data`
 * (one file) as the files driver records it, so `backup verify` passes it. For tests of what
 * handles backup directories (retention, locks, offsite copies), where no container is needed.
 */
export async function writeFilesBackup(dir: string, id: string, over: Record<string, unknown> = {}): Promise<void> {
  const src = join(dir, id, 'src');
  await mkdir(join(src, 'data'), { recursive: true });
  await writeFile(join(src, 'data', 'upload.txt'), `the data of ${id}\n`);
  await execa('tar', ['-cf', join(dir, id, 'app.tar'), '-C', src, 'data']);
  await rm(src, { recursive: true });
  const body = await readFile(join(dir, id, 'app.tar'));
  const service = writtenService({
    name: 'app',
    driver: 'files',
    image: 'app:1',
    artifact: 'app.tar',
    format: 'tar',
    details: { paths: ['/data'] },
    bytes: body.length,
    sha256: createHash('sha256').update(body).digest('hex'),
  });
  await writeFile(join(dir, id, 'manifest.json'), JSON.stringify(writtenManifest(id, [service], over)));
}
