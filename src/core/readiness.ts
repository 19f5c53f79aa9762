import type { DockerEngine } from '../docker/engine.js';
import type { Driver } from '../drivers/types.js';
import { sleep } from '../util/time.js';

/** The container ran but did not become ready in time: asking again the same way would only wait as long again. */
export class NotReadyError extends Error {}

/**
 * Waits until a restarted container serves again: its healthcheck says healthy, or (without
 * one, or with `healthcheck: false`) the driver's probe answers. Fails when the container exits
 * or time runs out.
 */
export async function waitReady(engine: DockerEngine, containerId: string, driver: Driver, signal: AbortSignal, timeoutMs = 180_000, options: { healthcheck?: boolean } = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'not checked yet';
  for (;;) {
    const c = await engine.inspect(containerId);
    if (!c.running && c.state !== 'restarting' && c.state !== 'created') throw new Error(`the container ${c.name} is ${c.state}`);
    if (c.running) {
      if (c.health && options.healthcheck !== false) {
        if (c.health === 'healthy') return;
        last = `healthcheck says ${c.health}`;
      } else if (await driver.ready(engine, c).catch(() => false)) {
        return;
      } else {
        last = `${driver.name} does not answer yet`;
      }
    }
    if (Date.now() > deadline) throw new NotReadyError(`${c.name} did not become ready within ${Math.round(timeoutMs / 1000)} s (${last})`);
    await sleep(500, signal);
  }
}
