import type { ContainerDetails } from '../docker/engine.js';
import { LABELS } from '../core/selection.js';
import { concatTars } from '../util/tar-stream.js';
import { dirname } from 'node:path';
import { removeFromVolumes } from './container-files.js';
import type { BackupContext, BackupOutcome, RestoreContext } from './types.js';

/**
 * The paths to archive: the `stackvault.paths` label, else the driver's usual data paths that
 * are mounted in this container, else every mount.
 */
export function dataPaths(container: ContainerDetails, usual: readonly string[]): string[] {
  const label = container.labels[LABELS.paths];
  if (label) return label.split(',').map((p) => p.trim()).filter(Boolean);
  const mounted = container.mounts.map((m) => m.destination);
  const usualMounted = usual.filter((p) => mounted.includes(p));
  if (usualMounted.length > 0) return usualMounted;
  if (mounted.length > 0) return [...mounted].sort();
  return [...usual];
}

/**
 * Stops the container (unless labelled stackvault.stop=false), streams a tar of its data
 * paths through the archive API (ownership and modes are in the tar headers), and starts it
 * again whatever happens.
 */
export async function archiveDataPaths(ctx: BackupContext, usual: readonly string[]): Promise<BackupOutcome> {
  const { engine, container, output } = ctx;
  const paths = dataPaths(container, usual);
  const hot = container.labels[LABELS.stop] === 'false';
  const copy = () => concatTars(paths.map((p) => () => engine.getArchive(container.id, p)), output);
  if (hot) await copy();
  else await ctx.withStopped(copy);
  return { hot, details: { paths, stopped: !hot } };
}

/**
 * Stops the container, empties the archived paths, extracts the archive (owners and modes
 * come from its headers), and starts the container again whatever happens.
 */
export async function restoreDataPaths(ctx: RestoreContext): Promise<void> {
  const paths = (ctx.entry.details?.paths as string[] | undefined) ?? [];
  if (paths.length === 0) throw new Error('the backup does not say which paths it archived');
  const parents = [...new Set(paths.map((p) => dirname(p)))];
  if (parents.length !== 1) throw new Error(`paths in different directories (${paths.join(', ')}) cannot be restored from one archive`);
  await ctx.withStopped(async () => {
    await removeFromVolumes(ctx.engine, ctx.container, paths, 'contents');
    await ctx.engine.putArchive(ctx.container.id, parents[0]!, ctx.open());
  });
}
