import { DEFAULT_COMPRESSION } from '../core/artifact.js';
import { execa } from 'execa';
import { compose, REPO_ROOT, stackProject } from '../core/compose.js';
import { ensureBackupDir } from '../core/backup-dir.js';
import { createBackup } from '../core/create.js';
import { acquireLock } from '../core/lock.js';
import { LABELS } from '../core/selection.js';
import { withStopped } from '../core/stopped-markers.js';
import { formatDuration } from '../util/format.js';
import { ExitCode, StackvaultError } from '../errors.js';
import { commandContext } from './context.js';
import { plainProgress } from './progress-renderers.js';
import { chooseImages } from '../stack/images.js';

const say = (line: string) => process.stdout.write(`${line}\n`);

/** `start|stop|restart|status|logs`: compose/ through `docker compose` or `docker-compose`. */
export async function stackCommand(verb: 'start' | 'stop' | 'restart' | 'status' | 'logs', service?: string): Promise<void> {
  const project = stackProject();
  switch (verb) {
    case 'start':
      return compose(project, ['up', '-d'], await chooseImages(say), true);
    case 'stop':
      return compose(project, ['stop'], {}, true);
    case 'restart':
      return compose(project, ['restart', ...(service ? [service] : [])], {}, true);
    case 'status':
      return compose(project, ['ps'], {}, true);
    case 'logs':
      return compose(project, ['logs', '--tail', '100', ...(service ? [service] : [])], {}, true);
  }
}

interface UpdateFlags {
  dir: string;
  repo?: string;
  project?: string;
  allowPartial?: boolean;
}

/**
 * The pre-update routine: back up (type pre-update, comment naming the current commit), then
 * `git pull --ff-only`, then restart the stack's containers. If the backup fails, nothing else
 * happens; a partial backup also stops the update unless --allow-partial.
 */
export async function updateCommand(flags: UpdateFlags): Promise<{ backupId: string }> {
  const repo = flags.repo ?? REPO_ROOT;
  const project = flags.project ?? stackProject();
  const git = (args: string[]) => execa('git', ['-C', repo, ...args], { reject: false });
  const head = await git(['rev-parse', '--short', 'HEAD']);
  if (head.exitCode !== 0) throw new StackvaultError(`${repo} is not a git checkout: ${head.stderr.trim()}`);
  const commit = head.stdout.trim();
  say(`1/3 Backing up before updating from ${commit}...`);
  const ctx = commandContext();
  const { manifest } = await createBackup(
    { dir: flags.dir, project, type: 'pre-update', comment: `before update ${commit}`, parallel: 4, compress: DEFAULT_COMPRESSION, prefix: 'stackvault' },
    { ...ctx, progress: plainProgress(say) },
  ).catch((err: unknown) => {
    if (err instanceof StackvaultError) throw new StackvaultError(`The pre-update backup failed, so nothing was updated: ${err.message}`, err.exitCode, err.hint);
    throw err;
  });
  if (manifest.status !== 'ok' && !flags.allowPartial) {
    throw new StackvaultError(`The pre-update backup ${manifest.id} is partial, so nothing was updated.`, ExitCode.partial, 'Fix the failed services, or run with --allow-partial.');
  }
  say(`2/3 Pulling (backup ${manifest.id} is safe)...`);
  const pull = await git(['pull', '--ff-only']);
  if (pull.exitCode !== 0) throw new StackvaultError(`git pull failed, nothing was restarted: ${pull.stderr.trim().split('\n').pop()}`, ExitCode.failure, `Your data is in ${manifest.id}.`);
  const now = (await git(['rev-parse', '--short', 'HEAD'])).stdout.trim();
  say(`3/3 Restarting the containers of project ${project}...`);
  const containers = (await ctx.engine.listContainers()).filter((c) => c.labels[LABELS.composeProject] === project && c.labels[LABELS.exclude] !== 'true');
  // Through the same guarded path as a backup's stop: a marker (so a run killed meanwhile is
  // reported next time), the container's own stop timeout, a warning when it had to be killed,
  // started again on every path; under the lock, so no backup is copying it meanwhile.
  const dir = await ensureBackupDir(flags.dir);
  const release = await acquireLock(dir, `update (restarting ${project})`, 30 * 60_000);
  try {
    for (const c of containers) {
      const target = { id: c.id, name: c.name, service: c.labels[LABELS.composeService] ?? c.name };
      await withStopped(ctx.engine, dir, target, async () => undefined, {
        onDone: (f) => {
          say(`  ${c.name}: restarted (down ${formatDuration(f.downtimeMs)})`);
          for (const w of f.warnings) say(`warning: ${c.name}: ${w}`);
        },
      });
    }
  } finally {
    await release();
  }
  say(`Updated ${commit} -> ${now}; ${containers.length} container${containers.length === 1 ? '' : 's'} restarted. To go back: git checkout ${commit} && ./bot.sh backup restore ${manifest.id}`);
  return { backupId: manifest.id };
}
