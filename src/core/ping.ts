import { realpath, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { redactForeign } from '../util/redact.js';
import { readRegularFile, writeFileAtomic } from '../util/safe-file.js';
import { shown } from '../util/terminal.js';
import { controlCharacterIn } from './cron.js';

/**
 * The healthchecks URL of a schedule holds a secret: whoever has it can report runs that never
 * happened (`https://hc-ping.com/UUID`: the UUID is the key). The crontab line is the argv of
 * cron's shell for the whole run, and every local user can list argv with `ps`; so the URL is
 * never written there. `scheduler install --ping URL` writes it into PING_FILE in the backup
 * directory (0600, created under a random name with O_EXCL and that mode, then renamed: never
 * readable by others, not even for a moment) and the line names the file (`--ping-file`); the
 * scheduled run reads it. A user can keep it in a file of their own and give `--ping-file`.
 */
export const PING_FILE = '.scheduler-ping-url';

/** The file install writes for `--ping URL` in backup directory `dir` (uninstall removes only this one). */
export const ownPingFile = (dir: string) => join(dir, PING_FILE);

/** A ping file is one URL: anything much longer is not one. */
const MAX_BYTES = 4096;

/** Why `value` is not a URL to ping (an http(s) URL with a host), without quoting it: it holds the key. */
export function pingUrlProblem(value: string): string | undefined {
  const c = controlCharacterIn(value);
  if (c) return `it holds a control character (${c})`;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || !/^https?:$/.test(url.protocol) || !url.hostname || !/^https?:\/\//i.test(value)) return 'it is not an http(s) URL with a host (https://hc-ping.com/UUID)';
  return undefined;
}

/** Where a ping URL goes, as it may be shown: scheme and host, never its path, query or user info (the key is there). */
export function pingShown(value: string): string {
  try {
    const url = new URL(value);
    return `${url.protocol}//${url.host}/…`;
  } catch {
    return '(not a URL)';
  }
}

/**
 * The URL in a ping file, or why there is none (one sentence that never quotes the file's
 * content). The file is read as a regular file (a FIFO or device is refused, not waited on); a
 * user's own file may be reached through a symlink (Docker and Kubernetes secrets are).
 */
export async function readPingFile(path: string): Promise<{ url: string } | { problem: string }> {
  const where = `the ping file ${shown(path)}`;
  let text: string;
  try {
    text = await readRegularFile(await realpath(path), MAX_BYTES);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { problem: `${where} does not exist` };
    if (code === 'EACCES') return { problem: `${where} cannot be read by this user` };
    return { problem: `${where} cannot be read (${err instanceof Error ? shown(err.message) : String(err)})` };
  }
  const url = text.trim();
  if (url === '') return { problem: `${where} is empty` };
  if (url.includes('\n')) return { problem: `${where} holds more than one line` };
  const problem = pingUrlProblem(url);
  return problem ? { problem: `${where} holds no URL to ping: ${problem}` } : { url };
}

/** Whether other users can read a file: a ping file should be the owner's alone. */
export async function readableByOthers(path: string): Promise<number | undefined> {
  const mode = (await stat(path)).mode & 0o777;
  return mode & 0o044 ? mode : undefined;
}

/**
 * Writes `url` into the backup directory's own ping file, owner-only from its first byte (see
 * writeFileAtomic). Returns how to undo it: the file's content before (or its removal).
 */
export async function writeOwnPingFile(dir: string, url: string): Promise<() => Promise<void>> {
  const file = ownPingFile(dir);
  const before = await readRegularFile(file, MAX_BYTES).catch(() => undefined);
  await writeFileAtomic(file, `${url}\n`, { mode: 0o600, fsync: true });
  return async () => {
    if (before === undefined) await rm(file, { force: true });
    else await writeFileAtomic(file, before, { mode: 0o600, fsync: true });
  };
}

/**
 * GETs `url` + suffix (healthchecks.io style: `/start`, `` for success, `/fail`). A failure is
 * a warning, said without the URL: fetch's messages can quote it (a URL with user info, one it
 * cannot parse), and its path and query hold the key.
 */
export async function sendPing(url: string, suffix: string, say: (line: string) => void): Promise<void> {
  const target = url.replace(/\/$/, '') + suffix;
  try {
    await fetch(target, { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    const said = [err, (err as { cause?: unknown })?.cause]
      .filter((e) => e !== undefined)
      .map((e) => (e instanceof Error ? e.message : String(e)))
      .join(': ');
    say(`warning: ping ${suffix || '(success)'} to ${pingShown(url)} failed: ${redactForeign(said, keyParts(target))}`);
  }
}

/** What of a ping URL is its key: the whole URL, its path, query and user info. */
function keyParts(value: string): string[] {
  try {
    const url = new URL(value);
    let decoded = url.pathname;
    try {
      decoded = decodeURIComponent(url.pathname);
    } catch {
      // not valid percent-encoding: the path as written is all there is
    }
    return [value, url.href, url.pathname.length > 1 ? url.pathname : '', decoded, url.search, url.username, url.password].filter((s) => s.length > 1);
  } catch {
    return [value];
  }
}
