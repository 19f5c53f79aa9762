import { type DockerEngine, withSecrets } from '../docker/engine.js';
import type { BackupPlan, Driver } from '../drivers/types.js';
import { consistentByPolicy, writersOf } from './consistency.js';
import { discover, type DiscoveryOptions, type LeftOut } from './discovery.js';
import { secretsOf } from './redact.js';

export interface PlannedService extends Partial<BackupPlan> {
  service: string;
  driver: string;
  container: string;
  image: string;
  project?: string;
  /** Set when the container is not running (it would be recorded as skipped). */
  notRunning?: string;
  /** Set when the driver could not tell its plan (the backup would likely fail too). */
  problem?: string;
}

export interface BackupPlanResult {
  services: PlannedService[];
  leftOut: LeftOut[];
  /** Present when the backup would be consistent (`--consistent`, or the project's label). */
  consistency?: PlannedConsistency;
}

export interface PlannedConsistency {
  /** True when the label `stackvault.consistent=true` asks for it, not the flag. */
  byLabel: boolean;
  /** The containers that would be paused for the window, by name. */
  writers: string[];
  /** Services whose driver has no quick snapshot point: copied whole inside the window. */
  copiedWhole: string[];
}

/**
 * What `backup create` would do with the same options, touching nothing: per service the
 * driver, how it is copied, whether it is stopped or paused, its paths and a rough size; and
 * every container of the projects that would be left out, with the reason.
 */
export async function planBackup(options: DiscoveryOptions & { consistent?: boolean }, deps: { engine: DockerEngine; drivers: readonly Driver[] }): Promise<BackupPlanResult> {
  await deps.engine.version();
  const found = await discover(deps.engine, deps.drivers, options);
  const byLabel = consistentByPolicy(found);
  const consistency: PlannedConsistency | undefined =
    options.consistent || byLabel
      ? {
          byLabel: !options.consistent && byLabel,
          writers: writersOf(found, deps.drivers).map((w) => w.name),
          copiedWhole: found.running.filter((c) => !c.driver.prepareSnapshot).map((c) => c.service),
        }
      : undefined;
  const services: PlannedService[] = [];
  for (const c of [...found.running, ...found.notRunning]) {
    const base = { service: c.service, driver: c.driver.name, container: c.container.name, image: c.container.image, ...(c.project ? { project: c.project } : {}) };
    if (c.container.state !== 'running') {
      services.push({ ...base, notRunning: c.container.state });
      continue;
    }
    try {
      const details = await deps.engine.inspect(c.container.id);
      // What the plan's commands print comes back with the container's secrets hidden, as in a backup.
      const engine = withSecrets(deps.engine, secretsOf(details, c.driver));
      services.push({ ...base, ...(c.driver.plan ? await c.driver.plan(engine, details, found.peers(c.container.id)) : {}) });
    } catch (err) {
      services.push({ ...base, problem: (err as Error).message });
    }
  }
  for (const c of found.unreadable) {
    services.push({
      service: c.service,
      driver: c.driver.name,
      container: c.container.name,
      image: c.container.image,
      ...(c.project ? { project: c.project } : {}),
      problem: `its labels cannot be read: ${c.why}`,
    });
  }
  return { services: services.sort((a, b) => a.service.localeCompare(b.service)), leftOut: found.leftOut, ...(consistency ? { consistency } : {}) };
}
