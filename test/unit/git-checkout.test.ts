import { describe, expect, it } from 'vitest';
import { composeUpCommand, definitionChanges, nonInteractiveGitEnv, pullConflicts } from '../../src/core/git-checkout.js';
import { gitFailure } from '../../src/util/git-message.js';

describe('update: what a pull would do to a checkout', () => {
  it('git may never prompt, and keeps the ssh command the user chose', () => {
    expect(nonInteractiveGitEnv({}, undefined)).toMatchObject({ GIT_TERMINAL_PROMPT: '0', GIT_SSH_COMMAND: expect.stringMatching(/^ssh -o BatchMode=yes -o ConnectTimeout=30/) });
    expect(nonInteractiveGitEnv({}, 'ssh -i /srv/deploy_key').GIT_SSH_COMMAND).toMatch(/^ssh -i \/srv\/deploy_key -o BatchMode=yes/);
    expect(nonInteractiveGitEnv({ GIT_SSH_COMMAND: 'ssh -p 2222' }, 'ssh -i k').GIT_SSH_COMMAND).toMatch(/^ssh -p 2222 -o BatchMode=yes/);
    expect(nonInteractiveGitEnv({ GIT_SSH: '/usr/local/bin/my-ssh' }, undefined).GIT_SSH_COMMAND).toBeUndefined();
  });

  it('local edits to changed files, and untracked or ignored files where the pull adds one, are conflicts; other local edits are not', () => {
    const pull = { changed: ['docker-compose.yml', 'src/a.ts', '.env'], added: ['.env'] };
    expect(pullConflicts(pull, { changed: new Set(['docker-compose.yml', 'notes.txt']), existing: new Set(['.env']) })).toEqual({ edited: ['docker-compose.yml'], untracked: ['.env'] });
    expect(pullConflicts(pull, { changed: new Set(['notes.txt']), existing: new Set() })).toEqual({ edited: [], untracked: [] });
  });

  it('the files a restart does not apply: those the containers were made from (v1 relative, v2 absolute), .env, anything named like a Compose file or Dockerfile', () => {
    const v1 = { 'com.docker.compose.project.working_dir': '/srv/bot/deploy', 'com.docker.compose.project.config_files': 'stack.yml,override.yml' };
    const v2 = { 'com.docker.compose.project.working_dir': '/srv/bot', 'com.docker.compose.project.config_files': '/srv/bot/prod.yml' };
    const changed = ['deploy/stack.yml', 'deploy/.env', 'prod.yml', 'src/bot.py', 'docker/Dockerfile', 'compose.override.yaml', 'README.md'];
    expect(definitionChanges(changed, '/srv/bot', [v1, v2])).toEqual(['deploy/stack.yml', 'deploy/.env', 'prod.yml', 'docker/Dockerfile', 'compose.override.yaml']);
    expect(definitionChanges(['src/bot.py'], '/srv/bot', [])).toEqual([]);
    expect(composeUpCommand('docker compose', 'bot', [{}, v1])).toBe('cd /srv/bot/deploy && docker compose -p bot -f stack.yml -f override.yml up -d');
    expect(composeUpCommand('docker compose', 'bot', [{}])).toBeUndefined();
  });

  it("git's refusal names the files, and ssh's cause is kept", () => {
    const local =
      'error: Your local changes to the following files would be overwritten by merge:\n\tdocker-compose.yml\n\t.env.example\nPlease commit your changes or stash them before you merge.\nAborting\n';
    expect(gitFailure(local)).toBe('error: Your local changes to the following files would be overwritten by merge: docker-compose.yml, .env.example');
    const ssh = 'ssh: connect to host git.example.com port 22: Connection refused\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\n';
    expect(gitFailure(ssh)).toBe('ssh: connect to host git.example.com port 22: Connection refused fatal: Could not read from remote repository.');
  });
});
