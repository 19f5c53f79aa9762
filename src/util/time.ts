import { setTimeout as delay } from 'node:timers/promises';

/** Sleeps, but wakes with the abort reason when the run is interrupted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal });
}
