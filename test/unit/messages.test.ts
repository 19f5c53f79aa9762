import { describe, expect, it } from 'vitest';
import { checkDirFlag } from '../../src/commands/dir-flag.js';
import { changedDuring } from '../../src/core/changed-during.js';
import type { ContainerDetails } from '../../src/docker/engine.js';
import { clause } from '../../src/errors.js';
import { gitFailure } from '../../src/util/git-message.js';

describe('messages say what happened, in one sentence', () => {
  it('a message quoted in a sentence loses its own full stop, so none ends in ".."', () => {
    expect(`No service could be backed up: app: ${clause("stackvault.sqlite.paths must list absolute paths; 'x' is not.")}.`).toMatch(/is not\.$/);
    expect(clause('wait...')).toBe('wait...');
    expect(clause(undefined)).toBe('');
  });

  it("git's cause, not only its last suggestion", () => {
    const noUpstream =
      'There is no tracking information for the current branch.\nPlease specify which branch you want to merge with.\nSee git-pull(1) for details.\n\n    git pull <remote> <branch>\n\nIf you wish to set tracking information for this branch you can do so with:\n\n    git branch --set-upstream-to=<remote>/<branch> master\n';
    expect(gitFailure(noUpstream)).toBe('There is no tracking information for the current branch. Please specify which branch you want to merge with.');
    const fatal =
      "fatal: 'origin' does not appear to be a git repository\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n";
    expect(gitFailure(fatal)).toBe("fatal: 'origin' does not appear to be a git repository fatal: Could not read from remote repository.");
  });

  it('a container that restarted, stopped or went away during its copy is named as the cause', async () => {
    const before = { id: 'c1', name: 'shop-redis', running: true, state: 'running', startedAt: '2026-01-01T00:00:00Z' } as ContainerDetails;
    expect(await changedDuring(async () => ({ ...before, startedAt: '2026-01-01T00:00:05Z' }), before, false)).toBe('the container shop-redis restarted during the backup');
    expect(await changedDuring(async () => ({ ...before, startedAt: '2026-01-01T00:00:05Z' }), before, true)).toBeUndefined(); // stackvault stopped it itself
    expect(await changedDuring(async () => ({ ...before, running: false, state: 'exited', exitCode: 137 }), before, false)).toBe(
      'the container shop-redis stopped during the backup (it is exited, exit code 137)',
    );
    expect(await changedDuring(async () => undefined, before, false)).toBe('the container shop-redis was removed during the backup');
    expect(await changedDuring(async () => before, before, false)).toBeUndefined();
    expect(
      await changedDuring(
        async () => {
          throw new Error('engine down');
        },
        before,
        false,
      ),
    ).toBeUndefined();
  });

  it('--dir: non-UTF-8 bytes (U+FFFD after decoding) are exit 2, a name no file system holds is exit 7', () => {
    expect(() => checkDirFlag('/tmp/nonutf\uFFFD\uFFFD')).toThrow(expect.objectContaining({ exitCode: 2, message: expect.stringMatching(/not UTF-8/) }));
    expect(() => checkDirFlag(`/tmp/${'y'.repeat(300)}`)).toThrow(expect.objectContaining({ exitCode: 7, message: expect.stringMatching(/300 bytes, more than the 255/) }));
    expect(() => checkDirFlag(`/tmp/${'d/'.repeat(2000)}`)).toThrow(expect.objectContaining({ exitCode: 7 }));
    expect(() => checkDirFlag('./backups')).not.toThrow();
  });
});
