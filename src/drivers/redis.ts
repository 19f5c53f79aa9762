import type { DockerEngine } from '../docker/engine.js';
import { concatTars } from '../util/tar-stream.js';
import { sleep } from '../util/time.js';
import { execChecked } from './exec.js';
import { keyCount, parseInfo, redisPassword, saveIsNewer, saveState } from './redis-info.js';
import type { Driver } from './types.js';

const SAVE_TIMEOUT_MS = 10 * 60_000;

/**
 * Redis: BGSAVE, wait until INFO shows a save that finished OK and started after our request,
 * then copy the RDB (and the AOF directory when AOF is on) through the archive API. The
 * password goes to redis-cli as REDISCLI_AUTH in the exec's environment, never in argv.
 */
export const redisDriver: Driver = {
  name: 'redis',
  format: 'tar',
  imageNames: ['redis', 'valkey', 'redis-stack', 'redis-stack-server'],

  secrets: (c) => [redisPassword(c.cmd, c.env)].filter((s): s is string => Boolean(s)),

  async backup({ engine, container, output, signal }) {
    const cli = redisCli(engine, container.id, redisPassword(container.cmd, container.env));
    const config = async (key: string) => (await cli('CONFIG', 'GET', key)).split('\n')[1]?.trim() ?? '';
    const dir = (await config('dir')) || '/data';
    const dbfilename = (await config('dbfilename')) || 'dump.rdb';
    const aof = (await config('appendonly')) === 'yes';
    const aofDir = aof ? (await config('appenddirname')) || 'appendonlydir' : undefined;

    await bgsaveAndWait(cli, signal);
    const keys = keyCount(parseInfo(await cli('INFO', 'keyspace')));

    const paths = [`${dir}/${dbfilename}`, ...(aofDir ? [`${dir}/${aofDir}`] : [])];
    await concatTars(paths.map((p) => () => engine.getArchive(container.id, p)), output);
    return { details: { dir, dbfilename, aofDir, keysAtBackup: keys } };
  },
};

type RedisCli = (...args: string[]) => Promise<string>;

export function redisCli(engine: DockerEngine, containerId: string, password: string | undefined): RedisCli {
  const env = password ? { REDISCLI_AUTH: password } : undefined;
  return async (...args) => {
    const out = await execChecked(engine, containerId, ['redis-cli', '--no-auth-warning', ...args], `redis-cli ${args[0]}`, { env });
    // redis-cli exits 0 on server errors; they come back as text.
    if (/^(ERR|NOAUTH|WRONGPASS|NOPERM)\b/.test(out)) throw new Error(`redis ${args[0]}: ${out.split('\n')[0]}`);
    return out;
  };
}

async function bgsaveAndWait(cli: RedisCli, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + SAVE_TIMEOUT_MS;
  const state = async () => saveState(parseInfo(await cli('INFO', 'persistence')));
  const serverSecond = async () => Number((await cli('TIME')).split('\n')[0]);
  let before;
  for (;;) {
    // A save already running started before our request: let it finish first.
    before = await state();
    if (before.inProgress) { await pause(signal, deadline); continue; }
    // LASTSAVE has 1 s resolution: send the request in a later second than the last save.
    if ((await serverSecond()) <= before.lastSaveTime) { await pause(signal, deadline, 200); continue; }
    const reply = await cli('BGSAVE').catch((err: unknown) => {
      if (/in progress/i.test(String(err))) return 'in progress';
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
