import { Option } from 'commander';
import { ExitCode, StackvaultError } from '../errors.js';
import { formatDuration } from '../util/format.js';
import { gitFailure } from '../util/git-message.js';
import { defineCommand } from './command.js';
import type { SharedFlagValues } from './shared-flags.js';

interface UpdateFlags extends SharedFlagValues {
  repo?: string;
  allowPartial?: boolean;
}

interface Update {
  from: string;
  to: string;
  backupId: string;
  restarted: string[];
}

/**
 * The pre-update routine: back up (type pre-update, comment naming the current commit), then
 * `git pull --ff-only`, then restart the stack's containers. If the backup fails, nothing else
 * happens; a partial backup also stops the update unless --allow-partial.
 */
export const updateCommand = defineCommand<UpdateFlags, Update>({
  path: 'update',
  description: 'pre-update routine: back up (type pre-update), git pull, restart; stops if the backup fails',
  shared: ['dir', 'json'],
  options: () => [
    new Option('--project <name>', 'Compose project to back up and restart (default $STACKVAULT_PROJECT or stackvault-demo)'),
    new Option('--repo <path>', 'git checkout to pull (default: this one)'),
    new Option('--allow-partial', 'go ahead even if some services could not be backed up'),
  ],
  examples: ['./bot.sh update', './bot.sh update --project bot --repo /srv/bot'],
  logged: true,
  async run({ flags, io }) {
    const [
      { DEFAULT_COMPRESSION },
      { execa },
      { REPO_ROOT, stackProject },
      { ensureBackupDir },
      { createBackup },
      { acquireLock },
      { LABELS, isExcluded },
      { withStopped },
      { commandContext },
      { plainProgress },
    ] = await Promise.all([
      import('../core/compression.js'),
      import('execa'),
      import('../core/compose.js'),
      import('../core/backup-dir.js'),
      import('../core/create.js'),
      import('../core/lock.js'),
      import('../core/selection.js'),
      import('../core/stopped-markers.js'),
      import('./context.js'),
      import('./progress-renderers.js'),
    ]);
    const repo = flags.repo ?? REPO_ROOT;
    const project = flags.project ?? stackProject();
    const git = (args: string[]) => execa('git', ['-C', repo, ...args], { reject: false });
    const head = await git(['rev-parse', '--short', 'HEAD']);
    if (head.exitCode !== 0) throw new StackvaultError(`${repo} is not a git checkout: ${head.stderr.trim()}`);
    const commit = head.stdout.trim();
    io.say(`1/3 Backing up before updating from ${commit}...`);
    const ctx = commandContext();
    const { manifest } = await createBackup(
      { dir: flags.dir, project, type: 'pre-update', comment: `before update ${commit}`, parallel: 4, compress: DEFAULT_COMPRESSION, prefix: 'stackvault' },
      { ...ctx, progress: plainProgress(io.say) },
    ).catch((err: unknown) => {
      if (err instanceof StackvaultError) throw new StackvaultError(`The pre-update backup failed, so nothing was updated: ${err.message}`, err.exitCode, err.hint);
      throw err;
    });
    if (manifest.status !== 'ok' && !flags.allowPartial) {
      throw new StackvaultError(`The pre-update backup ${manifest.id} is partial, so nothing was updated.`, ExitCode.partial, 'Fix the failed services, or run with --allow-partial.');
    }
    io.say(`2/3 Pulling (backup ${manifest.id} is safe)...`);
    // Not cancelled on Ctrl-C: git killed while it updates the working tree leaves it half
    // checked out. A terminal's Ctrl-C reaches git itself; a SIGTERM to stackvault lets it finish.
    const pull = await git(['pull', '--ff-only']);
    const now = (await git(['rev-parse', '--short', 'HEAD'])).stdout.trim();
    // Before this check an interrupt here was ignored: the restart went ahead and the run said "Updated", exit 0.
    if (ctx.signal.aborted) {
      throw new StackvaultError(
        `Update interrupted ${pull.exitCode === 0 ? `after git pull (${commit} -> ${now})` : `during git pull (still at ${now})`}; nothing was restarted.`,
        ExitCode.interrupted,
        `Your data is in ${manifest.id}.${pull.exitCode === 0 && now !== commit ? ' The containers still run what they ran before the pull.' : ''}`,
      );
    }
    if (pull.exitCode !== 0) throw new StackvaultError(`git pull failed, nothing was restarted: ${gitFailure(pull.stderr)}`, ExitCode.failure, `Your data is in ${manifest.id}.`);
    io.say(`3/3 Restarting the containers of project ${project}...`);
    const containers = (await ctx.engine.listContainers()).filter((c) => c.labels[LABELS.composeProject] === project && !isExcluded(c));
    // Through the same guarded path as a backup's stop: a marker (so a run killed meanwhile is
    // reported next time), the container's own stop timeout, a warning when it had to be killed,
    // started again on every path; under the lock, so no backup is copying it meanwhile.
    const dir = await ensureBackupDir(flags.dir);
    const release = await acquireLock(dir, `update (restarting ${project})`, 30 * 60_000);
    const restarted: string[] = [];
    try {
      for (const c of containers) {
        // After Ctrl-C no container is stopped any more (before, every one was still restarted
        // and the run said "Updated", exit 0); the one being restarted is started again.
        if (ctx.signal.aborted) {
          const rest = containers.filter((r) => !restarted.includes(r.name)).map((r) => r.name);
          throw new StackvaultError(
            `Update interrupted while restarting: pulled ${commit} -> ${now}; restarted ${restarted.length ? restarted.join(', ') : 'none'}; not restarted: ${rest.join(', ')}.`,
            ExitCode.interrupted,
            `They still run what they ran before the pull: docker restart ${rest.join(' ')}. Your data is in ${manifest.id}.`,
          );
        }
        const target = { id: c.id, name: c.name, service: c.labels[LABELS.composeService] ?? c.name };
        await withStopped(ctx.engine, dir, target, async () => undefined, {
          purpose: 'restart',
          onDone: (f) => {
            restarted.push(c.name);
            io.say(`  ${c.name}: restarted (down ${formatDuration(f.downtimeMs)})`);
            for (const w of f.warnings) io.say(`warning: ${c.name}: ${w}`);
          },
        });
      }
    } finally {
      await release();
    }
    io.say(`Updated ${commit} -> ${now}; ${containers.length} container${containers.length === 1 ? '' : 's'} restarted. To go back: git checkout ${commit} && ./bot.sh backup restore ${manifest.id}`);
    return { data: { from: commit, to: now, backupId: manifest.id, restarted: containers.map((c) => c.name) }, backupId: manifest.id };
  },
});
