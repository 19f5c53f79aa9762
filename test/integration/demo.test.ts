import { execa } from 'execa';
import { readdir } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { readJson, tempDir } from '../support/artifacts.js';
import { bot, REPO_ROOT } from '../support/cli.js';
import { changeStack, seedStack, stackContent } from '../support/stack-content.js';
import { join } from 'node:path';

/** The README's main-job command, end to end on the compose/ stack. */
describe('./bot.sh demo', () => {
  let demoDir = '';
  afterAll(async () => {
    await execa('docker-compose', ['-f', 'compose/docker-compose.yml', '-p', 'stackvault-demo', 'down', '-v'], { cwd: REPO_ROOT, reject: false });
  });

  it('brings the stack up, seeds it, backs up all five services and lists the backup', async () => {
    const dir = await tempDir('demo');
    const r = await bot(['demo', '--dir', dir], { timeout: 400_000 });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const out = String(r.stdout);
    expect(out).toMatch(/1 backup in .*newest first/);
    expect(out).toMatch(/✅ app\b.*✅ chroma\b.*✅ neo4j\b.*✅ postgres\b.*✅ redis\b.*✅ worker/);
    expect(out).toMatch(/✅ neo4j \(down [\d.]+ m?s\)/); // the stopped ones show their downtime
    expect(out).toContain('./bot.sh backup restore stackvault_backup_');
    expect(out).toContain('down -v');
    const [id] = (await readdir(dir)).filter((n) => n.startsWith('stackvault_backup_'));
    const manifest = await readJson<Manifest>(`${dir}/${id}/manifest.json`);
    expect(manifest.services.every((s) => s.status === 'ok')).toBe(true);
    expect(manifest.services.find((s) => s.name === 'postgres')!.rawBytes).toBeGreaterThan(20_000); // the seeded rows are in the dump
    // Chroma's volume is where 0.x kept its data; the 1.x server persists elsewhere, and is warned about.
    expect(manifest.services.find((s) => s.name === 'chroma')!.warnings).toEqual(expect.arrayContaining([expect.stringContaining('/data is not on a volume')]));
    demoDir = dir;
  });

  it('restores the whole demo stack: every store and the worker volumes equal what was seeded', async () => {
    const project = 'stackvault-demo';
    const composeDir = join(REPO_ROOT, 'compose');
    await seedStack(project, composeDir);
    const seeded = await stackContent(project, composeDir);
    const created = await bot(['backup', 'create', '--project', project, '--dir', demoDir]);
    expect(created.exitCode, String(created.stderr)).toBe(0);
    await changeStack(project, composeDir);
    expect(await stackContent(project, composeDir)).not.toEqual(seeded);
    const r = await bot(['backup', 'restore', 'latest', '--yes', '--json', '--dir', demoDir], { timeout: 400_000 });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const result = JSON.parse(String(r.stdout)) as { services: Array<{ service: string; status: string; check: string }> };
    expect(result.services.map((s) => `${s.service} ${s.status} ${s.check}`)).toEqual(['app', 'chroma', 'neo4j', 'postgres', 'redis', 'worker'].map((s) => `${s} restored equal`));
    expect(await stackContent(project, composeDir)).toEqual(seeded);
  });

  it('status, logs, stop and start drive the same stack', async () => {
    const status = await bot(['status']);
    expect(status.exitCode).toBe(0);
    expect(String(status.stdout)).toMatch(/stackvault-demo_postgres_1 .*Up/);
    const logs = await bot(['logs', 'neo4j']);
    expect(String(logs.stdout)).toContain('neo4j stand-in started');
    expect((await bot(['stop'])).exitCode).toBe(0);
    expect(String((await bot(['status'])).stdout)).toMatch(/stackvault-demo_postgres_1 .*Exit/);
    expect((await bot(['start'])).exitCode).toBe(0);
    expect(String((await bot(['status'])).stdout)).toMatch(/stackvault-demo_postgres_1 .*Up/);
  });
});
