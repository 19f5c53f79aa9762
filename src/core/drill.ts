import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { missingProgram, type DockerEngine } from '../docker/engine.js';
import { clause, StackvaultError, ExitCode } from '../errors.js';
import { checkArtifacts, checkDetails } from './artifact-check.js';
import { readCatalog, resolveBackup } from './catalog.js';
import { acquireLock } from './lock.js';
import { removeTree } from '../util/safe-remove.js';
import type { Drill } from './manifest.js';
import { updateManifest } from './manifest-update.js';
import { waitReady } from './readiness.js';
import { restoreBackup, type RestoreDeps, type ServiceRestoreResult } from './restore.js';
import { LABELS } from './selection.js';
import { removeOwnContainer, sweepLeftovers } from './leftover-helpers.js';
import { THROWAWAY_LABELS, THROWAWAY_NAMES } from '../docker/helper-owner.js';
import { startThrowaway } from './throwaway.js';

export interface DrillOptions {
  dir: string;
  id: string;
  identity?: string;
  parallel: number;
}

export interface DrillResult extends Drill {
  backupId: string;
  results: ServiceRestoreResult[];
}

/**
 * `backup drill`: the whole restore, end to end, where it cannot hurt. A throwaway copy of the
 * backed-up services is started from their recorded images (an empty server each, as its
 * driver says), under a Compose project of its own; the backup is restored into it with
 * `restore --into-project` (every check, the content check included); then the copy is removed
 * on every path, and the drill is recorded in the manifest. Production is never touched.
 */
export async function drillBackup(options: DrillOptions, deps: Omit<RestoreDeps, 'confirm'>): Promise<DrillResult> {
  const backup = resolveBackup(await readCatalog(options.dir), options.id);
  const project = `${THROWAWAY_NAMES.drill}${randomBytes(3).toString('hex')}`;
  const started: Array<{ engine: DockerEngine; id: string; name: string }> = [];
  const notDrilled: Record<string, string> = {};
  const at = new Date();
  const dir = dirname(backup.path);
  const recordFailed = async (services: string[], why: string) => {
    // An interrupted drill says nothing of the backup: recorded, it read as a failed one.
    if (deps.signal.aborted) return;
    const failed: Drill = { at: at.toISOString(), ok: false, durationMs: Date.now() - at.getTime(), services: Object.fromEntries(services.map((s) => [s, { ok: false, check: why }])) };
    await updateManifest(dir, backup.path, `backup drill ${backup.manifest.id}`, (m) => ({ ...m, drills: [...(m.drills ?? []), failed].slice(-10) })).catch(() => undefined);
  };
  try {
    await sweepLeftovers(deps.engine, (m) => deps.progress.warn(m));
    const entries = backup.manifest.services.filter((s) => s.status === 'ok');
    const drilled: string[] = [];
    // Every spec first: a record its driver would not write, or paths a driver will not create
    // a volume for, are refused (and recorded as a failed drill) before any container starts.
    const specs = entries.map((entry) => {
      try {
        const driver = deps.drivers.find((d) => d.name === entry.driver);
        checkDetails(entry, driver);
        return driver?.throwaway?.(entry);
      } catch (err) {
        return err instanceof Error ? err : new Error(String(err));
      }
    });
    const refused = specs.findIndex((s) => s instanceof Error);
    if (refused >= 0) {
      const err = specs[refused] as Error;
      await recordFailed(
        entries.map((e) => e.name),
        `${entries[refused]!.name}: ${err.message}`,
      );
      throw err instanceof StackvaultError ? err : new StackvaultError(`${entries[refused]!.name}: ${err.message}`, ExitCode.integrity);
    }
    // Every artifact is read first (checksum, opens cleanly): a damaged backup fails in seconds,
    // before any container is started. The restore checks them again, as it always does.
    await checkArtifacts(backup.path, entries, options.identity, deps.drivers).catch(async (err: unknown) => {
      await recordFailed(
        entries.map((e) => e.name),
        err instanceof Error ? err.message : String(err),
      );
      throw err;
    });
    for (const [i, entry] of entries.entries()) {
      const driver = deps.drivers.find((d) => d.name === entry.driver);
      const spec = specs[i] as Exclude<(typeof specs)[number], Error>;
      if (!driver || !spec) {
        notDrilled[entry.name] = `the ${entry.driver} driver cannot start an empty ${entry.driver} on its own`;
        continue;
      }
      const engine = deps.engine.select(entry.engine && deps.engine.engineNames.includes(entry.engine) ? entry.engine : undefined);
      if (!(await engine.imageExists(entry.image))) {
        notDrilled[entry.name] = `its image ${entry.image} is not on this host`;
        continue;
      }
      deps.progress.info(`${entry.name}: starting an empty ${entry.driver} from ${entry.image} in project ${project}`);
      const name = `${project}-${entry.name.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
      // A target of this drill's restore, and of nothing else: exclude=false lets discovery see it.
      const id = await startThrowaway(engine, entry.image, name, spec, {
        [LABELS.composeProject]: project,
        [LABELS.composeService]: entry.name,
        [LABELS.exclude]: 'false',
        [THROWAWAY_LABELS.drill]: backup.manifest.id,
      }).catch((err: unknown) => {
        // An image without the program the empty copy runs (a distroless app has no shell to wait in): not drilled, and why.
        const missing = missingProgram(err);
        if (missing === undefined) throw err;
        notDrilled[entry.name] = `its image ${entry.image} has no ${missing} to keep an empty copy running in (a distroless image?)`;
        return undefined;
      });
      if (id === undefined) continue;
      started.push({ engine, id, name });
      await waitReady(engine, id, driver, deps.signal);
      drilled.push(entry.name);
    }
    if (drilled.length === 0)
      throw new StackvaultError(
        `Nothing of ${backup.manifest.id} can be drilled: ${Object.entries(notDrilled)
          .map(([s, why]) => `${s}: ${clause(why)}`)
          .join('; ')}.`,
        ExitCode.failure,
      );
    const restored = await restoreBackup(
      { dir: options.dir, id: backup.manifest.id, only: drilled, parallel: options.parallel, identity: options.identity, intoProject: project },
      { ...deps, confirm: async () => true },
    ).catch(async (err: unknown) => {
      // Refused before it began (a hostile or damaged artifact): a failed drill, recorded as such.
      await recordFailed(drilled, err instanceof Error ? err.message : String(err));
      throw err;
    });
    // The restore point captured the empty throwaways: nothing anyone would restore.
    const release = await acquireLock(dir, `backup drill ${backup.manifest.id}`, 60_000);
    await removeTree(join(dir, restored.restorePointId)).finally(release);
    if (restored.interrupted || deps.signal.aborted) throw interrupted();
    const services: Drill['services'] = Object.fromEntries([
      ...restored.services.map((s) => [s.service, { ok: s.status === 'restored' && s.check === 'equal', check: s.check ?? s.error ?? s.status }]),
      ...Object.entries(notDrilled).map(([s, why]) => [s, { ok: false, check: `not drilled: ${why}` }]),
    ]);
    const drill: Drill = { at: at.toISOString(), ok: Object.values(services).every((s) => s.ok), durationMs: Date.now() - at.getTime(), services };
    await updateManifest(dir, backup.path, `backup drill ${backup.manifest.id}`, (m) => ({ ...m, drills: [...(m.drills ?? []), drill].slice(-10) }));
    return { ...drill, backupId: backup.manifest.id, results: restored.services };
  } catch (err) {
    // Whatever the interrupt cut short (a throwaway's start, the restore) failed because of it.
    if (deps.signal.aborted) throw interrupted();
    throw err;
  } finally {
    for (const c of started) await removeOwnContainer(c.engine, c.id, c.name, (m) => deps.progress.warn(m));
  }
}

const interrupted = () => new StackvaultError('Drill interrupted; nothing was recorded, and the throwaway copy is removed.', ExitCode.interrupted);
