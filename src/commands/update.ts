import { ALWAYS_POSSIBLE, ExitCode } from '../errors.js';
import { Option } from 'commander';
import type { UpdateResult } from '../core/update.js';
import { defineCommand } from './command.js';
import type { SharedFlagValues } from './shared-flags.js';

interface UpdateFlags extends SharedFlagValues {
  repo?: string;
  allowPartial?: boolean;
}

/**
 * The pre-update routine (core/update.ts): check that the pull will fast-forward, back up (type
 * pre-update, comment naming the current commit), `git merge --ff-only` to the commit checked,
 * restart the stack's containers. A refused pull, a failed backup, or a partial one (unless
 * --allow-partial) stops it before anything changes.
 */
export const updateCommand = defineCommand<UpdateFlags, UpdateResult>({
  path: 'update',
  exitCodes: [...ALWAYS_POSSIBLE, ExitCode.partial, ExitCode.notFound, ExitCode.dockerUnreachable, ExitCode.storage, ExitCode.locked],
  description: 'pre-update routine: back up (type pre-update), git pull, restart; stops if the pull would not apply or the backup fails',
  shared: ['dir', 'json'],
  options: () => [
    new Option('--project <name>', 'Compose project to back up and restart (default $STACKVAULT_PROJECT or stackvault-demo)'),
    new Option('--repo <path>', 'git checkout to pull (default: this one)'),
    new Option('--allow-partial', 'go ahead even if some services could not be backed up'),
  ],
  examples: ['./bot.sh update', './bot.sh update --project bot --repo /srv/bot'],
  logged: true,
  async run({ flags, io }) {
    const [{ REPO_ROOT, stackProject }, { runUpdate }, { commandContext }, { plainProgress }] = await Promise.all([
      import('../core/compose.js'),
      import('../core/update.js'),
      import('./context.js'),
      import('./progress-renderers.js'),
    ]);
    const repo = flags.repo ?? REPO_ROOT;
    const project = flags.project ?? stackProject();
    const ctx = commandContext();
    const r = await runUpdate({ repo, project, dir: flags.dir, allowPartial: Boolean(flags.allowPartial) }, { ...ctx, progress: plainProgress(io.say), say: io.say });
    if (!r.upToDate) {
      const count = `${r.restarted.length} container${r.restarted.length === 1 ? '' : 's'} restarted`;
      io.say(
        r.notApplied.length
          ? `Pulled ${r.from} -> ${r.to}; ${count}, still as defined before the pull (see the warning above). To go back: git checkout ${r.from} && ./bot.sh backup restore ${r.backupId}`
          : `Updated ${r.from} -> ${r.to}; ${count}. To go back: git checkout ${r.from} && ./bot.sh backup restore ${r.backupId}`,
      );
    }
    return { data: r, ...(r.backupId ? { backupId: r.backupId } : {}) };
  },
});
