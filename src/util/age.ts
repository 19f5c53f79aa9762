import { spawn } from 'node:child_process';
import { Duplex, PassThrough } from 'node:stream';
import { ExitCode, StackvaultError } from '../errors.js';

/**
 * age (https://age-encryption.org) as a stream stage, through the `age` binary (Debian: age).
 * Recipients are public keys and may appear in argv; identities are files, passed by path.
 */
function ageStage(args: string[], what: string): Duplex {
  const child = spawn('age', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8'); // a text channel; the decoder keeps characters split across chunks
  child.stderr.on('data', (c: string) => {
    if (stderr.length < 4096) stderr += c;
  });
  // The output ends only once age has exited 0: otherwise a failure would first look like a
  // short stream to whatever reads next ("unexpected end of file" instead of age's reason).
  const output = new PassThrough();
  child.stdout.pipe(output, { end: false });
  const stage = Duplex.from({ writable: child.stdin, readable: output });
  child.stdout.on('error', (err) => stage.destroy(err)); // pipe() would drop it
  child.on('error', (err: NodeJS.ErrnoException) => {
    stage.destroy(err.code === 'ENOENT' ? new StackvaultError('Encryption needs the age tool, which is not installed.', ExitCode.failure, 'Debian: apt-get install age') : err);
  });
  child.on('close', (code) => {
    if (code === 0) output.end();
    else stage.destroy(new Error(`${what} failed: ${ageError(stderr) || `age exited ${code}`}`));
  });
  return stage;
}

export const ageEncrypt = (recipients: string[]) =>
  ageStage(
    recipients.flatMap((r) => ['-r', r]),
    'age encryption',
  );
export const ageDecrypt = (identityFile: string) => ageStage(['-d', '-i', identityFile], 'age decryption');

/** Rejects a recipient age would not accept, before any container is touched. */
export async function checkRecipient(recipient: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn('age', ['-r', recipient, '-o', '/dev/null'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c: string) => {
      stderr += c;
    });
    child.on('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'ENOENT' ? new StackvaultError('Encryption needs the age tool, which is not installed.', ExitCode.failure, 'Debian: apt-get install age') : err),
    );
    child.on('close', (code) => (code === 0 ? resolve() : reject(new StackvaultError(`--encrypt-to '${recipient}' is not a valid age recipient: ${ageError(stderr)}`, ExitCode.usage))));
    child.stdin.end();
  });
}

/** age's own sentence, without the "report unexpected errors at ..." line it adds. */
function ageError(stderr: string): string {
  const lines = stderr.trim().split('\n');
  return (lines.find((l) => /error:/.test(l)) ?? lines[0] ?? '').replace(/^age: (error: )?/, '').trim();
}
