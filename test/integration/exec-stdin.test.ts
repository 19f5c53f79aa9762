import Docker from 'dockerode';
import { Readable } from 'node:stream';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerodeEngine } from '../../src/docker/dockerode-engine.js';
import { newProjectName, PG_SUPERUSER, psql, startPostgres } from '../support/containers.js';

/** Fails instead of hanging when a promise never settles. */
const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still pending after ${ms} ms (hung)`)), ms))]);

const processes = async (id: string): Promise<string[]> => ((await new Docker().getContainer(id).top({ ps_args: '-eo pid,args' })).Processes ?? []).map((p: string[]) => p.join(' '));

describe('exec stdin whose source fails', () => {
  let pg: StartedTestContainer;
  beforeAll(async () => {
    pg = await startPostgres({ project: newProjectName('stdin') });
  });
  afterAll(async () => {
    await pg?.stop();
  });

  it('rejects promptly, kills the command before it sees an end of input, and leaves no process behind', async () => {
    await psql(pg, 'bot', 'CREATE TABLE copied(x int)');
    let step = 0;
    // psql reads a COPY, then the source breaks (a corrupt or vanished artifact).
    const source = new Readable({
      read() {
        if (step++ === 0) this.push('COPY copied FROM stdin;\n1\n2\n3\n');
        else setTimeout(() => this.destroy(new Error('the artifact could not be read')), 300);
      },
    });
    const started = Date.now();
    const run = new DockerodeEngine().exec(pg.getId(), ['psql', '-U', PG_SUPERUSER, '-d', 'bot', '-v', 'ON_ERROR_STOP=1', '-X', '-q'], { stdin: source });
    await expect(within(run, 15_000)).rejects.toThrow(/psql's input failed \(the artifact could not be read\), so it was stopped/);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await processes(pg.getId())).filter((p) => /\bpsql\b/.test(p))).toEqual([]);
    // Killed while its stdin was still open: the COPY was not ended by an EOF and committed.
    expect(await psql(pg, 'bot', 'SELECT count(*) FROM copied')).toBe('0');
  });

  it('an abort kills a running command and rejects with the reason', async () => {
    const controller = new AbortController();
    const run = new DockerodeEngine().exec(pg.getId(), ['sh', '-c', 'sleep 300; echo done'], { signal: controller.signal });
    await new Promise((r) => setTimeout(r, 500));
    controller.abort(new Error('interrupted by SIGINT'));
    await expect(within(run, 15_000)).rejects.toThrow('interrupted by SIGINT');
    expect((await processes(pg.getId())).filter((p) => /sleep 300/.test(p))).toEqual([]);
  });
});
