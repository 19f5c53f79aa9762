import { userInfo } from 'node:os';
import { join } from 'node:path';
import { appendRegularFile, appendRegularFileSync, MiB, readRegularFile } from '../util/safe-file.js';
import { shown } from '../util/terminal.js';

/** "Who restored what, when": one tab-separated line per operation in the backup directory. */
export const OPLOG_FILE = 'operations.log';

export interface Operation {
  at: string;
  user: string;
  command: string;
  backupId: string;
  result: string;
  durationMs: number;
}

/** One field of a line: tabs and line breaks would split it, and no other control character is written raw either. */
const clean = (s: string) => shown(s.replace(/[\t\r\n]+/g, ' ')).slice(0, 500);

export function currentUser(): string {
  try {
    return process.env.SUDO_USER ? `${userInfo().username} (sudo by ${process.env.SUDO_USER})` : userInfo().username;
  } catch {
    return String(process.getuid?.() ?? 'unknown');
  }
}

/** An operation that ends now, by this user, with what the run knows of it. */
export const operationNow = (command: string, what: Pick<Operation, 'backupId' | 'result' | 'durationMs'>): Operation => ({
  at: new Date().toISOString(),
  user: currentUser(),
  command,
  ...what,
});

const operationLine = (op: Operation) => `${[op.at, op.user, op.command, op.backupId || '-', op.result, String(op.durationMs)].map(clean).join('\t')}\n`;

export async function appendOperation(dir: string, op: Operation): Promise<void> {
  // Never through a symlink planted in the backup directory, never waiting on a FIFO.
  await appendRegularFile(join(dir, OPLOG_FILE), operationLine(op), 0o600);
}

/** The same line, written at once: for a run that exits without unwinding (a third Ctrl-C). */
export function appendOperationSync(dir: string, op: Operation): void {
  appendRegularFileSync(join(dir, OPLOG_FILE), operationLine(op), 0o600);
}

export function parseOperations(text: string): Operation[] {
  return text
    .split('\n')
    .filter(Boolean)
    .flatMap((line) => {
      const [at, user, command, backupId, result, duration] = line.split('\t');
      if (!at || !command) return [];
      return [{ at, user: user ?? '', command, backupId: backupId === '-' ? '' : (backupId ?? ''), result: result ?? '', durationMs: Number(duration) || 0 }];
    });
}

export async function readOperations(dir: string): Promise<Operation[]> {
  return parseOperations(await readRegularFile(join(dir, OPLOG_FILE), 256 * MiB).catch(() => ''));
}
