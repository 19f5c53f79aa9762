import type { StartedTestContainer } from 'testcontainers';
import { chromaApi, psql, redisCli, run, sqlite, startApp, startChroma, startNeo4j, startPostgres, startRedis, startAll } from './containers.js';

/** Known data for every datastore, and snapshots that compare it exactly. */

export async function seedPostgres(pg: StartedTestContainer): Promise<void> {
  await psql(pg, 'bot', "CREATE ROLE reporter LOGIN PASSWORD 'reporter-pw'");
  await psql(pg, 'bot', 'CREATE DATABASE analytics');
  await psql(pg, 'bot', 'CREATE DATABASE "crm data"');
  await psql(
    pg,
    'bot',
    `CREATE TABLE users(id int PRIMARY KEY, name text NOT NULL, meta jsonb);
    INSERT INTO users SELECT g, 'user ' || g, jsonb_build_object('n', g, 'tags', jsonb_build_array('a', 'b')) FROM generate_series(1, 250) g;
    CREATE TABLE conversations(id bigserial PRIMARY KEY, user_id int REFERENCES users(id), body text);
    INSERT INTO conversations(user_id, body) SELECT (g % 250) + 1, repeat('hello ', g % 20) FROM generate_series(1, 1000) g;
    GRANT SELECT ON users TO reporter;`,
  );
  await psql(
    pg,
    'analytics',
    "CREATE TABLE events(at timestamptz, kind text, value numeric); INSERT INTO events SELECT timestamptz '2026-01-01' + g * interval '1 minute', 'k' || (g % 7), g / 3.0 FROM generate_series(1, 2000) g;",
  );
  await psql(pg, 'crm data', "CREATE TABLE contacts(id int PRIMARY KEY, name text); INSERT INTO contacts VALUES (1, 'Zoë Ünïcode ✓'), (2, 'O''Brien');");
}

/** Databases, roles and a digest of every table's rows. */
export async function snapshotPostgres(pg: StartedTestContainer): Promise<string> {
  const dbs = (await psql(pg, 'postgres', "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres' ORDER BY 1")).split('\n');
  const roles = await psql(pg, 'postgres', "SELECT string_agg(rolname || ':' || rolsuper || ':' || rolcanlogin, ',' ORDER BY rolname) FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%'");
  const parts = [`roles=${roles}`];
  for (const db of dbs) {
    const tables = (await psql(pg, db, "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).split('\n').filter(Boolean);
    for (const t of tables) {
      parts.push(`${db}.${t}=${await psql(pg, db, `SELECT count(*) || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM ${t} x`)}`);
    }
  }
  return parts.join('\n');
}

export async function seedRedis(redis: StartedTestContainer): Promise<void> {
  const cmds: string[][] = [
    ['SET', 'greeting', 'hello world'],
    ['SET', 'session:42', 'token-value', 'EX', '3600'],
    ['RPUSH', 'queue', 'a', 'b', 'c', 'd'],
    ['SADD', 'tags', 'red', 'green', 'blue'],
    ['ZADD', 'scores', '1', 'alice', '2.5', 'bob', '10', 'carol'],
    ['HSET', 'user:1', 'name', 'Ada', 'lang', 'en'],
    ['EXPIRE', 'user:1', '7200'],
    ['XADD', 'stream', '1-1', 'event', 'created'],
    ['XADD', 'stream', '2-1', 'event', 'updated'],
    ['SET', 'binary', '\u00ff\u00fe bytes \u2713'],
    ['-n', '1', 'SET', 'db1:key', 'in database one'],
  ];
  for (const c of cmds) await redisCli(redis, ...c);
}

const REDIS_READ: Record<string, (key: string) => string[]> = {
  string: (k) => ['GET', k],
  list: (k) => ['LRANGE', k, '0', '-1'],
  set: (k) => ['SMEMBERS', k],
  zset: (k) => ['ZRANGE', k, '0', '-1', 'WITHSCORES'],
  hash: (k) => ['HGETALL', k],
  stream: (k) => ['XRANGE', k, '-', '+'],
};

/** Every key in db 0 and 1 with its type, value (order-normalised) and whether it has a TTL. */
export async function snapshotRedis(redis: StartedTestContainer): Promise<string> {
  const parts: string[] = [];
  for (const db of ['0', '1']) {
    const keys = (await redisCli(redis, '-n', db, '--raw', 'KEYS', '*')).split('\n').filter(Boolean).sort();
    for (const key of keys) {
      const type = await redisCli(redis, '-n', db, '--raw', 'TYPE', key);
      const lines = (await redisCli(redis, '-n', db, '--raw', ...REDIS_READ[type]!(key))).split('\n');
      let value = lines;
      if (type === 'set') value = [...lines].sort();
      if (type === 'hash') value = pairs(lines).sort();
      const ttl = Number(await redisCli(redis, '-n', db, '--raw', 'TTL', key));
      parts.push(`${db}/${key} ${type} ttl=${ttl > 0 ? 'yes' : 'no'} ${JSON.stringify(value)}`);
    }
  }
  return parts.join('\n');
}

const pairs = (lines: string[]) => lines.flatMap((l, i) => (i % 2 === 0 ? [`${l}=${lines[i + 1]}`] : []));

/** JSON with object keys sorted, so metadata compares by content, not key order. */
const stable = (v: unknown): string =>
  v && typeof v === 'object' && !Array.isArray(v)
    ? `{${Object.keys(v)
        .sort()
        .map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`)
        .join(',')}}`
    : Array.isArray(v)
      ? `[${v.map(stable).join(',')}]`
      : JSON.stringify(v);

export const CHROMA_COLLECTION = 'bot-memory';

export async function seedChroma(chroma: StartedTestContainer): Promise<void> {
  const api = chromaApi(chroma);
  const col = await api<{ id: string }>('/collections', { body: { name: CHROMA_COLLECTION, metadata: { owner: 'bot', version: 3 } } });
  const ids = Array.from({ length: 30 }, (_, i) => `doc-${i}`);
  await api(`/collections/${col.id}/add`, {
    body: {
      ids,
      embeddings: ids.map((_, i) => Array.from({ length: 8 }, (_, j) => Math.sin(i * 8 + j))),
      documents: ids.map((id) => `document ${id}`),
      metadatas: ids.map((_, i) => ({ i, even: i % 2 === 0, source: 'seed' })),
    },
  });
  await api('/collections', { body: { name: 'scratch-notes' } });
}

/** Collections with metadata, and every record with embedding, document and metadata. */
export async function snapshotChroma(chroma: StartedTestContainer): Promise<string> {
  const api = chromaApi(chroma);
  const cols = (await api<Array<{ id: string; name: string; metadata: unknown }>>('/collections')).sort((a, b) => a.name.localeCompare(b.name));
  const parts: string[] = [];
  for (const c of cols) {
    const got = await api<{ ids: string[]; embeddings: number[][]; documents: string[]; metadatas: unknown[] }>(`/collections/${c.id}/get`, {
      body: { include: ['embeddings', 'documents', 'metadatas'] },
    });
    const rows = got.ids.map((id, i) => stable([id, got.embeddings[i]!.map((x) => x.toFixed(5)), got.documents[i], got.metadatas[i]])).sort();
    parts.push(`${c.name} ${stable(c.metadata)}`, ...rows);
  }
  return parts.join('\n');
}

const LONG_DIR = `/data/databases/neo4j/${'index-provider-native-btree-1.0/'.repeat(4)}`;

export async function seedNeo4j(neo4j: StartedTestContainer): Promise<void> {
  // Written as uid 7474, as Neo4j itself would (the image chowns /data to 7474 when it starts).
  const r = await neo4j.exec(
    [
      'bash',
      '-c',
      'head -c 200000 /dev/urandom > /data/databases/neo4j/neostore.nodestore.db && printf "graph" > "/data/databases/neo4j/label tokens ✓.db" && chmod 640 /data/databases/neo4j/neostore.nodestore.db' +
        // A name longer than a tar header holds, and a directory readable but not listable.
        ` && mkdir -p "${LONG_DIR}" && printf "deep" > "${LONG_DIR}/schema ✓.db" && mkdir /data/databases/neo4j/closed && chmod 640 /data/databases/neo4j/closed`,
    ],
    { user: '7474:7474' },
  );
  if (r.exitCode !== 0) throw new Error(`seeding neo4j failed: ${r.output}`);
}

/** Path, owner, mode and SHA-256 of every file under /data, and owner and mode of every directory. */
export async function snapshotFiles(c: StartedTestContainer, root = '/data'): Promise<string> {
  return (
    await run(c, [
      'bash',
      '-c',
      `cd ${root} && find . -type f -print0 | sort -z | xargs -0 stat -c '%n %u:%g %a' && find . -type f -print0 | sort -z | xargs -0 sha256sum && find . -mindepth 1 -type d -print0 | sort -z | xargs -0 -r stat -c 'dir %n %u:%g %a'`,
    ])
  ).trim();
}

export async function seedSqlite(app: StartedTestContainer): Promise<void> {
  await sqlite(app, '/app/data/notes.db', "INSERT INTO notes(body) VALUES ('first note'), ('second ✓'), ('third');");
}

export async function snapshotNotes(app: StartedTestContainer): Promise<string> {
  return sqlite(app, '/app/data/notes.db', 'SELECT id, body FROM notes ORDER BY id');
}

export interface SeededStack {
  pg: StartedTestContainer;
  redis: StartedTestContainer;
  chroma: StartedTestContainer;
  neo4j: StartedTestContainer;
  app: StartedTestContainer;
  /** Snapshots of the seeded data, to compare with after a backup or restore. */
  seen: Record<'postgres' | 'redis' | 'chroma' | 'neo4j' | 'notes', string>;
  stop(): Promise<void>;
}

/** All five datastores of one project, seeded with known data and snapshotted. */
export async function startSeededStack(project: string): Promise<SeededStack> {
  const [pg, redis, chroma, neo4j, app] = await startAll([
    startPostgres({ project }),
    startRedis({ project, appendonly: true }),
    startChroma({ project }),
    startNeo4j({ project }),
    startApp({ project }),
  ]);
  await Promise.all([seedPostgres(pg), seedRedis(redis), seedChroma(chroma), seedNeo4j(neo4j), seedSqlite(app)]);
  const seen = {
    postgres: await snapshotPostgres(pg),
    redis: await snapshotRedis(redis),
    chroma: await snapshotChroma(chroma),
    neo4j: await snapshotFiles(neo4j),
    notes: await snapshotNotes(app),
  };
  return {
    pg,
    redis,
    chroma,
    neo4j,
    app,
    seen,
    stop: async () => {
      await Promise.all([pg, redis, chroma, neo4j, app].map((c) => c.stop().catch(() => undefined)));
    },
  };
}
