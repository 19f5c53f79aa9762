import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import { execa } from 'execa';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, psql, startPostgres, startRedis, startAll } from '../support/containers.js';

/** Debian's Chromium, headless: the page as a real browser renders it. */
const chromium = (args: string[]) => execa('chromium', ['--headless=new', '--no-sandbox', '--disable-gpu', '--enable-logging=stderr', '--v=0', ...args], { timeout: 120_000 });

describe('backup report, opened in a real browser', () => {
  const project = newProjectName('report');
  let pg: StartedTestContainer;
  let redis: StartedTestContainer;
  let dir: string;
  let file: string;

  beforeAll(async () => {
    [pg, redis] = await startAll([startPostgres({ project }), startRedis({ project })]);
    dir = await tempDir('report');
    for (const rows of [1000, 20000]) {
      await psql(pg, 'bot', `CREATE TABLE IF NOT EXISTS t (id int, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, ${rows}) g`);
      const r = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir], { timeout: 300_000 });
      expect(r.exitCode, String(r.stderr)).toBe(0);
      const id = (JSON.parse(String(r.stdout)) as Manifest).id;
      expect((await bot(['backup', 'verify', id, '--dir', dir])).exitCode).toBe(0);
    }
    // A partial run: Redis is down, so it is skipped, and the report must say why.
    await redis.stop({ remove: false } as never);
    const partial = await bot(['backup', 'create', '--project', project, '--dir', dir], { timeout: 300_000 });
    expect(partial.exitCode).toBe(3);
    file = join(await tempDir('report-out'), 'report.html');
    const r = await bot(['backup', 'report', '--dir', dir, '--out', file]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
  });
  afterAll(async () => {
    // Redis was stopped and kept above: testcontainers' stop no longer removes it, so it is removed here (with its volume).
    await Promise.all([
      pg?.stop(),
      redis &&
        new Docker()
          .getContainer(redis.getId())
          .remove({ force: true, v: true })
          .catch(() => undefined),
    ]);
  });

  it('is one self-contained file: nothing fetched from anywhere', async () => {
    const html = await readFile(file, 'utf8');
    expect(html).not.toMatch(/<script|<link|src="http|url\(http/i);
  });

  it('loads in Chromium without console errors, and its charts hold the data', async () => {
    const r = await chromium(['--dump-dom', `file://${file}`]);
    expect(String(r.stderr)).not.toMatch(/CONSOLE.*(Uncaught|Error)|Refused to/);
    const dom = String(r.stdout);
    for (const chart of ['size', 'duration', 'downtime']) expect(dom).toContain(`id="chart-${chart}"`);
    // Size per service: postgres in all three backups, redis in the two it was up for.
    const points = (series: string) => (new RegExp(`id="chart-size"[\\s\\S]*?data-series="${series}"[^>]*points="([^"]+)"`).exec(dom)?.[1] ?? '').trim().split(' ').length;
    expect(points('postgres')).toBe(3);
    expect(points('redis')).toBe(2);
    expect(dom).toMatch(/<td>redis<\/td><td>skipped: [^<]+<\/td>/);
    expect(dom.match(/<td>ok checksums /g)).toHaveLength(2);
  });

  it('renders to a screenshot', async () => {
    const png = process.env.STACKVAULT_REPORT_SCREENSHOT ?? join(await tempDir('report-png'), 'report.png');
    await chromium([`--screenshot=${png}`, '--window-size=1100,1500', '--hide-scrollbars', `file://${file}`]);
    expect((await readFile(png)).subarray(1, 4).toString()).toBe('PNG');
    expect((await stat(png)).size).toBeGreaterThan(20_000);
  });
});
