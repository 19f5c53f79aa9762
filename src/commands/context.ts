import { DockerodeEngine } from '../docker/dockerode-engine.js';
import type { DockerEngine } from '../docker/engine.js';
import { DRIVERS } from '../drivers/registry.js';
import { interruptSignal } from '../util/interrupt.js';

/** What every command needs; one place to build it. */
export function commandContext(): { engine: DockerEngine; drivers: typeof DRIVERS; signal: AbortSignal } {
  return { engine: new DockerodeEngine(), drivers: DRIVERS, signal: interruptSignal };
}
