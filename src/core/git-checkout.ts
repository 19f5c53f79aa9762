import { execa } from 'execa';
import { lstat } from 'node:fs/promises';
import { basename, isAbsolute, join, relative, resolve } from 'node:path';
import { ExitCode, StackvaultError } from '../errors.js';
import { gitFailure } from '../util/git-message.js';
import { shellWord } from '../util/shell-word.js';
import { COMPOSE_WORKING_DIR, composeConfigFiles } from '../docker/labels.js';

/**
 * What `update` does to a git checkout, in two steps that cannot go wrong halfway: `planPull`
 * fetches and checks that a fast-forward will apply (before any backup, stop or change), and
 * `fastForward` then moves the checkout to exactly the commit that was checked.
 */

/** ssh may never ask (a passphrase, a password, an unknown host key) and never wait for a dead host forever. */
const SSH_OPTIONS = '-o BatchMode=yes -o ConnectTimeout=30 -o ServerAliveInterval=15 -o ServerAliveCountMax=4';
/** A fetch that still runs after this is taken for hung (a remote that accepts and never answers). */
export const FETCH_TIMEOUT_MS = 10 * 60_000;

/**
 * The environment git runs in: no prompt for a user name, password or passphrase on any path
 * (a terminal prompt waited forever in a cron job or an unattended ssh session, with the stack's
 * backup done and the update not), ssh in batch mode on top of the ssh command the user chose,
 * and C messages, which gitFailure reads. Pure.
 */
export function nonInteractiveGitEnv(env: Readonly<Record<string, string | undefined>>, configuredSshCommand: string | undefined): Record<string, string> {
  const out: Record<string, string> = { GIT_TERMINAL_PROMPT: '0', GCM_INTERACTIVE: 'never', SSH_ASKPASS_REQUIRE: 'never', LC_ALL: 'C' };
  // GIT_SSH names a program that may not take ssh's options: left alone (no terminal reaches it anyway).
  const base = env.GIT_SSH_COMMAND || configuredSshCommand || (env.GIT_SSH ? undefined : 'ssh');
  if (base) out.GIT_SSH_COMMAND = `${base} ${SSH_OPTIONS}`;
  return out;
}

export interface GitResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Ended by the signal or the timeout. */
  ended?: 'interrupted' | 'timeout';
}

/**
 * Runs git in `repo` in a session of its own, so it has no terminal to prompt on and a terminal's
 * Ctrl-C does not reach it: git killed while it writes the working tree leaves it half checked
 * out. Only what may be cut short (a fetch) gets `cancel`/`timeoutMs`, which end its whole
 * process group (git, and the ssh or https helper it started).
 */
export async function git(repo: string, args: string[], env: Record<string, string>, options: { cancel?: AbortSignal; timeoutMs?: number } = {}): Promise<GitResult> {
  const child = execa('git', ['-C', repo, ...args], { env, reject: false, stdin: 'ignore', detached: true, stripFinalNewline: false });
  let ended: GitResult['ended'];
  const end = (why: NonNullable<GitResult['ended']>) => {
    ended ??= why;
    try {
      if (child.pid) process.kill(-child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  };
  const onAbort = () => end('interrupted');
  if (options.cancel?.aborted) onAbort();
  options.cancel?.addEventListener('abort', onAbort);
  const timer = options.timeoutMs ? setTimeout(() => end('timeout'), options.timeoutMs) : undefined;
  try {
    const r = await child;
    return { exitCode: r.exitCode ?? 1, stdout: String(r.stdout), stderr: String(r.stderr), ...(ended ? { ended } : {}) };
  } finally {
    clearTimeout(timer);
    options.cancel?.removeEventListener('abort', onAbort);
  }
}

export interface PullPlan {
  /** The checkout's top directory. */
  top: string;
  branch: string;
  /** e.g. origin/main. */
  upstream: string;
  /** Its full ref, e.g. refs/remotes/origin/main. */
  tracking: string;
  /** Full commit ids. */
  head: string;
  target: string;
  /** Commits the upstream has that HEAD has not (0: nothing to pull). */
  behind: number;
  /** Commits HEAD has that the upstream has not. */
  ahead: number;
  /** Paths the pull changes (added, modified or deleted). */
  changed: string[];
  env: Record<string, string>;
}

/** A commit id as people write it. */
export const short = (commit: string) => commit.slice(0, 7);
const NOTHING = 'so nothing was backed up, pulled or restarted';
const zList = (out: string) => out.split('\0').filter(Boolean);

/**
 * What a pull would overwrite (pure): local changes (staged or not) to files the pull changes,
 * and files it adds where an untracked or ignored file exists (git refuses the first; an
 * ignored one, such as a .env, it replaces without a word).
 */
export function pullConflicts(
  pull: { changed: readonly string[]; added: readonly string[] },
  local: { changed: ReadonlySet<string>; existing: ReadonlySet<string> },
): { edited: string[]; untracked: string[] } {
  const edited = pull.changed.filter((p) => local.changed.has(p));
  const untracked = pull.added.filter((p) => !local.changed.has(p) && local.existing.has(p));
  return { edited, untracked };
}

const listed = (paths: readonly string[]) => (paths.length > 4 ? `${paths.slice(0, 4).join(', ')} and ${paths.length - 4} more` : paths.join(', '));

/**
 * Checks that `git pull --ff-only` of the branch's upstream will apply, fetching first; throws
 * one sentence (exit 1) when it will not, or exit 130 when interrupted. Changes nothing in the
 * working tree, the index or the branch: only the remote-tracking refs move.
 */
export async function planPull(repo: string, signal: AbortSignal): Promise<PullPlan> {
  const sshCommand = await execa('git', ['-C', repo, 'config', '--get', 'core.sshCommand'], { reject: false, stdin: 'ignore' });
  const env = nonInteractiveGitEnv(process.env, sshCommand.exitCode === 0 ? sshCommand.stdout.trim() : undefined);
  const run = (args: string[]) => git(repo, args, env);
  const out = async (args: string[]) => (await run(args)).stdout.trim();
  const topR = await run(['rev-parse', '--show-toplevel']);
  if (topR.exitCode !== 0 || !topR.stdout.trim()) {
    throw new StackvaultError(`${repo} is not a git checkout with a working tree (${gitFailure(topR.stderr)}), ${NOTHING}.`, ExitCode.failure, 'Point --repo at the checkout your stack runs from.');
  }
  const top = topR.stdout.trim();
  const head = await out(['rev-parse', '--verify', '-q', 'HEAD']);
  if (!head) throw new StackvaultError(`${top} has no commit yet, ${NOTHING}.`);
  const branchR = await run(['symbolic-ref', '-q', '--short', 'HEAD']);
  if (branchR.exitCode !== 0) {
    throw new StackvaultError(
      `${top} is on a detached HEAD (at ${short(head)}), not on a branch, so there is nothing to pull: nothing was backed up or restarted.`,
      ExitCode.failure,
      'Check out the branch you deploy (git checkout main), then run update again.',
    );
  }
  const branch = branchR.stdout.trim();
  if ((await run(['rev-parse', '-q', '--verify', 'MERGE_HEAD'])).exitCode === 0 || (await out(['ls-files', '-u']))) {
    throw new StackvaultError(`${top} is in the middle of a merge, ${NOTHING}.`, ExitCode.failure, 'Finish it (git commit) or abort it (git merge --abort), then run update again.');
  }
  const upstreamR = await run(['rev-parse', '--abbrev-ref', '--symbolic-full-name', '@{upstream}']);
  if (upstreamR.exitCode !== 0) {
    throw new StackvaultError(`Branch ${branch} of ${top} has no upstream to pull from, ${NOTHING}.`, ExitCode.failure, `Set one: git -C ${top} branch --set-upstream-to=origin/${branch}`);
  }
  const upstream = upstreamR.stdout.trim();
  const tracking = await out(['rev-parse', '--symbolic-full-name', '@{upstream}']);
  const remote = (await out(['config', '--get', `branch.${branch}.remote`])) || 'origin';
  const mergeRef = await out(['config', '--get', `branch.${branch}.merge`]);
  // Into FETCH_HEAD only (an empty --refmap): a refusal leaves even `git status`'s "behind"
  // count as it was. fastForward moves the remote-tracking ref, as git pull would have.
  const fetch = await git(repo, ['fetch', '--quiet', '--no-tags', '--refmap=', remote, mergeRef], env, { cancel: signal, timeoutMs: FETCH_TIMEOUT_MS });
  if (fetch.ended === 'interrupted') throw new StackvaultError(`Update interrupted while fetching ${upstream}; nothing was backed up, pulled or restarted.`, ExitCode.interrupted);
  if (fetch.ended === 'timeout')
    throw new StackvaultError(`git fetch of ${upstream} did not finish within ${FETCH_TIMEOUT_MS / 60_000} minutes, ${NOTHING}.`, ExitCode.failure, 'Check that the remote answers: git fetch');
  if (fetch.exitCode !== 0) {
    throw new StackvaultError(
      `git fetch of ${upstream} failed (${gitFailure(fetch.stderr)}), ${NOTHING}.`,
      ExitCode.failure,
      'git is never allowed to ask for a password or passphrase here: use an ssh key in an agent or without a passphrase, or a credential helper.',
    );
  }
  const target = await out(['rev-parse', '--verify', '-q', 'FETCH_HEAD^{commit}']);
  const [ahead, behind] = (await out(['rev-list', '--left-right', '--count', `HEAD...${target}`])).split(/\s+/).map(Number) as [number, number];
  const plan: PullPlan = { top, branch, upstream, tracking, head, target, ahead, behind, changed: [], env };
  if (behind === 0) return plan;
  if (ahead > 0) {
    throw new StackvaultError(
      `Branch ${branch} of ${top} and ${upstream} have diverged (${ahead} local commit${ahead === 1 ? '' : 's'}, ${behind} new upstream) and cannot be fast-forwarded, ${NOTHING}.`,
      ExitCode.failure,
      `Reconcile them yourself (git -C ${top} log ${upstream}..HEAD shows yours), then run update again.`,
    );
  }
  const diff = (filter: string[]) => run(['diff', '--name-only', '-z', '--no-renames', ...filter, head, target]).then((r) => zList(r.stdout));
  const changed = await diff([]);
  const added = await diff(['--diff-filter=A']);
  const localChanged = new Set([
    ...zList((await run(['diff', '--name-only', '-z', '--no-renames', 'HEAD'])).stdout),
    ...zList((await run(['diff', '--cached', '--name-only', '-z', '--no-renames', 'HEAD'])).stdout),
  ]);
  const existing = new Set<string>();
  for (const p of added) if (await lstat(join(top, p)).catch(() => undefined)) existing.add(p);
  const { edited, untracked } = pullConflicts({ changed, added }, { changed: localChanged, existing });
  if (edited.length) {
    throw new StackvaultError(
      `The pull would overwrite local changes to ${listed(edited)} in ${top}, ${NOTHING}.`,
      ExitCode.failure,
      `Commit them, or put them aside (git -C ${top} stash) and apply them again after the update (git stash pop).`,
    );
  }
  if (untracked.length) {
    throw new StackvaultError(
      `The pull would replace ${listed(untracked)} in ${top}, which git does not track (so it would be lost), ${NOTHING}.`,
      ExitCode.failure,
      'Move it aside, run update again, then merge what you need back in.',
    );
  }
  plan.changed = changed;
  return plan;
}

/**
 * Moves the checkout to the commit planPull checked (not whatever the remote has meanwhile):
 * `git merge --ff-only`, which either applies whole or leaves the working tree as it was.
 */
export async function fastForward(plan: PullPlan): Promise<GitResult> {
  const r = await git(plan.top, ['merge', '--ff-only', '--quiet', plan.target], plan.env);
  if (r.exitCode === 0 && plan.tracking.startsWith('refs/remotes/')) await git(plan.top, ['update-ref', plan.tracking, plan.target], plan.env);
  return r;
}

const COMPOSE_NAME = /^((docker-)?compose(\.[^/]+)?\.ya?ml|\.env|Dockerfile(\..+)?|.+\.Dockerfile)$/;

/**
 * Of the files a pull changed, those a restart does not apply (pure): the Compose files and
 * `.env` the containers were created from (their com.docker.compose.project.* labels; Compose
 * v2 writes absolute paths, v1 paths relative to the working directory), and anything named
 * like a Compose file, an env file or a Dockerfile. Paths relative to the checkout's top.
 */
export function definitionChanges(changed: readonly string[], top: string, labels: ReadonlyArray<Readonly<Record<string, string>>>): string[] {
  const made = new Set<string>();
  for (const l of labels) {
    const wd = l[COMPOSE_WORKING_DIR];
    if (!wd) continue;
    for (const f of [...composeConfigFiles(l), '.env']) {
      const rel = relative(top, resolve(wd, f));
      if (rel && !rel.startsWith('..') && !isAbsolute(rel)) made.add(rel);
    }
  }
  return changed.filter((p) => made.has(p) || COMPOSE_NAME.test(basename(p)));
}

/** The command that recreates a project's containers from its Compose files as they are now (from its labels), when they say. */
export function composeUpCommand(compose: string, project: string, labels: ReadonlyArray<Readonly<Record<string, string>>>): string | undefined {
  const l = labels.find((x) => x[COMPOSE_WORKING_DIR]);
  if (!l) return undefined;
  return `cd ${shellWord(l[COMPOSE_WORKING_DIR]!)} && ${compose} -p ${shellWord(project)}${composeConfigFiles(l)
    .map((f) => ` -f ${shellWord(f)}`)
    .join('')} up -d`;
}
