import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Transform, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadEntry } from 'tar';
import { ExitCode, integrityError, StackvaultError } from '../errors.js';
import { ageDecrypt } from '../util/age.js';
import { interruptSignal } from '../util/interrupt.js';
import { openRegularFile, UnsafeFileError } from '../util/safe-file.js';
import { TailKeeper } from '../util/tail-keeper.js';
import { TarChecker } from '../util/tar-stream.js';
import { unsafeEntry } from '../util/tar-safety.js';
import { ByteCounter, decompressor, hashStream, Sha256Tap, type Compression } from './artifact.js';
import type { ServiceEntry } from './manifest.js';
import type { StagedArtifact } from './artifact-staging.js';
import type { Driver } from '../drivers/types.js';
import { SchemaError } from '../util/schema.js';
import { mapLimit } from '../util/limit.js';

export interface ArtifactCheck {
  service: string;
  artifact: string;
  bytes: number;
  rawBytes: number;
  tarEntries?: number;
}

/**
 * Proves an artifact is the one the manifest describes and that it opens: size and SHA-256
 * of the file, a clean decompression, a complete tar without hostile entries, or a SQL dump
 * that ends with its driver's completion line (artifactEnd). Any problem is an integrity error (exit 5)
 * naming the service and what is wrong. Reads the file once.
 */
export async function checkArtifact(
  backupPath: string,
  entry: ServiceEntry,
  identity?: string,
  driver?: Pick<Driver, 'artifactEnd' | 'details'>,
  signal: AbortSignal = interruptSignal,
): Promise<ArtifactCheck> {
  const what = `${entry.name} (${entry.artifact})`;
  checkDetails(entry, driver);
  requireIdentity(entry, identity);
  const { handle, size } = await openArtifactFile(backupPath, entry);
  try {
    return await checkOpened(handle, size, entry, what, identity, driver, signal);
  } catch (err) {
    // Ctrl-C / SIGTERM mid-hash: an interruption, not a damaged artifact (nothing is recorded).
    if (signal.aborted) throw new StackvaultError(`Checking ${what} was interrupted.`, ExitCode.interrupted);
    throw err;
  } finally {
    await handle.close();
  }
}

async function checkOpened(
  handle: FileHandle,
  size: number,
  entry: ServiceEntry,
  what: string,
  identity: string | undefined,
  driver: Pick<Driver, 'artifactEnd' | 'details'> | undefined,
  signal: AbortSignal,
): Promise<ArtifactCheck> {
  if (size !== entry.bytes) throw sizeError(entry, size);

  const hasher = new Sha256Tap();
  const raw = new ByteCounter();
  let tar: TarChecker | undefined;
  const tail = new TailKeeper(); // an SQL dump's end, for its driver's completion line
  let hostile: string | undefined;
  if (entry.format === 'tar') {
    tar = new TarChecker((e: ReadEntry) => {
      const why = unsafeEntry({ path: e.path, type: e.type, linkpath: e.linkpath, size: e.size ?? 0 });
      if (why && !hostile) hostile = `entry '${e.path}': ${why}`;
    });
  }
  const content: Writable = tar ?? tail;
  if (entry.encryption) {
    // Checksum first, on its own pass: a decryption failure must not hide a corrupt file.
    if ((await hashStream(readBytes(handle, entry.bytes!, { signal }))).sha256 !== entry.sha256) throw checksumError(what);
  }
  try {
    await pipeline([readBytes(handle, entry.bytes!, { signal }), hasher, ...decryptStage(entry, identity), decompressor((entry.compression ?? 'none') as Compression), raw, content], { signal });
  } catch (err) {
    if (signal.aborted) throw err;
    if (hasher.digest && hasher.digest !== entry.sha256) throw checksumError(what);
    const message = (err as Error).message;
    if (/^age decryption failed/.test(message))
      throw integrityError(
        `The artifact of ${what} cannot be decrypted with ${identity}: ${message.replace(/^age decryption failed: /, '')}.`,
        'Is it the identity whose public key the backup was encrypted to?',
      );
    throw integrityError(`The artifact of ${what} does not open: ${message}.`);
  }
  if (hasher.digest !== entry.sha256) throw checksumError(what);
  if (hostile) throw integrityError(`The artifact of ${what} has an unsafe ${hostile}; refusing to use it.`);
  if (driver?.artifactEnd && !tail.text().includes(driver.artifactEnd.text)) throw integrityError(`The artifact of ${what} is incomplete: it lacks ${driver.artifactEnd.what}.`);
  return { service: entry.name, artifact: entry.artifact!, bytes: size, rawBytes: raw.bytes, ...(tar ? { tarEntries: tar.entries } : {}) };
}

/** An encrypted artifact cannot be opened without the identity: a usage error (exit 2), before any work starts. */
export function requireIdentity(entry: ServiceEntry, identity: string | undefined): void {
  if (entry.encryption && !identity) {
    throw new StackvaultError(
      `The artifact of ${entry.name} (${entry.artifact}) is encrypted with age; give the identity (private key) file to open it.`,
      ExitCode.usage,
      'Pass --identity FILE, or set STACKVAULT_AGE_IDENTITY.',
    );
  }
}

/** Every entry's artifact, each with its own driver's checks, one per core at a time; the first problem throws, once those started have settled. */
export async function checkArtifacts(backupPath: string, entries: readonly ServiceEntry[], identity: string | undefined, drivers: readonly Driver[]): Promise<void> {
  // One per core: hashing and decompressing are CPU (3.5 s for a 1 GB stack, one after another).
  await mapLimit(entries, availableParallelism(), (entry) =>
    checkArtifact(
      backupPath,
      entry,
      identity,
      drivers.find((d) => d.name === entry.driver),
    ),
  );
}

/**
 * What the driver recorded must be what its schema says before any driver acts on it: a
 * crafted manifest's paths, names and users reach file names, containers and commands.
 */
export function checkDetails(entry: ServiceEntry, driver: Pick<Driver, 'details'> | undefined): void {
  // No driver, no check of its record and no way to restore it: not a backup this stackvault can vouch for.
  if (!driver)
    throw integrityError(`Service '${entry.name}' uses driver '${entry.driver}', which this stackvault does not know; refusing to use it.`, 'A newer stackvault may have written this backup.');
  try {
    driver.details.parse(entry.details ?? {}, 'details');
  } catch (err) {
    if (!(err instanceof SchemaError)) throw err;
    throw integrityError(`The manifest's record of ${entry.name} is not what its ${entry.driver} driver writes: ${err.message}; refusing to use it.`);
  }
}

const checksumError = (what: string) => integrityError(`The SHA-256 of ${what} does not match the manifest: the file was changed or corrupted.`);

const decryptStage = (entry: ServiceEntry, identity: string | undefined) => (entry.encryption ? [ageDecrypt(identity!)] : []);

/**
 * The decompressed (and decrypted) content of an artifact, streamed: from the backup's file, or
 * from the restore's private copy of it (`staged`, see artifact-staging.ts). Its SHA-256 is
 * checked against the manifest on the way (see ChecksumGate): a file changed since it was
 * checked fails the stream before its end is passed on.
 */
export function openArtifact(backupPath: string, entry: ServiceEntry, identity?: string, staged?: StagedArtifact): Readable {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const what = `${entry.name} (${entry.artifact})`;
  (staged ? Promise.resolve(stagedBytes(staged)) : artifactBytes(backupPath, entry))
    .then((file) => pipeline([file, new ChecksumGate(entry.sha256, what), ...decryptStage(entry, identity), decompressor((entry.compression ?? 'none') as Compression), out]))
    .catch((err: unknown) => out.destroy(err as Error));
  return out;
}

/**
 * Passes the file's bytes on while hashing them, one chunk behind: the last chunk goes on only
 * once the whole file's SHA-256 is the manifest's, else the stream fails with an integrity
 * error. What a reader does at the end of a stream (a tar's end, a dump's last statements and
 * its completion line) thus never happens on bytes that do not match; what it did with the
 * earlier chunks is undone by the restore's rollback.
 */
class ChecksumGate extends Transform {
  private readonly hash = createHash('sha256');
  private held: Buffer | undefined;

  constructor(
    private readonly expected: string | undefined,
    private readonly what: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    const previous = this.held;
    this.held = chunk;
    cb(null, previous);
  }

  override _flush(cb: TransformCallback): void {
    if (this.hash.digest('hex') !== this.expected) return cb(checksumError(this.what));
    cb(null, this.held);
  }
}

/** The artifact's file as it is on disk, streamed: a regular file of the backup's own, of the manifest's size (else exit 5). */
export async function artifactBytes(backupPath: string, entry: ServiceEntry): Promise<Readable> {
  const { handle, size } = await openArtifactFile(backupPath, entry);
  // An empty file's stream never touches the handle: closed here, like one of the wrong size.
  if (size !== entry.bytes || size === 0) await handle.close();
  if (size !== entry.bytes) throw sizeError(entry, size);
  return readBytes(handle, size, { autoClose: true });
}

const sizeError = (entry: ServiceEntry, size: number) =>
  integrityError(`The artifact of ${entry.name} (${entry.artifact}) has ${size} bytes, the manifest says ${entry.bytes}: it was truncated or changed.`);

/**
 * The artifact's file, opened: a regular file of the backup's own or an integrity error (exit 5).
 * A symlink is refused before anything about its target is looked at (not even its size, which
 * would tell the size of any file the run can read); a FIFO or device is never opened.
 */
async function openArtifactFile(backupPath: string, entry: ServiceEntry): Promise<{ handle: FileHandle; size: number }> {
  const what = `${entry.name} (${entry.artifact})`;
  try {
    return await openRegularFile(join(backupPath, entry.artifact!));
  } catch (err) {
    if (err instanceof UnsafeFileError) throw integrityError(`The artifact of ${what} is ${err.what}, not a regular file of the backup; refusing to read it.`);
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw integrityError(`The artifact of ${what} is missing.`);
    throw integrityError(`The artifact of ${what} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}.`);
  }
}

/**
 * A staged copy's bytes, read at their own positions by reads that never close its descriptor:
 * a file stream closes its descriptor when destroyed (a reader that stops at the tar entry it
 * wanted), and one on the FileHandle left the handle's close waiting forever.
 */
function stagedBytes(staged: StagedArtifact): Readable {
  let position = 0;
  return new Readable({
    read() {
      const want = Math.min(1 << 16, staged.size - position);
      if (want <= 0) return void this.push(null);
      staged.handle.read(Buffer.allocUnsafe(want), 0, want, position).then(
        ({ bytesRead, buffer }) => {
          if (bytesRead === 0) return void this.destroy(new Error('the staged copy of the artifact ended early'));
          position += bytesRead;
          this.push(buffer.subarray(0, bytesRead));
        },
        (err: Error) => this.destroy(err),
      );
    },
  });
}

/**
 * The file's first `bytes` bytes and no more (the manifest's size: a file that grows is not read
 * on). With autoClose the stream owns the handle and closes it when it ends or is destroyed;
 * without, the caller closes it (checkArtifact reads it twice).
 */
function readBytes(handle: FileHandle, bytes: number, options: { signal?: AbortSignal; autoClose?: boolean } = {}): Readable {
  if (bytes === 0) return Readable.from([]);
  return handle.createReadStream({ start: 0, end: bytes - 1, autoClose: options.autoClose ?? false, ...(options.signal ? { signal: options.signal } : {}) });
}
