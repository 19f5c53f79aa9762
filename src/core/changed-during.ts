import type { ContainerDetails } from '../docker/engine.js';

/**
 * Why a service's copy broke off, when its container did something on its own meanwhile: it
 * was removed, it is not running, or (when stackvault did not stop it) it started again. A
 * failure then says so first, rather than only the broken command's own words ("redis-cli
 * ended (exit 137)"). Undefined when nothing of the kind is seen.
 */
export async function changedDuring(inspect: (id: string) => Promise<ContainerDetails | undefined>, before: ContainerDetails, stoppedByUs: boolean): Promise<string | undefined> {
  let now: ContainerDetails | undefined;
  try {
    now = await inspect(before.id);
  } catch {
    return undefined; // the engine cannot tell now: the failure speaks for itself
  }
  if (!now) return `the container ${before.name} was removed during the backup`;
  if (!now.running) return `the container ${before.name} stopped during the backup (it is ${now.state}${now.exitCode ? `, exit code ${now.exitCode}` : ''})`;
  if (!stoppedByUs && before.startedAt && now.startedAt && now.startedAt !== before.startedAt) return `the container ${before.name} restarted during the backup`;
  return undefined;
}
