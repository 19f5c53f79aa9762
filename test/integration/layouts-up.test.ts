import Docker from 'dockerode';
import { execa } from 'execa';
import { access } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/cli.js';
import { downLayout, type Layout, LAYOUTS, type LayoutName, upLayout } from '../support/layouts.js';

/**
 * Smoke test of test/layouts/: every real-stack layout comes up on the local images with all
 * its services running and healthy, shows the property it is there for, and goes away again
 * without a trace (containers, volumes, its temporary copy, the repository untouched).
 */

const SERVICES: Record<LayoutName, string[]> = {
  cognee: ['cognee', 'neo4j', 'postgres', 'redis'],
  dify: ['api', 'db_postgres', 'pgvector', 'plugin_daemon', 'redis', 'worker', 'worker_beat'],
  immich: ['database', 'immich-machine-learning', 'immich-server', 'redis'],
  langfuse: ['langfuse-web', 'langfuse-worker', 'postgres', 'redis'],
  librechat: ['api', 'rag_api', 'vectordb'],
  mem0: ['mem0', 'postgres'],
  n8n: ['n8n', 'n8n-runner', 'n8n-worker', 'n8n-worker-runner', 'postgres', 'redis'],
  nextcloud: ['app', 'cron', 'db', 'redis'],
  paperless: ['broker', 'db', 'webserver'],
  plausible: ['plausible', 'plausible_db', 'plausible_events_db'],
  whisperengine: ['chromadb', 'neo4j', 'postgres', 'redis', 'whisperengine-bot'],
};

const ok = async (l: Layout, service: string, cmd: string[]) => {
  const r = await l.exec(service, cmd);
  expect(r.exitCode, `${service}: ${cmd.join(' ')}\n${r.output}`).toBe(0);
  return r.output.trim();
};
/** psql in a postgres service, once it answers (services without a healthcheck may still be initialising). */
async function psql(l: Layout, service: string, user: string, db: string, sql: string): Promise<string> {
  for (let i = 0; i < 120 && (await l.exec(service, ['pg_isready', '-q'])).exitCode !== 0; i++) await new Promise((r) => setTimeout(r, 500));
  return ok(l, service, ['psql', '-U', user, '-d', db, '-AtXc', sql]);
}

/** What each layout is about, checked in one or two commands. */
const FACTS: Record<LayoutName, (l: Layout) => Promise<void>> = {
  async cognee(l) {
    // The app's SQLite database has no extension and lives in the ./cognee bind mount.
    await access(`${l.dir}/cognee/.cognee_system/databases/cognee_db`);
  },
  async dify(l) {
    // The plugin daemon made its own database next to Dify's; PGDATA is a subdirectory.
    expect((await psql(l, 'db_postgres', 'postgres', 'postgres', 'SELECT datname FROM pg_database ORDER BY 1')).split('\n')).toEqual(expect.arrayContaining(['dify', 'dify_plugin']));
    await access(`${l.dir}/volumes/db/data/pgdata/PG_VERSION`);
    await access(`${l.dir}/volumes/app/storage/privkeys`);
  },
  async immich(l) {
    expect(await psql(l, 'database', 'postgres', 'immich', 'SHOW data_checksums')).toBe('on');
    await access(`${l.dir}/library/upload/.immich`);
  },
  async langfuse(l) {
    // The password is only in redis-server's command line: redis-cli without it is refused.
    expect((await l.exec('redis', ['redis-cli', 'ping'])).output).toContain('NOAUTH');
  },
  async librechat(l) {
    expect(await psql(l, 'vectordb', 'myuser', 'mydatabase', "SELECT count(*) FROM pg_roles WHERE rolname = 'postgres'")).toBe('0');
  },
  async mem0(l) {
    expect((await psql(l, 'postgres', 'postgres', 'postgres', 'SELECT datname FROM pg_database')).split('\n')).toContain('mem0_app');
    await access(`${l.dir}/history/history.db`);
  },
  async n8n(l) {
    // The superuser has capitals; init-data.sh's unquoted CREATE USER made the app user.
    expect(await psql(l, 'postgres', 'n8nAdmin', 'n8n', "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname !~ '^pg_'")).toBe('n8nAdmin,n8n_worker');
    // n8n and its worker share one volume (x-shared).
    const [main, worker] = await Promise.all(
      ['n8n', 'n8n-worker'].map(async (s) => (await docker.getContainer((await l.containers()).find((c) => c.service === s)!.id).inspect()).Mounts.map((m) => m.Name)),
    );
    expect(worker).toEqual(main);
  },
  async nextcloud(l) {
    // MYSQL_* variables made the database and its user; the root password reaches root over the network.
    expect(await ok(l, 'db', ['mariadb', '-unextcloud', '-pnc-pässword"1', '-h127.0.0.1', '-N', '-e', 'SELECT DATABASE(), CURRENT_USER()', 'nextcloud'])).toBe('nextcloud\tnextcloud@%');
    expect(await ok(l, 'db', ['mariadb', '-uroot', "-pr00t 'pw' ✓", '-h127.0.0.1', '-N', '-e', 'SELECT @@transaction_isolation'])).toBe('READ-COMMITTED');
  },
  async paperless(l) {
    // PostgreSQL 18's layout: the volume at /var/lib/postgresql, the data directory inside it.
    expect(await psql(l, 'db', 'paperless', 'paperless', 'SHOW data_directory')).toBe('/var/lib/postgresql/data');
    await access(`${l.dir}/consume`);
    await access(`${l.dir}/export`);
  },
  async plausible(l) {
    // A real ClickHouse server; upstream's ipv4-only.xml took effect (the packaged config listens on
    // loopback only), so the app reaches it by its service name.
    expect(await ok(l, 'plausible_events_db', ['clickhouse-client', '-q', 'SELECT version()'])).toMatch(/^18\.16\./);
    expect(await ok(l, 'plausible', ['python3', '-c', "import urllib.request; print(urllib.request.urlopen('http://plausible_events_db:8123/ping').read().decode())"])).toBe('Ok.');
  },
  async whisperengine(l) {
    expect(await psql(l, 'postgres', 'bot_user', 'whisper_engine', "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).not.toBe('0');
    expect(await ok(l, 'redis', ['id', '-u'])).toBe('999');
    // Chroma 1.x writes to /data; the layout's volume at /chroma/chroma stays empty.
    expect(await ok(l, 'chromadb', ['ls', '-A', '/chroma/chroma'])).toBe('');
    expect(await ok(l, 'chromadb', ['ls', '/data'])).toContain('chroma.sqlite3');
  },
};

/** Two layouts at a time (2 cores; most of the time is waiting for servers to start). */
let running = 0;
const queue: Array<() => void> = [];
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= 2) await new Promise<void>((r) => queue.push(r));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    queue.shift()?.();
  }
}

const docker = new Docker();

describe.concurrent('layouts of real stacks come up on the local images', () => {
  for (const name of LAYOUTS) {
    it(
      name,
      () =>
        slot(async () => {
          const layout = await upLayout(name);
          const volumes: string[] = [];
          try {
            const containers = await layout.containers();
            for (const c of containers) {
              for (const m of (await docker.getContainer(c.id).inspect()).Mounts) if (m.Type === 'volume' && m.Name) volumes.push(m.Name);
            }
            expect(containers.map((c) => c.service)).toEqual(SERVICES[name]);
            for (const c of containers) expect(c.state, c.service).toBe('running');
            await FACTS[name](layout);
          } finally {
            await downLayout(layout);
          }
          const label = `com.docker.compose.project=${layout.project}`;
          expect(await docker.listContainers({ all: true, filters: { label: [label] } })).toEqual([]);
          // Named volumes (also those with a fixed `name:`) and the images' anonymous volumes.
          const left = ((await docker.listVolumes()).Volumes ?? []).map((v) => v.Name).filter((v) => volumes.includes(v) || v.startsWith(layout.project));
          expect(left).toEqual([]);
          await expect(access(layout.dir)).rejects.toThrow();
        }),
      240_000,
    );
  }

  // Bind mounts go to each run's temporary copy: test/layouts/ is the same before and after.
  const repoState = () => execa('git', ['status', '--porcelain', '--untracked-files=all', '--ignored', '--', 'test/layouts'], { cwd: REPO_ROOT }).then((r) => r.stdout);
  let before = '';
  beforeAll(async () => {
    before = await repoState();
  });
  afterAll(async () => {
    expect(await repoState()).toBe(before);
  });
});
