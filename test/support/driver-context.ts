import type { Writable } from 'node:stream';
import type { DockerEngine } from '../../src/docker/engine.js';
import type { BackupContext } from '../../src/drivers/types.js';

/** A driver's backup context for a running store, as `backup create` gives it, for tests that drive a driver step by step (never stopped or paused). */
export async function backupContextFor(engine: DockerEngine, containerId: string, output: Writable): Promise<BackupContext> {
  return {
    engine,
    container: await engine.inspect(containerId),
    peers: [],
    output,
    signal: new AbortController().signal,
    withStopped: () => Promise.reject(new Error('a driver stepped through by a test is not stopped')),
    withPaused: () => Promise.reject(new Error('a driver stepped through by a test is not paused')),
    log: () => undefined,
  };
}
