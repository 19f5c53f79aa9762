import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { clause, ExitCode, StackvaultError } from '../errors.js';

/**
 * restic (https://restic.net) on the host, as Debian packages it (bookworm 0.14, trixie 0.18).
 * The repository and its password come only from restic's own environment
 * (RESTIC_REPOSITORY[_FILE], RESTIC_PASSWORD_FILE / RESTIC_PASSWORD_COMMAND / RESTIC_PASSWORD,
 * backend credentials such as AWS_* or B2_*): stackvault passes the environment through and
 * never puts a secret in argv, a log line or a manifest.
 */

export interface ResticSnapshot {
  id: string;
  short_id: string;
  time: string;
  hostname: string;
  tags?: string[];
  paths: string[];
}

/** Raised for anything the repository refused; exit code 10, one sentence, a hint. */
export const offsiteError = (message: string, hint?: string) => new StackvaultError(message, ExitCode.offsite, hint);

/** Whether a repository is named at all (the rest is restic's to judge). */
/** Any failure of an offsite step as the error to end the run with (our own errors keep their code). */
export const asOffsiteError = (err: unknown): StackvaultError =>
  err instanceof StackvaultError ? err : offsiteError(`The offsite step failed: ${clause(err instanceof Error ? err.message : String(err))}.`);

export const offsiteConfigured = (env: NodeJS.ProcessEnv = process.env) => Boolean(env.RESTIC_REPOSITORY || env.RESTIC_REPOSITORY_FILE);

export function requireOffsite(env: NodeJS.ProcessEnv = process.env): void {
  if (!offsiteConfigured(env)) {
    throw new StackvaultError('Offsite copies need a restic repository, and RESTIC_REPOSITORY is not set.', ExitCode.usage, 'Set RESTIC_REPOSITORY and RESTIC_PASSWORD_FILE (README: Offsite copies).');
  }
  if (!env.RESTIC_PASSWORD_FILE && !env.RESTIC_PASSWORD_COMMAND && !env.RESTIC_PASSWORD) {
    throw new StackvaultError('The restic repository has no password source: set RESTIC_PASSWORD_FILE or RESTIC_PASSWORD_COMMAND.', ExitCode.usage);
  }
}

/** The repository as shown to people: any user:password in a URL replaced. */
export function shownRepository(env: NodeJS.ProcessEnv = process.env): string {
  const repo = env.RESTIC_REPOSITORY ?? `(from ${env.RESTIC_REPOSITORY_FILE})`;
  return redactUrls(repo);
}

/**
 * Every URL's user info hidden, up to the last @ before the host (as Go's url.Parse, and so
 * restic, reads it: a password may hold @ and /).
 */
const redactUrls = (text: string) => text.replace(/(\/\/)\S*@(?=[^@\s]*$|[^@\s]*\s)/g, '$1***@');

export interface ResticRun {
  input?: Readable;
  /** Where stdout goes; by default it is collected and returned. */
  stdout?: Writable;
  signal?: AbortSignal;
}

/**
 * How long restic may keep retrying a repository that stopped answering, without any progress,
 * before stackvault gives up on it (restic itself retries for many minutes). The local backup
 * is kept either way; the next `create --offsite` tries again.
 */
const retrySeconds = () => Number(process.env.STACKVAULT_OFFSITE_RETRY_SECONDS ?? 120);

/** Runs restic; resolves with its stdout (when not streamed), or throws an offsiteError saying why. */
export function restic(args: string[], run: ResticRun = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    // stdin is never a terminal, so restic never prompts: requireOffsite made sure a password source is set.
    const child = spawn('restic', args, {
      stdio: [run.input ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      signal: run.signal,
      env: { ...process.env, RESTIC_PROGRESS_FPS: '0.5' },
    });
    const out: Buffer[] = [];
    let stderr = '';
    let failed: Error | undefined;
    // Retries are watched: each "retrying" line starts the clock unless it runs; progress stops it.
    let giveUp: NodeJS.Timeout | undefined;
    let bytesDone = -1;
    const progressed = () => {
      clearTimeout(giveUp);
      giveUp = undefined;
    };
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (c: string) => {
      stderr = keepEnds(stderr + c);
      const retry = /^.*(?:returned error, retrying|retrying after).*$/m.exec(c);
      if (retry && !giveUp) {
        giveUp = setTimeout(() => {
          failed ??= offsiteError(
            `The restic repository ${shownRepository()} stopped answering; gave up after ${retrySeconds()} s of retries: ${redactUrls(retry[0].trim())}`,
            'The local backup is kept; the next backup create --offsite tries again.',
          );
          child.kill('SIGTERM');
        }, retrySeconds() * 1000);
      }
    });
    child.stdout!.on('data', (c: Buffer) => {
      // `backup --json` reports bytes_done in its status lines; any other output is data itself.
      const done = run.stdout ? undefined : /"bytes_done":(\d+)/.exec(c.toString('latin1'));
      if (!done || Number(done[1]) > bytesDone) {
        if (done) bytesDone = Number(done[1]);
        progressed();
      }
    });
    if (run.stdout) child.stdout!.pipe(run.stdout);
    else child.stdout!.on('data', (c: Buffer) => out.push(c));
    if (run.input) {
      // An input that fails (a corrupt artifact) must fail the upload, never end it as if whole.
      pipeline(run.input, child.stdin!).catch((err: Error) => {
        failed ??= err;
        child.kill('SIGTERM');
      });
    }
    child.on('error', (err: NodeJS.ErrnoException) => {
      failed ??=
        err.code === 'ENOENT'
          ? offsiteError('restic is not installed on this machine.', 'Debian: apt-get install restic')
          : err.name === 'AbortError'
            ? new StackvaultError('Interrupted while restic ran.', ExitCode.interrupted)
            : err;
    });
    child.on('close', (code) => {
      clearTimeout(giveUp);
      if (failed) return reject(failed);
      if (code !== 0) return reject(classify(stderr, code ?? undefined));
      resolve(Buffer.concat(out).toString('utf8'));
    });
  });
}

/** At most 16 KiB of restic's stderr, its start and its end: the fatal line comes last, after any retry lines. */
export function keepEnds(text: string, half = 8_192): string {
  return text.length <= 2 * half ? text : `${text.slice(0, half)}\n…\n${text.slice(-half)}`;
}

/** restic's stderr turned into one sentence with a hint (its messages are stable across 0.14-0.18). */
export function classify(stderr: string, exitCode: number | undefined): StackvaultError {
  const repo = shownRepository();
  // From restic's last fatal line on: retry lines before it (EOF, reset) are not its verdict.
  const all = redactUrls(stderr);
  const text = all.slice(Math.max(0, all.lastIndexOf('Fatal: ')));
  if (/wrong password or no key found/i.test(text)) return offsiteError(`The restic password does not open the repository ${repo}.`, 'Check RESTIC_PASSWORD_FILE / RESTIC_PASSWORD_COMMAND.');
  // Checked before "no repository": restic asks "Is there a repository…?" after any failed open.
  if (/connection refused|no such host|dial tcp|i\/o timeout|connection reset|broken pipe|\bEOF\b|unable to connect|ssh: |Connection closed|server closed idle connection/i.test(text)) {
    return offsiteError(`The restic repository ${repo} cannot be reached: ${firstLine(text)}`, 'The local backup is kept; the next backup create --offsite tries again.');
  }
  if (/Is there a repository at the following location\?|does not exist/i.test(text)) {
    // restic's own line goes with it: if a server that is down is ever taken for "no repository",
    // the sentence shows what restic said.
    return offsiteError(`There is no restic repository at ${repo} (restic: ${firstLine(text)}).`, 'stackvault creates it on the first backup create --offsite.');
  }
  if (/repository is already locked/i.test(text)) return offsiteError(`The restic repository ${repo} is locked by another restic run.`, 'Wait for it, or run restic unlock if it died.');
  return offsiteError(`restic failed (exit ${exitCode ?? '?'}): ${firstLine(text) || 'no error output'}`);
}

const firstLine = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l && !/^(Fatal: )?$/.test(l))
    ?.replace(/^Fatal: /, '') ?? '';

/** Opens the repository, creating it if there is none yet; says which happened. */
export async function openRepository(signal?: AbortSignal): Promise<'opened' | 'created'> {
  try {
    await restic(['cat', 'config'], { signal });
    return 'opened';
  } catch (err) {
    if (!(err instanceof StackvaultError) || !/There is no restic repository/.test(err.message)) throw err;
  }
  await restic(['init'], { signal });
  return 'created';
}

export async function snapshots(tags: string[], signal?: AbortSignal): Promise<ResticSnapshot[]> {
  const out = await restic(['snapshots', '--json', '--no-lock', ...(tags.length ? ['--tag', tags.join(',')] : [])], { signal });
  return JSON.parse(out || '[]') as ResticSnapshot[];
}
