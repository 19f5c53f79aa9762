import { execa } from 'execa';
import { readdir } from 'node:fs/promises';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, psql, startNeo4j, startPostgres } from '../support/containers.js';
import { mountTmpfs } from '../support/mounts.js';

describe('faults during backup create', () => {
  const started: StartedTestContainer[] = [];
  afterAll(async () => { await Promise.all(started.map((c) => c.stop().catch(() => undefined))); });

  it('disk full: exit 7 with a clear sentence, nothing kept or listed, containers running', async () => {
    const project = newProjectName('diskfull');
    const [pg, neo4j] = await Promise.all([startPostgres({ project }), startNeo4j({ project })]);
    started.push(pg, neo4j);
    await psql(pg, 'bot', 'CREATE TABLE filler AS SELECT g, md5(g::text) AS v FROM generate_series(1, 200000) g');
    const dir = await tempDir('full');
    await mountTmpfs(dir, 'size=256k');
    try {
      const r = await bot(['backup', 'create', '--dir', dir, '--project', project]);
      expect(r.exitCode, String(r.stderr)).toBe(7);
      expect(String(r.stderr)).toMatch(/no space left on the device\. Nothing was kept\./);
      expect((await readdir(dir)).filter((n) => !n.startsWith('.stackvault'))).toEqual([]);
      const list = await bot(['backup', 'list', '--dir', dir, '--json']);
      expect(JSON.parse(String(list.stdout))).toEqual([]);
      for (const c of [pg, neo4j]) expect((await c.exec(['true'])).exitCode).toBe(0);
    } finally {
      await execa('umount', [dir]);
    }
  });
});
