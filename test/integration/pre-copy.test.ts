import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { PRE_COPY_FILES_MAX } from '../../src/drivers/pre-copy.js';
import { extractArtifact, tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, run, startNeo4j } from '../support/containers.js';
import { snapshotHostFiles } from '../support/host-files.js';
import { IMAGES } from '../support/images.js';
import { snapshotFiles } from '../support/seed.js';

/**
 * Pre-copy (drivers/pre-copy.ts): a store's files are copied while it runs, then only what
 * changed is copied while it is stopped. The artifact must equal the volume at the moment of
 * the stop. A writer runs in the store's own PID namespace, so the kernel ends it the instant
 * the store's main process exits: the volume is frozen exactly at the stop, and what it holds
 * afterwards (read by `find`/`sha256sum` in the container) is what the artifact (extracted by
 * GNU tar on the host) must hold.
 */
describe('pre-copy: copy while running, then only the changes while stopped', () => {
  const started: StartedTestContainer[] = [];
  const docker = new Docker();
  afterAll(async () => {
    await Promise.all(started.map((c) => c.stop().catch(() => undefined)));
  });

  const DB = '/data/databases/neo4j';
  /** Changes everything in every way a store might, as fast as it can, until the store stops. */
  const WRITER = `
    i=0
    while :; do
      i=$((i+1))
      printf '%08d' $i > ${DB}/small/same-size && touch -d 2001-01-01 ${DB}/small/same-size  # same size, old mtime: only ctime tells
      echo "line $i" >> /data/transactions/neo4j/log
      chmod $((i % 2 ? 600 : 640)) ${DB}/small/mode
      f=${DB}/churn/$((i % 9)); if [ -e $f ]; then rm $f; else echo "back $i" > $f; fi
      if [ -e ${DB}/churn/renamed-a ]; then mv ${DB}/churn/renamed-a ${DB}/churn/renamed-b; else mv ${DB}/churn/renamed-b ${DB}/churn/renamed-a; fi
      mv ${DB}/swaps/a ${DB}/swaps/t && mv ${DB}/swaps/b ${DB}/swaps/a && mv ${DB}/swaps/t ${DB}/swaps/b  # only the directories' ctime changes
      [ $i -lt 20 ] && dd if=/dev/urandom of=${DB}/big.store.db bs=4096 count=1 seek=$((i * 97)) conv=notrunc 2>/dev/null
      [ $i -lt 30 ] && mkdir -p ${DB}/dirs/$((i % 7)) && touch ${DB}/dirs/$((i % 7))/f$i
      sleep 0.005
    done`;

  it('the artifact equals the volume at the stop, though every kind of change kept happening while it was copied', async () => {
    const project = newProjectName('precopy');
    const neo4j = await startNeo4j({ project });
    started.push(neo4j);
    await run(neo4j, [
      'bash',
      '-c',
      `head -c 150000000 /dev/urandom > ${DB}/big.store.db && mkdir ${DB}/small && for i in $(seq 0 299); do echo $i > ${DB}/small/$i; done && echo x > ${DB}/small/mode && mkdir -p ${DB}/churn ${DB}/swaps/a ${DB}/swaps/b && echo a > ${DB}/churn/renamed-a && echo AAAA > ${DB}/swaps/a/f && echo BBBB > ${DB}/swaps/b/f && chown -R 7474:7474 /data`,
    ]);
    const writer = await docker.createContainer({
      Image: IMAGES.neo4j,
      User: '7474:7474',
      Entrypoint: ['bash', '-c', WRITER],
      Labels: { 'stackvault.exclude': 'true' },
      HostConfig: { PidMode: `container:${neo4j.getId()}`, VolumesFrom: [neo4j.getId()], AutoRemove: true },
    });
    await writer.start();
    // The big file's last change lies seconds before the backup: it is pre-copied, not copied again.
    await new Promise((r) => setTimeout(r, 3000));

    const dir = await tempDir('precopy');
    const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(c.exitCode, String(c.stderr)).toBe(0);
    const m = JSON.parse(String(c.stdout)) as Manifest;
    const entry = m.services[0]!;
    // It was pre-copied: only what changed was copied while the store was down.
    const pre = entry.details!.preCopy as { copiedWhileDown: number } | undefined;
    expect(pre, `${String(c.stderr)} ${JSON.stringify(entry.details)}`).toBeDefined();
    expect(pre!.copiedWhileDown).toBeGreaterThan(0);
    const filesAtStop = Number(await run(neo4j, ['bash', '-c', 'find /data -type f | wc -l']));
    expect(pre!.copiedWhileDown).toBeLessThan(filesAtStop);
    expect(
      (
        await docker
          .getContainer(writer.id)
          .inspect()
          .catch(() => undefined)
      )?.State.Running ?? false,
    ).toBe(false);

    const files = await extractArtifact(join(dir, m.id, entry.artifact!));
    expect(await snapshotHostFiles(join(files, 'data'))).toBe(await snapshotFiles(neo4j));

    // The downtime is shown where backups are listed and summed up.
    expect(entry.downtimeMs).toBeGreaterThan(0);
    expect(String((await bot(['backup', 'list', '--dir', dir])).stdout)).toMatch(/✅ neo4j \(down \d/);
    expect(String((await bot(['backup', 'stats', '--dir', dir])).stdout)).toMatch(/neo4j .* down [\d.]+ m?s last, [\d.]+ m?s at most/);
  });

  it('a volume with hard links is copied whole while stopped, and the artifact keeps the link', async () => {
    const project = newProjectName('precopylink');
    const neo4j = await startNeo4j({ project });
    started.push(neo4j);
    await run(neo4j, ['bash', '-c', `echo data > ${DB}/one && ln ${DB}/one ${DB}/two && chown -R 7474:7474 /data`]);
    const dir = await tempDir('precopylink');
    const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(c.exitCode, String(c.stderr)).toBe(0);
    const m = JSON.parse(String(c.stdout)) as Manifest;
    expect(m.services[0]!.details!.preCopy).toBeUndefined();
    expect(String(c.stderr)).toMatch(/copied while stopped \(no pre-copy: \/data\/databases\/neo4j\/(one|two) has hard links\)/);
    const files = await extractArtifact(join(dir, m.id, m.services[0]!.artifact!));
    expect(await run(neo4j, ['stat', '-c', '%h', `${DB}/two`])).toBe('2\n');
    expect(await snapshotHostFiles(join(files, 'data'))).toBe(await snapshotFiles(neo4j));
    const { stdout } = await import('execa').then(({ execa }) => execa('stat', ['-c', '%h', join(files, 'data/databases/neo4j/two')]));
    expect(stdout).toBe('2');
  });

  it('a volume of more files than a pre-copy lists in memory is copied whole while stopped, every file in the artifact', async () => {
    const project = newProjectName('precopymany');
    const neo4j = await startNeo4j({ project });
    started.push(neo4j);
    const count = PRE_COPY_FILES_MAX + 1;
    await run(neo4j, ['bash', '-c', `mkdir ${DB}/many && cd ${DB}/many && seq 1 ${count} | xargs touch && chown -R 7474:7474 /data`]);
    const dir = await tempDir('precopymany');
    const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir], { timeout: 600_000 });
    expect(c.exitCode, String(c.stderr)).toBe(0);
    const m = JSON.parse(String(c.stdout)) as Manifest;
    expect(m.services[0]!.details!.preCopy).toBeUndefined();
    expect(String(c.stderr)).toContain('copied while stopped (no pre-copy: it holds more than 250,000 files, more than a pre-copy lists in memory)');
    const files = await extractArtifact(join(dir, m.id, m.services[0]!.artifact!));
    expect((await readdir(join(files, 'data/databases/neo4j/many'))).length).toBe(count);
  });
});
