import { DockerodeEngine } from '../docker/dockerode-engine.js';
import { parseHosts } from '../docker/endpoints.js';
import type { DockerEngine } from '../docker/engine.js';
import { MultiEngine } from '../docker/multi-engine.js';
import { DRIVERS } from '../drivers/registry.js';
import { interruptSignal } from '../util/interrupt.js';

/**
 * What every command needs; one place to build it. `hosts` are the --host values (or
 * STACKVAULT_HOSTS): with any, exactly those engines, each named; without, DOCKER_HOST's.
 */
export function commandContext(hosts?: string | readonly string[]): { engine: DockerEngine; drivers: typeof DRIVERS; signal: AbortSignal } {
  const given = typeof hosts === 'string' ? [hosts] : (hosts ?? []);
  const endpoints = parseHosts(given);
  const engine = endpoints.length ? new MultiEngine(endpoints) : new DockerodeEngine();
  return { engine, drivers: DRIVERS, signal: interruptSignal };
}
