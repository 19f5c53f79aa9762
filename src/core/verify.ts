import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { Readable } from 'node:stream';
import type { ContainerDetails, DockerEngine } from '../docker/engine.js';
import type { Driver, ThrowawaySpec } from '../drivers/types.js';
import { fingerprintAt, type Fingerprint } from '../drivers/fingerprint.js';
import { errorMessage, ExitCode, StackvaultError } from '../errors.js';
import { checkArtifact, openArtifact, requireIdentity, type ArtifactCheck } from './artifact-check.js';
import { readCatalog, resolveBackup } from './catalog.js';
import { updateManifest } from './manifest-update.js';
import type { Manifest, ServiceEntry, Verification } from './manifest.js';
import type { ProgressSink } from './progress.js';
import { waitReady } from './readiness.js';
import { withStopped } from './stopped-markers.js';
import { removeOwnContainer, sweepLeftovers } from './leftover-helpers.js';
import { THROWAWAY_LABELS, THROWAWAY_NAMES } from '../docker/helper-owner.js';
import { startThrowaway } from './throwaway.js';
import { mapLimit } from '../util/limit.js';

/**
 * Services checked at once: the checks are CPU (decompression, hashing, a throwaway's load), and
 * deep ones start a throwaway server each on the service's engine, often the production host,
 * so at most 4 (as create's default --parallel) whatever the cores of the machine running this.
 */
const VERIFY_LANES = Math.min(availableParallelism(), 4);

export interface ServiceVerification {
  service: string;
  ok: boolean;
  error?: string;
  check?: ArtifactCheck;
  /** What the deep check saw in the restored copy (counts). */
  facts?: Record<string, unknown>;
}

export interface VerifyResult {
  backup: Manifest;
  deep: boolean;
  services: ServiceVerification[];
  /** Why the result is not in the manifest (a read-only backup directory, one another run holds locked), when it is not. */
  notRecorded?: string;
}

export interface DeepDeps {
  engine: DockerEngine;
  drivers: readonly Driver[];
  signal: AbortSignal;
  progress: ProgressSink;
}

/**
 * Re-hashes every artifact against the manifest and checks that it opens (decompression,
 * complete tar without unsafe entries, complete SQL dump). With `deep`, each artifact is then
 * restored into a throwaway container of its image and the data is looked at. Every service
 * is checked even after a failure, one per core (at most 4) at a time; the outcome is recorded in
 * the manifest.
 */
export async function verifyBackup(dir: string, id: string, deep?: DeepDeps, identity?: string, drivers: readonly Driver[] = deep?.drivers ?? []): Promise<VerifyResult> {
  const backup = resolveBackup(await readCatalog(dir), id);
  if (deep) {
    await deep.engine.version();
    await sweepLeftovers(deep.engine, (m) => deep.progress.warn(m));
  }
  const entries = backup.manifest.services.filter((s) => s.status === 'ok');
  for (const entry of entries) requireIdentity(entry, identity); // before any throwaway starts
  const fingerprints: Record<string, Fingerprint> = {};
  // A failure that is not the backup's (Docker, a usage error) stops the other lanes' throwaways.
  const stopLanes = new AbortController();
  const laneDeps = deep && { ...deep, signal: AbortSignal.any([deep.signal, stopLanes.signal]) };
  const services = await mapLimit(entries, VERIFY_LANES, async (entry): Promise<ServiceVerification> => {
    deep?.progress.serviceStarted(entry.name, `verifying (deep: restore a copy and look at the data)`);
    const driver = drivers.find((d) => d.name === entry.driver);
    let result: ServiceVerification;
    try {
      const check = await checkArtifact(backup.path, entry, identity, driver);
      result = { service: entry.name, ok: true, check };
      if (laneDeps) {
        const seen = await deepVerify(backup.path, entry, dir, laneDeps, identity);
        result.facts = seen.facts;
        // Restores compare against the content fingerprint: record it now if the backup could not,
        // or if the recorded one can no longer be compared (an older method of a store that changes by itself).
        const usable = driver ? fingerprintAt(driver, entry.fingerprint, new Date()) : entry.fingerprint;
        const fp = usable ? undefined : (seen.fingerprint ?? (await artifactFingerprint(backup.path, entry, dir, laneDeps, identity)));
        if (fp) fingerprints[entry.name] = fp;
      }
    } catch (err) {
      if (deep?.signal.aborted) throw new StackvaultError('Verify interrupted; nothing was recorded, and every throwaway container was removed.', ExitCode.interrupted);
      if (err instanceof StackvaultError && err.exitCode !== ExitCode.integrity) {
        stopLanes.abort();
        throw err;
      }
      result = { service: entry.name, ok: false, error: errorMessage(err) };
    }
    return result;
  });
  // The check is done: a directory that cannot take its record (mounted read-only, a NAS
  // snapshot, locked by a long restore) must not hide the result behind that error.
  let notRecorded: string | undefined;
  try {
    await record(dir, backup.path, backup.manifest, fingerprints, {
      at: new Date().toISOString(),
      deep: Boolean(deep),
      ok: services.every((s) => s.ok),
      services: Object.fromEntries(services.map((s) => [s.service, { ok: s.ok, ...(s.error ? { error: s.error } : {}), ...(s.facts ? { facts: s.facts } : {}) }])),
    });
  } catch (err) {
    if (!(err instanceof StackvaultError) || (err.exitCode !== ExitCode.storage && err.exitCode !== ExitCode.locked)) throw err;
    notRecorded = err.message;
  }
  return { backup: backup.manifest, deep: Boolean(deep), services, ...(notRecorded ? { notRecorded } : {}) };
}

async function artifactFingerprint(backupPath: string, entry: ServiceEntry, dir: string, deps: DeepDeps, identity?: string): Promise<Fingerprint | undefined> {
  const driver = deps.drivers.find((d) => d.name === entry.driver);
  if (!driver?.artifactFingerprint) return undefined;
  const open = () => openArtifact(backupPath, entry, identity);
  return driver.artifactFingerprint({ engine: deps.engine, entry, open, signal: deps.signal, inThrowaway: (spec, check) => inThrowaway(deps, driver, entry, open, dir, spec, check) });
}

/** The driver's deep verify: the facts it saw, and the artifact's fingerprint when it read that on the way. */
async function deepVerify(backupPath: string, entry: ServiceEntry, dir: string, deps: DeepDeps, identity?: string): Promise<{ facts: Record<string, unknown>; fingerprint?: Fingerprint }> {
  const driver = deps.drivers.find((d) => d.name === entry.driver);
  if (!driver) throw new Error(`no driver named ${entry.driver}`);
  const open = () => openArtifact(backupPath, entry, identity);
  let fingerprint: Fingerprint | undefined;
  const facts = await driver.deepVerify({
    engine: deps.engine,
    entry,
    open,
    signal: deps.signal,
    inThrowaway: (spec, check) => inThrowaway(deps, driver, entry, open, dir, spec, check),
    fingerprinted: (fp) => {
      fingerprint = fp;
    },
  });
  return { facts, ...(fingerprint ? { fingerprint } : {}) };
}

export async function inThrowaway<T>(
  deps: DeepDeps,
  driver: Driver,
  entry: ServiceEntry,
  open: () => Readable,
  dir: string,
  spec: ThrowawaySpec,
  check: (container: ContainerDetails) => Promise<T>,
): Promise<T> {
  const { signal } = deps;
  // On the engine the service ran on when it is given (its image is there), else the first.
  const engine = deps.engine.select(entry.engine && deps.engine.engineNames.includes(entry.engine) ? entry.engine : undefined);
  if (!(await engine.imageExists(entry.image))) throw new Error(`the image ${entry.image} is not present on this host, so no throwaway container can be started`);
  const name = `${THROWAWAY_NAMES.check}${entry.driver}-${randomBytes(4).toString('hex')}`;
  // Labelled with the backup directory, so whoever runs several (tests) can tell whose it is.
  const id = await startThrowaway(engine, entry.image, name, spec, { [THROWAWAY_LABELS.check]: dir });
  try {
    await waitReady(engine, id, driver, signal);
    await driver.restore({
      engine,
      container: await engine.inspect(id),
      entry,
      open,
      signal,
      // No marker: this throwaway is ours, and a read-only backup directory is still verified.
      withStopped: (work) => withStopped(engine, dir, { id, name, service: `${entry.name} (verify)` }, work, { marker: false }),
      log: () => undefined,
    });
    await waitReady(engine, id, driver, signal);
    return await check(await engine.inspect(id));
  } finally {
    await removeOwnContainer(engine, id, name, (m) => deps.progress.warn(m));
  }
}

/** Appends the verification to manifest.json (atomically, under the lock). */
async function record(dir: string, backupPath: string, manifest: Manifest, fingerprints: Record<string, Fingerprint>, verification: Verification): Promise<void> {
  await updateManifest(dir, backupPath, `backup verify ${manifest.id}`, (m) => ({
    ...m,
    services: m.services.map((s) => (fingerprints[s.name] ? { ...s, fingerprint: fingerprints[s.name] } : s)),
    verifications: [...(m.verifications ?? []), verification].slice(-10),
  }));
}
