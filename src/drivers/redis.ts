import { type DockerEngine, foreignText } from '../docker/engine.js';
import { PassThrough, Readable, Writable } from 'node:stream';
import { concatTars } from '../util/tar-stream.js';
import { encodeHeader, findTarEntry, type BuildEntry } from '../util/tar-build.js';
import { mountOf, parseOwner, putFiles, removeFromVolumes } from './container-files.js';
import { sleep } from '../util/time.js';
import { execChecked } from './exec.js';
import { keepRawMessage, rawMessage } from '../util/redact.js';
import { expiringKeyCount, keyCount, keyCountProblem, parseInfo, rdbOnDisk, redisPassword, type SaveState, saveIsNewer, saveState } from './redis-info.js';
import type { Driver } from './types.js';
import { recorded } from './details.js';
import { count, type Infer, object, optional, string } from '../util/schema.js';
import { isServer } from './recognise.js';
import { type RedisScanner, redisFingerprint, redisFingerprintAt } from './redis-fingerprint.js';
import { finished, writeWithRoom } from '../util/backpressure.js';
import { type Fingerprint, firstDifference } from './fingerprint.js';
import { rdbFingerprint } from './redis-rdb.js';
import { answerMarker, openSession } from '../docker/command-session.js';
import { StoreRefusedError } from '../errors.js';

const SAVE_TIMEOUT_MS = 10 * 60_000;

/**
 * Redis: BGSAVE, wait until INFO shows a save that finished OK and started after our request,
 * then copy the RDB (opened first, then read: see openedFileTar) and the AOF directory when
 * AOF is on (through the archive API). The
 * password goes to redis-cli as REDISCLI_AUTH in the exec's environment, never in argv.
 */
const SIGNS = {
  images: ['redis', 'valkey', 'redis-stack', 'redis-stack-server'],
  env: ['REDIS_VERSION', 'VALKEY_VERSION'],
  binaries: ['redis-server', 'valkey-server', 'redis-stack-server'],
};

/** Where the server kept its RDB (and AOF), and how many keys it held at the backup. */
const DETAILS = object({
  dir: optional(string),
  dbfilename: optional(string),
  aofDir: optional(string),
  aofFile: optional(string),
  keysAtBackup: optional(count),
  /** Of keysAtBackup, those with an expiry (they may be gone when the RDB is loaded later). */
  expiringAtBackup: optional(count),
});

/**
 * BGSAVE's refusals while another save or an AOF rewrite runs: "Background save already in
 * progress", and during a rewrite "Another child process is active (AOF?): can't BGSAVE right
 * now". Both mean: ask again shortly.
 */
const SAVE_BUSY = /in progress|another child process is active/i;
/**
 * Where the running server keeps its files and as whom it runs, read before anything changes:
 * the restore writes there as that user, and a rollback uses what was read for the restore
 * point rather than ask a server that the failed restore may have left unable to start.
 */
interface RedisFiles {
  dir: string;
  dbfilename: string;
  aofOn: boolean;
  aofDirName: string;
  aofFile: string;
  owner: { uid: number; gid: number };
}

export const redisDriver: Driver<Infer<typeof DETAILS>, RedisFiles> = {
  details: DETAILS,
  name: 'redis',
  format: 'tar',
  // checkRestore passes the RDB to redis-check-rdb, and restore reads it again (up to three
  // times): both must read the same bytes, or a file swapped in between is what Redis runs.
  stageArtifact: true,
  imageNames: SIGNS.images,
  recognise: (c) => isServer(c, SIGNS),

  secrets: (c) => [redisPassword(c.cmd, c.env)].filter((s): s is string => Boolean(s)),

  async backup({ engine, container, output, signal }) {
    const { cli, close } = redisSession(engine, container.id, redisPassword(container.cmd, container.env), signal);
    try {
      const config = await readConfig(cli);
      await bgsaveAndWait(cli, signal);
      return await copySaved(engine, container.id, cli, config, output, { signal });
    } finally {
      await close();
    }
  },

  /**
   * Consistent backups: the BGSAVE's fork is the point. Inside the window only the BGSAVE is
   * sent (its reply comes once the child is forked); the save finishes and the RDB is copied
   * after it. Just after the reply, Redis's count of saves (counted as they start, one at a
   * time) says which save is ours; the RDB is copied only if ours is the last one finished when
   * the file is opened, else an automatic save has replaced it and the service fails. Without
   * the count (Redis < 7) the first state without a save in progress is taken as ours.
   */
  async prepareSnapshot({ engine, container, signal }) {
    const { cli, close } = redisSession(engine, container.id, redisPassword(container.cmd, container.env), signal);
    let config: Awaited<ReturnType<typeof readConfig>>;
    const deadline = Date.now() + SAVE_TIMEOUT_MS;
    const persistence = async () => saveState(parseInfo(await cli('INFO', 'persistence')));
    try {
      config = await readConfig(cli);
      // A save that runs now started before the point: it ends before the window, not in it.
      while ((await persistence()).inProgress) await pause(signal, deadline);
    } catch (err) {
      await close();
      throw err;
    }
    let afterStart: Promise<SaveState> | undefined;
    return {
      async fix() {
        for (;;) {
          const reply = await cli('BGSAVE').catch((err: unknown) => {
            if (SAVE_BUSY.test(rawMessage(err))) return 'in progress';
            throw err;
          });
          if (/Background saving started/i.test(reply)) break;
          await pause(signal, deadline, 20); // an automatic save or an AOF rewrite got in first: ask again
        }
        // Asked now (answered in a millisecond, while ours still runs): which save is ours.
        afterStart = persistence();
        afterStart.catch(() => undefined); // awaited in backup
      },
      async backup(output) {
        if (!afterStart) throw new Error('the snapshot point was not fixed');
        const atStart = await afterStart;
        const replaced = "another save ended after the consistent point's and replaced its RDB before it was opened (an automatic save?); run the backup again";
        const judge = (s: SaveState) => rdbOnDisk(atStart, s);
        let ours: SaveState;
        for (;;) {
          ours = await persistence();
          const verdict = judge(ours);
          if (verdict === 'ours') break;
          if (verdict === 'replaced') throw new Error(replaced);
          await pause(signal, deadline);
        }
        if (!ours.lastStatusOk) throw new Error('Redis reported that the background save failed (rdb_last_bgsave_status:err); check its disk space and logs');
        // Once the RDB is open, a later save (an automatic one) renames a new file over the
        // name but cannot change what is read: only a save that ended before the open could.
        const stillOurs = async () => {
          const now = await persistence();
          // The count misses saves Redis does not count (FLUSHALL's, a replica's full sync): their time shows them.
          if (judge(now) !== 'ours' || now.lastSaveTime !== ours.lastSaveTime) throw new Error(replaced);
        };
        return await copySaved(engine, container.id, cli, config, output, { opened: stillOurs, signal });
      },
      release: close,
    };
  },

  /**
   * Redis's own checker reads the backup's RDB in the running server's container (from stdin:
   * nothing is written there) and must end exactly at the RDB's last byte. With AOF on, the RDB
   * becomes the AOF's base, and Redis runs whatever follows an RDB's end as commands: a crafted
   * backup could hide `CONFIG SET dir` and `SAVE` there. A corrupt RDB is refused here too,
   * before the server is stopped.
   */
  async checkRestore({ engine, container, entry, open }) {
    const rdb = await findTarEntry(open(), rdbNameOf(entry));
    const r = await engine.exec(container.id, ['sh', '-c', 'exec "$(command -v redis-check-rdb || command -v valkey-check-rdb)" /dev/stdin'], { stdin: rdb.stream });
    const end = /\[offset (\d+)\] \\o\/ RDB looks OK/.exec(r.stdout)?.[1];
    if (r.exitCode !== 0 || end === undefined) {
      // An RDB written by a newer server than this one (Redis 7's into Redis 6): the backup is
      // sound, this server is too old for it. Said so, not as damage.
      const version = /Can't handle RDB format version (\d+)/.exec(r.stdout)?.[1];
      if (version !== undefined) {
        throw new Error(
          `its RDB is format version ${version}, written by a newer server (the backup came from ${entry.image ?? 'an unrecorded image'}) than ${container.image} can load; restore it into a server at least as new as the backed-up one`,
        );
      }
      // The checker names the problem on the line after its banner.
      const lines = r.stdout.split('\n').map((l) => l.trim());
      const banner = lines.indexOf('--- RDB ERROR DETECTED ---');
      const detail = banner >= 0 ? lines[banner + 1]?.replace(/^\[offset \d+\] /, '') : undefined;
      const why = detail || (lines.find((l) => /error|invalid|unexpected|wrong/i.test(l)) ?? `exit ${r.exitCode}`);
      throw new Error(`the backup's RDB does not pass Redis's own check (redis-check-rdb: ${foreignText(engine, why)})`);
    }
    if (Number(end) !== rdb.size) throw new Error(`the backup's RDB carries ${rdb.size - Number(end)} bytes after its end, which Redis would run as commands; it is not restored`);
    // One redis-cli for the questions below (an exec each cost 0.2-0.3 s a restore here).
    const { cli, close } = redisSession(engine, container.id, redisPassword(container.cmd, container.env), new AbortController().signal);
    try {
      // A server configured for fewer databases than the RDB uses exits at start ("Data file was
      // created with a Redis server configured to handle more than N databases"): a `databases`
      // lowered since the backup would leave it down until the restore point is put back.
      const highest = Math.max(-1, ...[...r.stdout.matchAll(/Selecting DB ID (\d+)/g)].map((m) => Number(m[1])));
      if (highest > 0) {
        const databases = Number((await cli('CONFIG', 'GET', 'databases')).split('\n')[1]);
        if (Number.isInteger(databases) && highest >= databases) {
          throw new Error(
            `its RDB holds keys in database ${highest} and ${container.name} is configured for ${databases} databases (0 to ${databases - 1}), so Redis would refuse to start on it; restore it into a server with databases set to at least ${highest + 1}`,
          );
        }
      }
      return await serverFiles(engine, container.id, cli);
    } finally {
      await close();
    }
  },

  /**
   * The RDB is the consistent point (the AOF directory was copied while Redis appended to it),
   * so the restore brings Redis up on the RDB. With AOF on, Redis ignores dump.rdb and loads
   * its AOF directory instead, so the directory is written too: a manifest whose base file
   * IS the RDB (Redis 7 multi-part AOF), or for Redis < 7 the RDB as the single AOF file
   * (an RDB-preamble AOF).
   */
  async restore({ engine, container, entry, open, withStopped, log, checked }) {
    const cli = redisCli(engine, container.id, redisPassword(container.cmd, container.env));
    const { dir, dbfilename, aofOn, aofDirName: aofDir, aofFile, owner } = checked ?? (await serverFiles(engine, container.id, cli));
    const sourceName = rdbNameOf(entry);
    const rdb = async () => (await findTarEntry(open(), sourceName)).stream;
    const { size } = await findTarEntry(open(), sourceName).then((e) => {
      e.close();
      return e;
    });
    const file = (path: string, bytes: number, content?: () => Promise<Readable>) => ({ path, size: bytes, ...owner, mode: 0o644, open: content });

    const entries: BuildEntry[] = [file(dbfilename, size, rdb)];
    const remove = [`${dir}/${dbfilename}`];
    if (aofOn && aofDir) {
      const base = `${aofFile}.1.base.rdb`;
      const manifest = Buffer.from(`file ${base} seq 1 type b\nfile ${aofFile}.1.incr.aof seq 1 type i\n`);
      entries.push(
        { path: aofDir, size: 0, ...owner, mode: 0o755, type: 'Directory' },
        file(`${aofDir}/${base}`, size, rdb),
        file(`${aofDir}/${aofFile}.1.incr.aof`, 0),
        file(`${aofDir}/${aofFile}.manifest`, manifest.length, async () => Readable.from([manifest])),
      );
      remove.push(`${dir}/${aofDir}`);
    } else if (aofOn) {
      entries.push(file(aofFile, size, rdb));
      remove.push(`${dir}/${aofFile}`);
    }
    const replace = () =>
      withStopped(async () => {
        if (mountOf(container, dir)) await removeFromVolumes(engine, container, remove, 'paths');
        else log(`${dir} is not on a volume: old files there are overwritten, not removed`);
        await putFiles(engine, container.id, dir, entries);
      });
    // Not running: the restore point is put back after a failed restore left the server unable
    // to start (a cut-off RDB on a full disk). Nothing can be asked of it, nor saved by it.
    await (container.running ? withoutFinalSave(cli, replace, log) : replace());
  },

  async plan(engine, container) {
    const cli = redisCli(engine, container.id, redisPassword(container.cmd, container.env));
    const config = await readConfig(cli);
    const { dir, dbfilename } = config;
    const aof = aofPath(config);
    const used = Number(parseInfo(await cli('INFO', 'memory')).used_memory_dataset ?? NaN);
    return {
      method: `BGSAVE, then copy ${dbfilename} from the file opened in the container${aof ? ', and the AOF through the archive API' : ''}`,
      interrupts: 'online',
      paths: [`${dir}/${dbfilename}`, ...(aof ? [`${dir}/${aof}`] : [])],
      ...(Number.isFinite(used) ? { estimatedBytes: used } : {}),
    };
  },

  throwaway: () => ({}),

  /**
   * Loads the RDB into a fresh server; its keys must be those seen at backup time, less any
   * that expired since, and what it serves must be what the RDB read on the host holds (two
   * readers that share nothing) and what was recorded.
   */
  async deepVerify(ctx) {
    const onHost = hostFingerprint(ctx.open(), ctx.entry, ctx.signal); // read while the throwaway starts
    onHost.catch(() => undefined); // awaited in the check
    return ctx.inThrowaway({}, async (container) => {
      const cli = redisCli(ctx.engine, container.id, undefined);
      const info = parseInfo(await cli('INFO', 'keyspace'));
      const keys = keyCount(info);
      const { keysAtBackup: expected, expiringAtBackup } = recorded(DETAILS, ctx.entry);
      const problem = expected !== undefined ? keyCountProblem({ keys: expected, expiring: expiringAtBackup }, { keys, expiring: expiringKeyCount(info) }) : undefined;
      if (problem) throw new Error(problem);
      const loaded = await serverFingerprint(ctx.engine, container.id, undefined);
      ctx.fingerprinted?.(loaded);
      // The recorded fingerprint against the loaded copy, as both must hold now (keys expire). One
      // of an older method cannot be compared (undefined): verify records the new one instead.
      const now = new Date();
      const backedUp = ctx.entry.fingerprint && redisFingerprintAt(ctx.entry.fingerprint, now, loaded);
      const difference = backedUp ? firstDifference(backedUp, redisFingerprintAt(loaded, now, ctx.entry.fingerprint)!) : undefined;
      if (difference) throw new Error(`the loaded copy does not hold the backup's content: ${difference}`);
      const { fingerprint: read, notRead } = await onHost;
      const misread = read && firstDifference(redisFingerprintAt(read, now, loaded)!, redisFingerprintAt(loaded, now, read)!);
      if (misread) throw new Error(`the server loaded other content than the RDB holds as read on the host: ${misread}`);
      return { keys, ...(expected !== undefined ? { keysAtBackup: expected } : {}), rdbReadOnHost: read ? 'same content as the server loaded' : `not read (${notRead})` };
    });
  },

  /**
   * The RDB read on the host (redis-rdb.ts), in a restore once Redis runs again (beside the
   * read of the live server, not slowing the upload while it is down). One it cannot read (a
   * module's type, a key past its limits) is loaded into a throwaway server instead and read
   * key by key through it.
   */
  artifactFingerprint: async (ctx) => {
    await ctx.storeRunning;
    return (await hostFingerprint(ctx.open(), ctx.entry, ctx.signal)).fingerprint ?? ctx.inThrowaway({}, (container) => serverFingerprint(ctx.engine, container.id, undefined));
  },

  fingerprintAt: redisFingerprintAt,

  liveFingerprint: ({ engine, container }) => serverFingerprint(engine, container.id, redisPassword(container.cmd, container.env)),

  async ready(engine, container) {
    const r = await engine.exec(container.id, ['redis-cli', '--no-auth-warning', 'PING'], { env: authEnv(redisPassword(container.cmd, container.env)) });
    return r.exitCode === 0 && r.stdout.trim() === 'PONG';
  },
};

/**
 * The backup's RDB read on the host, as the Lua reads a server; `notRead` says why not when it
 * holds what only a server reads (module types, a key past this reader's limits) or what this
 * reader takes as not well formed: the server then decides.
 */
async function hostFingerprint(artifact: Readable, entry: { details?: Record<string, unknown> }, signal: AbortSignal): Promise<{ fingerprint?: Fingerprint; notRead?: string }> {
  const rdb = await findTarEntry(artifact, rdbNameOf(entry), signal);
  try {
    return { fingerprint: await rdbFingerprint(rdb.stream, rdb.size) };
  } catch (err) {
    if (signal.aborted) throw err;
    return { notRead: (err as Error).message };
  } finally {
    rdb.close();
  }
}

/** Copies the RDB a finished save left (and the AOF, when on) into `output`; `opened` runs once the RDB is open, before it is read. */
async function copySaved(
  engine: DockerEngine,
  containerId: string,
  cli: RedisCli,
  config: Awaited<ReturnType<typeof readConfig>>,
  output: Writable,
  options: { opened?: () => Promise<void>; signal: AbortSignal },
) {
  const { dir, dbfilename } = config;
  const aof = aofPath(config);
  // The key count is exact only if nothing changed since the snapshot; else it is left out.
  const info = parseInfo(await cli('INFO'));
  const unchanged = info.rdb_changes_since_last_save === '0';
  await concatTars([async () => openedFileTar(engine, containerId, `${dir}/${dbfilename}`, dbfilename, options), ...(aof ? [() => engine.getArchive(containerId, `${dir}/${aof}`)] : [])], output);
  const aofDetail = config.aofDirName ? { aofDir: aof } : { aofFile: aof };
  return { details: { dir, dbfilename, ...(aof ? aofDetail : {}), ...(unchanged ? { keysAtBackup: keyCount(info), expiringAtBackup: expiringKeyCount(info) } : {}) } };
}

/**
 * Opens the file in the container and holds it open, reads its size, owner and mode from the
 * open file, runs `opened`, and only then reads its bytes: a tar of that one file, as the
 * archive API would give it. Unlike the archive API, which opens the file when its turn comes,
 * the bytes read are those of the file that was there at the open, whatever is renamed over it.
 */
const OPEN_THEN_READ = 'exec 3< "$1" || exit 3; stat -L -c "%s %a %u %g %Y" /proc/self/fd/3 || exit 4; read -r go; [ "$go" = go ] || exit 5; exec cat <&3';

function openedFileTar(engine: DockerEngine, containerId: string, path: string, name: string, options: { opened?: () => Promise<void>; signal: AbortSignal }): Readable {
  const tar = new PassThrough();
  const go = new PassThrough();
  // A failure here (the check, the facts, the output) kills the command: it reads nothing more.
  const stop = new AbortController();
  let failure: Error | undefined;
  const fail = (err: Error) => {
    failure ??= err;
    stop.abort(err);
  };
  let facts = Buffer.alloc(0);
  let size: number | undefined;
  let read = 0;
  // Its write callbacks never carry an error (an 'error' on it would have no listener): failures go through `fail`.
  const passOn = (chunk: Buffer, cb: () => void) =>
    writeWithRoom(tar, chunk, (err) => {
      if (err) fail(err);
      cb();
    });
  const stdout = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (failure) return cb();
      if (size !== undefined) {
        read += chunk.length;
        return passOn(chunk, cb);
      }
      facts = Buffer.concat([facts, chunk]);
      const end = facts.indexOf(10);
      if (end < 0) {
        if (facts.length > 256) fail(new Error(`unexpected answer while opening ${path}`));
        return cb();
      }
      const line = facts.subarray(0, end).toString('latin1').trim();
      const [bytes, mode, uid, gid, mtime] = line.split(' ').map(Number);
      if (![bytes, mode, uid, gid, mtime].every((n) => Number.isInteger(n))) {
        fail(new Error(`unexpected facts of ${path}: ${line}`));
        return cb();
      }
      const rest = facts.subarray(end + 1);
      (options.opened ?? (async () => undefined))().then(
        () => {
          size = bytes!;
          go.end('go\n');
          const header = encodeHeader({ path: name, type: 'File', size, mode: Number.parseInt(String(mode), 8), uid: uid!, gid: gid!, mtime: new Date(mtime! * 1000) });
          passOn(header, () => {
            if (failure || rest.length === 0) return cb();
            read += rest.length;
            passOn(rest, cb);
          });
        },
        (err: Error) => {
          fail(err); // the command is killed before it reads a byte
          cb();
        },
      );
    },
  });
  engine
    .exec(containerId, ['sh', '-c', OPEN_THEN_READ, 'sh', path], { stdin: go, stdout, user: '0', signal: AbortSignal.any([options.signal, stop.signal]) })
    .then(async (r) => {
      await finished(stdout);
      if (failure) throw failure;
      if (r.exitCode !== 0 || size === undefined) throw new Error(`reading ${path} in the container failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n')[0] || 'no error output'}`);
      if (read !== size) throw new Error(`${path} gave ${read} bytes where its open file held ${size}`);
      const pad = (512 - (size % 512)) % 512;
      tar.end(Buffer.alloc(pad + 1024));
    })
    .catch((err: unknown) => tar.destroy(failure ?? (err instanceof Error ? err : new Error(String(err)))));
  return tar;
}

/** The RDB's name in the artifact. */
const rdbNameOf = (entry: { details?: Record<string, unknown> }) => recorded(DETAILS, entry).dbfilename ?? 'dump.rdb';

const authEnv = (password: string | undefined) => (password ? { REDISCLI_AUTH: password } : undefined);

type RedisCli = (...args: string[]) => Promise<string>;

/** Where this server keeps its files (CONFIG GET), with Redis' defaults when a key is empty. */
async function readConfig(cli: RedisCli) {
  const get = async (key: string) => (await cli('CONFIG', 'GET', key)).split('\n')[1]?.trim() ?? '';
  return {
    dir: (await get('dir')) || '/data',
    dbfilename: (await get('dbfilename')) || 'dump.rdb',
    aofOn: (await get('appendonly')) === 'yes',
    /** Empty before Redis 7 (a single AOF file instead of a directory). */
    aofDirName: await get('appenddirname'),
    aofFile: (await get('appendfilename')) || 'appendonly.aof',
  };
}

/**
 * Where the server keeps its files, and the user it runs as, who must be able to open them: the
 * data directory's owner is not always that user (a `dir` such as /tmp, owned by root, or a bind
 * mount owned by a host user with the server run as `user: 999:999`), and a restored AOF the
 * server cannot open for writing stops it at start. Read from the server process's own status
 * (its file-system uid and gid); the directory's owner only when that cannot be read.
 */
async function serverFiles(engine: DockerEngine, containerId: string, cli: RedisCli): Promise<RedisFiles> {
  const config = await readConfig(cli);
  const pid = parseInfo(await cli('INFO', 'server')).process_id ?? '';
  const status = /^\d+$/.test(pid) ? await engine.exec(containerId, ['cat', `/proc/${pid}/status`]) : undefined;
  const fsId = (name: string) => (status?.exitCode === 0 ? new RegExp(`^${name}:\\s+\\d+\\s+\\d+\\s+\\d+\\s+(\\d+)`, 'm').exec(status.stdout)?.[1] : undefined);
  const [uid, gid] = [fsId('Uid'), fsId('Gid')];
  const owner =
    uid !== undefined && gid !== undefined
      ? { uid: Number(uid), gid: Number(gid) }
      : (parseOwner(await execChecked(engine, containerId, ['stat', '-c', '%u:%g', config.dir], `stat ${config.dir}`)) ?? { uid: 0, gid: 0 });
  return { ...config, owner };
}

/** The AOF's name in the data directory when AOF is on: a directory from Redis 7, one file before. */
function aofPath(config: Awaited<ReturnType<typeof readConfig>>): string | undefined {
  if (!config.aofOn) return undefined;
  return config.aofDirName || config.aofFile;
}

/** The fingerprint of what a running server holds, read key by key through its Lua (redis-fingerprint.ts). */
function serverFingerprint(engine: DockerEngine, containerId: string, password: string | undefined): Promise<Fingerprint> {
  return redisFingerprint(redisCli(engine, containerId, password), redisScanner(engine, containerId, password));
}

/** Runs a loop of the fingerprint's scripts (redis-fingerprint.ts) in the container, lines streamed to `onLine`. */
function redisScanner(engine: DockerEngine, containerId: string, password: string | undefined): RedisScanner {
  return async (loop, args, onLine) => {
    const lines = lineSplitter(onLine);
    const r = await engine.exec(containerId, ['sh', '-c', loop, 'sh', ...args], { env: authEnv(password), stdout: lines });
    await finished(lines);
    if (r.exitCode !== 0) throw new Error(`reading Redis key by key failed: ${r.stderr.trim().split('\n').pop() || `exit ${r.exitCode}`}`);
  };
}

/** A Writable that cuts a text stream of short ASCII lines (hex keys, digests) into lines. */
function lineSplitter(onLine: (line: string) => void): Writable {
  let rest = '';
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      const lines = (rest + chunk.toString('latin1')).split('\n');
      rest = lines.pop()!;
      for (const l of lines) onLine(l);
      cb();
    },
    final(cb) {
      if (rest) onLine(rest);
      cb();
    },
  });
}

/**
 * A server error as redis-cli prints it (it exits 0, or goes on, on those). BUSY (another
 * client's script holds the server), LOADING and MASTERDOWN are refusals too: read as an answer,
 * INFO keyspace said no keys (a content check then found every key missing) and CONFIG GET no
 * directory (Redis's default taken instead).
 */
const SERVER_ERROR = /^(ERR|NOAUTH|WRONGPASS|NOPERM|BUSY|LOADING|MASTERDOWN)\b/;

/**
 * A line of redis-cli's output that refuses a request whatever it was, the ECHO after it
 * included: the server's error code, a space and its message. The space is required: an
 * answer's lines may begin with those words too (CONFIG GET prints each value on a line of its
 * own, and BUSY.rdb or LOADING.aof are valid file names).
 */
const REFUSAL_LINE = /^(BUSY|LOADING|MASTERDOWN) /;

/** The server's error for a request: its first line, secrets hidden (the reply as it was kept for SAVE_BUSY). */
const serverError = (engine: DockerEngine, args: string[], out: string) => {
  const message = `redis ${args[0]}: ${foreignText(engine, out.split('\n')[0]!, args)}`;
  return keepRawMessage(REFUSAL_LINE.test(out) ? new StoreRefusedError(message) : new Error(message), out);
};

/**
 * One redis-cli kept running for a whole backup: a BGSAVE inside a consistency window is then
 * the fork alone, not a `docker exec` (0.1-0.6 s on a busy machine), and waiting for a save
 * polls INFO cheaply. Each command is followed by an ECHO of a random marker that ends its
 * answer; redis-cli prints connection failures on stderr and goes on, so stderr fails it.
 *
 * A server that refuses everything (BUSY while another client's script runs past its
 * threshold, LOADING, MASTERDOWN) refuses the ECHO too: the marker never came, and a backup
 * waited for it for ever. A refusal line ends the answer and fails the request with the
 * server's words; the session, out of step, is replaced by a new one for the next request.
 */
export function redisSession(engine: DockerEngine, containerId: string, password: string | undefined, signal: AbortSignal): { cli: RedisCli; close(): Promise<void> } {
  const env = authEnv(password);
  const start = () => openSession(engine, containerId, ['redis-cli', '--no-auth-warning'], { ...(env ? { env } : {}), signal, stderrFails: true, label: 'redis-cli' });
  let session = start();
  const retired: Array<Promise<number>> = [];
  const cli: RedisCli = async (...args) => {
    // Only our own fixed words go in: redis-cli splits a line on spaces and reads quotes.
    if (!args.every((a) => /^[A-Za-z0-9_.*-]+$/.test(a))) throw new Error(`not a plain redis-cli request: ${args.join(' ')}`);
    const marker = answerMarker();
    session.send(`${args.join(' ')}\nECHO ${marker}\n`);
    const { answer, line } = await session.readUntilOr(`${marker}\n`, REFUSAL_LINE);
    if (line !== undefined) {
      retired.push(session.close().catch(() => -1));
      session = start();
      throw serverError(engine, args, line);
    }
    const out = answer.toString('utf8').trim();
    if (SERVER_ERROR.test(out)) throw serverError(engine, args, out);
    return out;
  };
  return {
    cli,
    close: async () => {
      await Promise.all([session.close(), ...retired]);
    },
  };
}

export function redisCli(engine: DockerEngine, containerId: string, password: string | undefined): RedisCli {
  const env = authEnv(password);
  return async (...args) => {
    const out = await execChecked(engine, containerId, ['redis-cli', '--no-auth-warning', ...args], `redis-cli ${args[0]}`, { env });
    // redis-cli exits 0 on server errors; they come back as text.
    if (SERVER_ERROR.test(out)) throw serverError(engine, args, out);
    return out;
  };
}

/**
 * Runs `work` (which stops the server) with the server's save points off. Redis saves its whole
 * dataset when it is stopped: for a big one that takes longer than Docker's stop timeout, so
 * it was killed in the middle (leaving a half-written temp RDB in its directory), only for
 * that data to be overwritten by the restore; the restore point already holds it. The restart
 * brings its configured save points back; if the work failed, they are also set back here, in
 * case it never stopped.
 */
async function withoutFinalSave<T>(cli: RedisCli, work: () => Promise<T>, log: (message: string) => void): Promise<T> {
  // A server that does not answer (a failed restore left it unable to start, and this puts the
  // restore point back) saves nothing on the way down: it is stopped as it is.
  const savePoints = await cli('CONFIG', 'GET', 'save').then(
    (out) => out.split('\n')[1]?.trim() ?? '',
    (err: unknown) => {
      log(`it does not answer (${(err as Error).message}), so it is stopped as it is`);
      return '';
    },
  );
  if (!savePoints) return work();
  const off = await cli('CONFIG', 'SET', 'save', '').then(
    () => true,
    (err: unknown) => {
      // An ACL that allows CONFIG GET but not SET: it is stopped as before, saving on the way down.
      log(`its save points could not be turned off for the stop (${(err as Error).message}), so it saves its data first; a big dataset may be killed at Docker's stop timeout`);
      return false;
    },
  );
  if (!off) return work();
  try {
    return await work();
  } catch (err) {
    await cli('CONFIG', 'SET', 'save', savePoints).catch(() => undefined); // down: it comes back with them
    throw err;
  }
}

async function bgsaveAndWait(cli: RedisCli, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + SAVE_TIMEOUT_MS;
  const state = async () => saveState(parseInfo(await cli('INFO', 'persistence')));
  const serverSecond = async () => Number((await cli('TIME')).split('\n')[0]);
  let before: Awaited<ReturnType<typeof state>>;
  for (;;) {
    // A save already running started before our request: let it finish first.
    before = await state();
    if (before.inProgress) {
      await pause(signal, deadline);
      continue;
    }
    // LASTSAVE has 1 s resolution: send the request in a later second than the last save.
    if ((await serverSecond()) <= before.lastSaveTime) {
      await pause(signal, deadline, 200);
      continue;
    }
    const reply = await cli('BGSAVE').catch((err: unknown) => {
      if (SAVE_BUSY.test(rawMessage(err))) return 'in progress';
      throw err;
    });
    if (!/in progress/i.test(reply)) break; // "Background saving started"
    await pause(signal, deadline); // another save or an AOF rewrite got in first: ask again
  }
  for (;;) {
    const now = await state();
    if (saveIsNewer(before, now)) {
      if (!now.lastStatusOk) throw new Error('Redis reported that the background save failed (rdb_last_bgsave_status:err); check its disk space and logs');
      return;
    }
    await pause(signal, deadline);
  }
}

async function pause(signal: AbortSignal, deadline: number, ms = 100): Promise<void> {
  if (Date.now() > deadline) throw new Error('timed out waiting for Redis to finish BGSAVE');
  await sleep(ms, signal);
}
