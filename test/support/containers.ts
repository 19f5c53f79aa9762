import Docker from 'dockerode';
import { GenericContainer, type StartedNetwork, Wait, type StartedTestContainer } from 'testcontainers';
import { randomBytes } from 'node:crypto';
import { IMAGES } from './images.js';

/** A unique Compose-like project per test file, so discovery sees only that file's containers. */
export const newProjectName = (prefix: string) => `svt-${prefix}-${randomBytes(3).toString('hex')}`;

const composeLabels = (project: string, service: string) => ({
  'com.docker.compose.project': project,
  'com.docker.compose.service': service,
});

export interface StartOptions {
  project: string;
  service?: string;
  labels?: Record<string, string>;
  /** Host files or directories copied in before the container starts (e.g. restored data). */
  files?: Array<{ source: string; target: string }>;
  directories?: Array<{ source: string; target: string }>;
  /**
   * A user-defined network on which the container is reached by its service name. Other
   * containers that talk to a store that stackvault stops need it: a container started again
   * may get another address on the default bridge (one that another test's container took).
   */
  network?: StartedNetwork;
}

/** Applies the options every helper shares. */
function base(image: string, o: StartOptions, service: string): GenericContainer {
  let c = new GenericContainer(image).withLabels({ ...composeLabels(o.project, o.service ?? service), ...o.labels });
  if (o.files) c = c.withCopyFilesToContainer(o.files);
  if (o.directories) c = c.withCopyDirectoriesToContainer(o.directories);
  if (o.network) c = c.withNetwork(o.network).withNetworkAliases(o.service ?? service);
  return c;
}

export const PG_SUPERUSER = 'botadmin';
export const PG_PASSWORD = 'pg-Secret-4242';
export const REDIS_PASSWORD = 'redis-Secret-4242';
export const NEO4J_PASSWORD = 'neo4j-Secret-4242';

/** `initdbArgs`: POSTGRES_INITDB_ARGS (e.g. a cluster in another encoding); `command`: the server's, as a compose `command:` (e.g. `postgres -c ...`). */
export function startPostgres(o: StartOptions & { initdbArgs?: string; command?: string[] }, image: string = IMAGES.postgres): Promise<StartedTestContainer> {
  const c = base(image, o, 'postgres');
  return (o.command ? c.withCommand(o.command) : c)
    .withEnvironment({ POSTGRES_USER: PG_SUPERUSER, POSTGRES_PASSWORD: PG_PASSWORD, POSTGRES_DB: 'bot', ...(o.initdbArgs ? { POSTGRES_INITDB_ARGS: o.initdbArgs } : {}) })
    .withWaitStrategy(Wait.forSuccessfulCommand(`pg_isready -U ${PG_SUPERUSER} -d bot`))
    .start();
}

/**
 * The local postgres image plus PostgreSQL's regression suite (test/support/pg-regress.ts). Its
 * image name says nothing about Postgres, so the driver label picks the driver, as a user would.
 */
export const startPgRegress = (o: StartOptions) => startPostgres({ ...o, labels: { 'stackvault.driver': 'postgres', ...o.labels } }, IMAGES.pgRegress);

export function startRedis(o: StartOptions & { appendonly?: boolean; password?: boolean; args?: string[] }): Promise<StartedTestContainer> {
  const cmd = ['redis-server', ...(o.args ?? [])];
  if (o.password !== false) cmd.push('--requirepass', REDIS_PASSWORD);
  if (o.appendonly) cmd.push('--appendonly', 'yes');
  // The password reaches redis-cli through the container's environment, as in compose/, so no
  // command line the tests run ever carries it (the secrets test watches every process).
  return base(IMAGES.redis, o, 'redis')
    .withCommand(cmd)
    .withEnvironment(o.password === false ? {} : { REDISCLI_AUTH: REDIS_PASSWORD })
    .withWaitStrategy(Wait.forSuccessfulCommand('redis-cli ping'))
    .start();
}

export function startChroma(o: StartOptions): Promise<StartedTestContainer> {
  return base(IMAGES.chroma, o, 'chroma').withExposedPorts(8000).withWaitStrategy(Wait.forHealthCheck()).start();
}

/**
 * Chroma as many real compose files lay it out: its volume (here a bind of `volume`) at
 * /chroma/chroma, where 0.x kept its data, while Chroma 1.x persists to /data, on the
 * container's own layer. As service `chromadb` of `project`.
 */
export function startChromaOldLayout(project: string, volume: string): Promise<StartedTestContainer> {
  return new GenericContainer(IMAGES.chroma)
    .withLabels(composeLabels(project, 'chromadb'))
    .withBindMounts([{ source: volume, target: '/chroma/chroma' }])
    .withExposedPorts(8000)
    .withWaitStrategy(Wait.forHealthCheck())
    .start();
}

/** Calls `call` until it answers (e.g. a store stackvault just started again), for up to 30 s. */
export async function untilAnswers(call: () => Promise<unknown>): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await call();
      return;
    } catch (err) {
      if (i > 60) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** A Neo4j stand-in with 300 MB of store files, so that its stopped copy takes a few seconds (time to interrupt it). */
export async function startBigNeo4j(project: string): Promise<StartedTestContainer> {
  const neo4j = await startNeo4j({ project });
  const r = await neo4j.exec(['bash', '-c', 'head -c 300000000 /dev/urandom > /data/databases/neo4j/big.store.db'], { user: '7474:7474' });
  if (r.exitCode !== 0) throw new Error(`filling the Neo4j stand-in failed: ${r.output}`);
  return neo4j;
}

export function startNeo4j(o: StartOptions): Promise<StartedTestContainer> {
  return base(IMAGES.neo4j, o, 'neo4j')
    .withEnvironment({ NEO4J_AUTH: `neo4j/${NEO4J_PASSWORD}` })
    .withWaitStrategy(Wait.forHealthCheck())
    .start();
}

/** A started app container of Compose project `project` (service `app`) with the named volume `volume` at `target`; its id. */
export async function startVolumeApp(o: { project: string; volume: string; target: string; image?: string; labels?: Record<string, string> }): Promise<string> {
  const c = await new Docker().createContainer({
    Image: o.image ?? IMAGES.appstub,
    name: `${o.project}-app`,
    Labels: { 'com.docker.compose.project': o.project, 'com.docker.compose.service': 'app', ...o.labels },
    HostConfig: { Mounts: [{ Type: 'volume', Source: o.volume, Target: o.target }] },
  });
  await c.start();
  return c.id;
}

export function startApp(o: StartOptions): Promise<StartedTestContainer> {
  return base(IMAGES.app, o, 'app').withWaitStrategy(Wait.forHealthCheck()).start();
}

/** Runs a command in a container and returns stdout, failing the test on a non-zero exit. */
export async function run(c: StartedTestContainer, cmd: string[], env?: Record<string, string>): Promise<string> {
  const r = await c.exec(cmd, env ? { env } : undefined);
  if (r.exitCode !== 0) throw new Error(`${cmd.join(' ')} exited ${r.exitCode}: ${r.stderr || r.output}`);
  return r.stdout;
}

export const psql = (c: StartedTestContainer, db: string, sql: string) => run(c, ['psql', '-U', PG_SUPERUSER, '-d', db, '-v', 'ON_ERROR_STOP=1', '-AtX', '-c', sql]).then((s) => s.trim());

export const redisCli = (c: StartedTestContainer, ...args: string[]) =>
  run(c, ['redis-cli', ...(args.includes('--raw') ? [] : ['--no-raw']), ...args], { REDISCLI_AUTH: REDIS_PASSWORD }).then((s) => s.replace(/\n$/, ''));

/**
 * Fills a Redis (without a password) with `count` string keys `key:N` of `bytes` bytes each, and
 * fails unless they are all there. (DEBUG POPULATE is refused by Redis 7's defaults, and
 * redis-cli prints that refusal with exit code 0.)
 */
export async function populateRedis(c: StartedTestContainer, count: number, bytes: number): Promise<void> {
  const script = "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'key:' .. i, string.rep('v', tonumber(ARGV[2]))) end return redis.call('DBSIZE')";
  const size = (await run(c, ['redis-cli', 'EVAL', script, '0', String(count), String(bytes)])).trim();
  if (size !== String(count)) throw new Error(`populating Redis gave ${size}, not ${count} keys`);
}

export const sqlite = (c: StartedTestContainer, db: string, sql: string) => run(c, ['sqlite3', db, sql]).then((s) => s.trim());

/**
 * Chroma's v2 REST API through the published port. The port is looked up on every request:
 * Docker assigns a new random host port each time the container is started again, and
 * stackvault stops and starts Chroma to back it up.
 */
export function chromaApi(c: StartedTestContainer) {
  return async <T = unknown>(path: string, init?: { method?: string; body?: unknown }): Promise<T> => {
    const info = await new Docker().getContainer(c.getId()).inspect();
    const port = info.NetworkSettings.Ports['8000/tcp']?.[0]?.HostPort;
    const base = `http://127.0.0.1:${port}/api/v2/tenants/default_tenant/databases/default_database`;
    const res = await fetch(`${base}${path}`, {
      method: init?.method ?? (init?.body ? 'POST' : 'GET'),
      headers: { 'content-type': 'application/json' },
      body: init?.body ? JSON.stringify(init.body) : undefined,
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`chroma ${path}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  };
}

/**
 * Starts containers side by side, like Promise.all, but when one fails to start the others
 * are stopped before the error is thrown: a hook that fails never sees them (its afterAll
 * cannot stop what it was never given), and with Ryuk off they kept running, loading the
 * machine for hours and failing the tests after them.
 */
export async function startAll<T extends readonly Promise<StartedTestContainer>[]>(starts: readonly [...T]): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(starts);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(settled.map((s) => (s.status === 'fulfilled' ? s.value.stop().catch(() => undefined) : undefined)));
    throw failed.reason;
  }
  return settled.map((s) => (s as PromiseFulfilledResult<StartedTestContainer>).value) as { -readonly [K in keyof T]: Awaited<T[K]> };
}

/** Whether a container runs now (asked of the engine, not of testcontainers). */
export const running = async (id: string): Promise<boolean> => (await new Docker().getContainer(id).inspect()).State.Running;

/** Waits (up to 20 s) until stackvault has stopped a container, e.g. for its copy. */
export async function whenStopped(id: string): Promise<void> {
  for (let i = 0; i < 800; i++) {
    if (!(await running(id))) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the container was never stopped for its copy');
}
