import type { DockerEngine } from '../docker/engine.js';
import type { Driver } from '../drivers/types.js';
import { clause, ExitCode, errorMessage, StackvaultError } from '../errors.js';
import { formatDuration } from '../util/format.js';
import { gitFailure } from '../util/git-message.js';
import { ensureBackupDir } from './backup-dir.js';
import { composeCommand } from './compose.js';
import { DEFAULT_COMPRESSION } from './compression.js';
import { createBackupHoldingLock } from './create.js';
import { composeUpCommand, definitionChanges, fastForward, git, planPull, short } from './git-checkout.js';
import { acquireLock } from './lock.js';
import type { ProgressSink } from './progress.js';
import { isExcluded, LABELS } from './selection.js';
import { withStopped } from './stopped-markers.js';

export interface UpdateOptions {
  repo: string;
  project: string;
  dir: string;
  allowPartial: boolean;
}

export interface UpdateDeps {
  engine: DockerEngine;
  drivers: readonly Driver[];
  signal: AbortSignal;
  progress: ProgressSink;
  say(line: string): void;
}

export interface UpdateResult {
  /** Short commit ids. */
  from: string;
  to: string;
  /** The upstream had nothing new: nothing was backed up or restarted. */
  upToDate: boolean;
  backupId?: string;
  restarted: string[];
  /** Files the pull changed that a restart does not apply (Compose files, .env, Dockerfiles). */
  notApplied: string[];
  /** The command that applies them, when the containers' labels say how they were made. */
  apply?: string;
}

/**
 * The pre-update routine, under the backup directory's lock from start to end (a second update,
 * or a backup, cannot come in between): check that the pull will fast-forward (fetching first;
 * a refusal changes nothing and stops no container), back up (type pre-update), fast-forward to
 * the commit checked, restart the project's running containers one at a time.
 */
export async function runUpdate(options: UpdateOptions, deps: UpdateDeps): Promise<UpdateResult> {
  const dir = await ensureBackupDir(options.dir);
  await deps.engine.version(); // Docker down: said now, before a fetch or a backup
  const release = await acquireLock(dir, `update (project ${options.project})`, 0);
  try {
    return await underLock(dir, options, deps);
  } finally {
    await release();
  }
}

async function underLock(dir: string, options: UpdateOptions, deps: UpdateDeps): Promise<UpdateResult> {
  const { project } = options;
  deps.say(`Checking that ${options.repo} can be pulled (git fetch)...`);
  const plan = await planPull(options.repo, deps.signal);
  const from = short(plan.head);
  if (plan.behind === 0) {
    deps.say(`Already up to date: ${plan.branch} at ${from} has everything ${plan.upstream} has; nothing was backed up, pulled or restarted.`);
    return { from, to: from, upToDate: true, restarted: [], notApplied: [] };
  }
  const to = short(plan.target);
  if (deps.signal.aborted) throw new StackvaultError('Update interrupted before its backup; nothing was backed up, pulled or restarted.', ExitCode.interrupted);
  deps.say(`1/3 Backing up before updating from ${from}...`);
  const { manifest } = await createBackupHoldingLock(
    dir,
    { dir, project, type: 'pre-update', comment: `before update ${from}`, parallel: 4, compress: DEFAULT_COMPRESSION, prefix: 'stackvault' },
    { engine: deps.engine, drivers: deps.drivers, progress: deps.progress, signal: deps.signal },
  ).catch((err: unknown) => {
    if (err instanceof StackvaultError) throw new StackvaultError(`The pre-update backup failed, so nothing was updated: ${err.message}`, err.exitCode, err.hint);
    throw err;
  });
  if (manifest.status !== 'ok' && !options.allowPartial) {
    throw new StackvaultError(`The pre-update backup ${manifest.id} is partial, so nothing was updated.`, ExitCode.partial, 'Fix the failed services, or run with --allow-partial.');
  }
  deps.say(`2/3 Pulling ${from} -> ${to} from ${plan.upstream} (backup ${manifest.id} is safe)...`);
  // Not cancelled on Ctrl-C, and out of the terminal's reach (git.ts): git killed while it
  // updates the working tree leaves it half checked out. It is local and quick.
  const pull = await fastForward(plan);
  const now = short((await git(plan.top, ['rev-parse', 'HEAD'], plan.env)).stdout.trim());
  // Before this check an interrupt here was ignored: the restart went ahead and the run said "Updated", exit 0.
  if (deps.signal.aborted) {
    throw new StackvaultError(
      `Update interrupted ${pull.exitCode === 0 ? `after git pull (${from} -> ${now})` : `during git pull (still at ${now})`}; nothing was restarted.`,
      ExitCode.interrupted,
      `Your data is in ${manifest.id}.${pull.exitCode === 0 && now !== from ? ' The containers still run what they ran before the pull.' : ''}`,
    );
  }
  if (pull.exitCode !== 0) {
    throw new StackvaultError(
      `git merge --ff-only ${to} failed, nothing was restarted: ${gitFailure(pull.stderr)}`,
      ExitCode.failure,
      `${now === from ? `The checkout is still at ${from}. ` : ''}Your data is in ${manifest.id}.`,
    );
  }
  deps.say(`3/3 Restarting the containers of project ${project}...`);
  const containers = (await deps.engine.listContainers()).filter((c) => c.labels[LABELS.composeProject] === project && !isExcluded(c));
  const labels = containers.map((c) => c.labels);
  const notApplied = definitionChanges(plan.changed, plan.top, labels);
  const apply = notApplied.length ? composeUpCommand(await composeName(), project, labels) : undefined;
  const applyIt = notApplied.length
    ? `The pull changed ${notApplied.join(', ')}, which a restart does not apply: the containers still run the definition they were created with; apply it with ${apply ?? 'your Compose command (up -d)'}.`
    : '';
  const restarted: string[] = [];
  const rest = () => containers.filter((r) => !restarted.includes(r.name)).map((r) => r.name);
  for (const c of containers) {
    // After Ctrl-C no container is stopped any more (before, every one was still restarted
    // and the run said "Updated", exit 0); the one being restarted is started again.
    if (deps.signal.aborted) {
      throw new StackvaultError(
        `Update interrupted while restarting: pulled ${from} -> ${now}; restarted ${restarted.length ? restarted.join(', ') : 'none'}; not restarted: ${rest().join(', ')}.`,
        ExitCode.interrupted,
        `They still run what they ran before the pull: docker restart ${rest().join(' ')}. Your data is in ${manifest.id}.`,
      );
    }
    // Through the same guarded path as a backup's stop: a marker (so a run killed meanwhile is
    // reported next time), the container's own stop timeout, a warning when it had to be killed,
    // started again on every path.
    const target = { id: c.id, name: c.name, service: c.labels[LABELS.composeService] ?? c.name };
    try {
      await withStopped(deps.engine, dir, target, async () => undefined, {
        purpose: 'restart',
        onDone: (f) => {
          deps.say(`  ${c.name}: restarted (down ${formatDuration(f.downtimeMs)})`);
          for (const w of f.warnings) deps.say(`warning: ${c.name}: ${w}`);
        },
      });
      restarted.push(c.name);
    } catch (err) {
      if (err instanceof StackvaultError && err.exitCode === ExitCode.interrupted) throw err;
      // A start refused after the pull (a bind-mounted file it moved, say) was "unexpected error",
      // with no word of what was pulled, restarted, or left stopped.
      const others = rest().filter((n) => n !== c.name);
      throw new StackvaultError(
        `Update stopped: ${c.name} did not start again after the pull (${clause(errorMessage(err))}), so it is stopped; pulled ${from} -> ${now}; restarted ${restarted.length ? restarted.join(', ') : 'none'}${others.length ? `; not restarted (still running the old version): ${others.join(', ')}` : ''}.`,
        ExitCode.failure,
        `${applyIt ? `${applyIt} ` : ''}To go back: git -C ${plan.top} checkout ${from} && docker start ${c.name}; your data is in ${manifest.id}.`,
      );
    }
  }
  if (applyIt) deps.say(`warning: ${applyIt}`);
  return { from, to: now, upToDate: false, backupId: manifest.id, restarted, notApplied, ...(apply ? { apply } : {}) };
}

async function composeName(): Promise<string> {
  return (await composeCommand().catch(() => ['docker', 'compose'])).join(' ');
}
