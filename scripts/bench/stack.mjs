// The benchmark's stack: five datastore containers of one Compose-like project on the local
// images, each with a named volume, and their seeding to a target size with bulk work inside
// the containers.
import { bash, docker, now, q, run, sleep } from './proc.mjs';

export const IMAGES = {
  postgres: 'stackvault-local/postgres:17',
  redis: 'stackvault-local/redis:7',
  chroma: 'stackvault-local/chroma:1',
  neo4j: 'stackvault-local/neo4j:5-standin',
  app: 'stackvault-local/app:1',
};
export const SERVICES = ['postgres', 'redis', 'chroma', 'neo4j', 'app'];
export const PG_USER = 'bench';
/** Where each service keeps its data (a named volume). */
export const DATA_PATH = { postgres: '/var/lib/postgresql/data', redis: '/data', chroma: '/data', neo4j: '/data', app: '/app/data' };
/** The SQLite databases of the app container (its image labels them for stackvault). */
export const SQLITE_DBS = ['app.db', 'notes.db'];

/** How a seeded size splits over the stores (fractions of the raw size). */
const SHARE = { postgres: 0.4, redis: 0.15, chroma: 0.1, neo4j: 0.12, app: 0.23 };
/** Measured on this kind of machine: bytes of raw backup per unit seeded. */
const PER_PG_ROW = 370; // pg_dumpall text per messages row
const PER_EVENT_ROW = 75; // pg_dumpall text per analytics.events row
const PER_SQLITE_ROW = 330; // SQLite file bytes per conversations row
const PER_CHROMA_VECTOR = 3300; // /data bytes per 384-d record with document and metadata

export class Stack {
  constructor(prefix) {
    this.prefix = prefix;
    this.project = prefix;
    this.created = { containers: [], volumes: [] };
    this.expected = {};
  }

  name(service) {
    return `${this.prefix}-${service}`;
  }

  volume(service) {
    return `${this.prefix}-${service}-data`;
  }

  /** Host directory of a service's volume (the engine runs on this machine; we are root). */
  async mountpoint(service) {
    this.mounts ??= {};
    this.mounts[service] ??= await docker('volume', 'inspect', '--format', '{{.Mountpoint}}', this.volume(service));
    return this.mounts[service];
  }

  async startAll() {
    const opts = {
      postgres: {
        env: [`POSTGRES_USER=${PG_USER}`, 'POSTGRES_PASSWORD=bench-only-password', `POSTGRES_DB=${PG_USER}`],
        cmd: ['postgres', '-c', 'shared_buffers=128MB', '-c', 'max_wal_size=4GB', '-c', 'checkpoint_timeout=30min'],
      },
      // No AOF: the manual procedure copies the RDB, and copying it back restores the data only without AOF.
      redis: { cmd: ['redis-server', '--appendonly', 'no'] },
      chroma: { ports: ['127.0.0.1::8000'] },
      neo4j: { env: ['NEO4J_AUTH=neo4j/bench-only-password'] },
      app: {},
    };
    for (const s of SERVICES) {
      const o = opts[s];
      await docker('volume', 'create', '--label', `svbench.owner=${this.prefix}`, this.volume(s));
      this.created.volumes.push(this.volume(s));
      const args = [
        'run',
        '-d',
        '--name',
        this.name(s),
        '--label',
        `com.docker.compose.project=${this.project}`,
        '--label',
        `com.docker.compose.service=${s}`,
        '--label',
        `svbench.owner=${this.prefix}`,
      ];
      for (const e of o.env ?? []) args.push('-e', e);
      for (const p of o.ports ?? []) args.push('-p', p);
      args.push('-v', `${this.volume(s)}:${DATA_PATH[s]}`, IMAGES[s], ...(o.cmd ?? []));
      this.created.containers.push(this.name(s));
      await docker(...args);
    }
    await this.waitReady();
  }

  async chromaUrl() {
    const out = await docker('port', this.name('chroma'), '8000/tcp');
    const port = /:(\d+)\s*$/m.exec(out.split('\n')[0])?.[1];
    if (!port) throw new Error(`chroma publishes no port: ${out}`);
    return `http://127.0.0.1:${port}/api/v2`;
  }

  /** Whether one service answers (a running container and its own readiness probe). */
  async ready(s) {
    const c = this.name(s);
    const running = await docker('inspect', '--format', '{{.State.Running}} {{.State.Paused}}', c);
    if (running !== 'true false') return `container ${c} is not running (${running})`;
    const probe = {
      postgres: () => run('docker', ['exec', c, 'pg_isready', '-q', '-U', PG_USER, '-d', PG_USER]),
      redis: async () => {
        const info = await run('docker', ['exec', c, 'redis-cli', 'INFO', 'persistence']);
        if (!/^loading:0/m.test(info)) throw new Error('loading');
      },
      chroma: async () => {
        const r = await fetch(`${await this.chromaUrl()}/heartbeat`, { signal: AbortSignal.timeout(2000) });
        if (!r.ok) throw new Error(`heartbeat ${r.status}`);
      },
      neo4j: () => run('docker', ['exec', c, 'test', '-f', '/data/databases/neo4j/neostore']),
      app: () => run('docker', ['exec', c, 'test', '-f', '/app/data/.ready']),
    }[s];
    try {
      await probe();
      return undefined;
    } catch (e) {
      return `${s}: ${e.message.split('\n')[0]}`;
    }
  }

  /** Waits until every service (or the ones named) answers; fails with the last reason after `timeoutMs`. */
  async waitReady(services = SERVICES, timeoutMs = 180_000) {
    const t0 = now();
    for (const s of services) {
      for (;;) {
        const why = await this.ready(s);
        if (!why) break;
        if (now() - t0 > timeoutMs) {
          const logs = await run('docker', ['logs', '--tail', '15', this.name(s)]).catch((e) => e.message);
          throw new Error(`${s} did not become ready in ${timeoutMs / 1000} s: ${why}\n  last log lines:\n  ${logs.trim().split('\n').join('\n  ')}`);
        }
        await sleep(250);
      }
    }
  }

  async chroma(path, body) {
    const r = await fetch(`${await this.chromaUrl()}/tenants/default_tenant/databases/default_database${path}`, {
      method: body ? 'POST' : 'GET',
      headers: { 'content-type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`chroma ${path}: HTTP ${r.status} ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : undefined;
  }

  psql(db, sql) {
    return run('docker', ['exec', '-i', this.name('postgres'), 'psql', '-U', PG_USER, '-d', db, '-v', 'ON_ERROR_STOP=1', '-AtqX'], { input: sql, label: `psql ${db}: ${sql.slice(0, 80)}` }).then((s) =>
      s.trim(),
    );
  }

  /** Seeds every store to about `bytes` of raw backup, all at once; returns seconds per store. */
  async seed(bytes, log) {
    const plan = {
      pgRows: Math.max(1000, Math.round((bytes * SHARE.postgres * 0.85) / PER_PG_ROW)),
      eventRows: Math.max(1000, Math.round((bytes * SHARE.postgres * 0.15) / PER_EVENT_ROW)),
      redisKeys: Math.max(1000, Math.round((bytes / 1e9) * 1_000_000)),
      vectors: Math.max(1000, Math.round((bytes * SHARE.chroma) / PER_CHROMA_VECTOR)),
      neo4jBytes: Math.round(bytes * SHARE.neo4j),
      sqliteRows: Math.max(1000, Math.round((bytes * SHARE.app) / PER_SQLITE_ROW)),
    };
    this.plan = plan;
    log(
      `  plan: postgres ${plan.pgRows.toLocaleString('en')} messages + ${plan.eventRows.toLocaleString('en')} events, redis ${plan.redisKeys.toLocaleString('en')} keys, chroma ${plan.vectors.toLocaleString('en')} x 384-d, neo4j ${(plan.neo4jBytes / 1e6).toFixed(0)} MB of store files, sqlite ${plan.sqliteRows.toLocaleString('en')} rows`,
    );
    const seconds = {};
    const one = async (s, fn) => {
      const t0 = now();
      await fn(plan);
      seconds[s] = (now() - t0) / 1000;
      log(`  ${s.padEnd(8)} seeded in ${seconds[s].toFixed(1)} s`);
    };
    await Promise.all([
      one('postgres', (p) => this.seedPostgres(p)),
      one('redis', (p) => this.seedRedis(p)),
      one('chroma', (p) => this.seedChroma(p)),
      one('neo4j', (p) => this.seedNeo4j(p)),
      one('app', (p) => this.seedSqlite(p)),
    ]);
    await this.snapshotCounts();
    return seconds;
  }

  async seedPostgres({ pgRows, eventRows }) {
    await this.psql(
      PG_USER,
      `CREATE TABLE messages(id bigint PRIMARY KEY, user_id int NOT NULL, created_at timestamptz NOT NULL, score double precision, amount numeric(12,2), author text, body text, meta jsonb, attachment bytea);
       CREATE DATABASE analytics;`,
    );
    await this.psql('analytics', 'CREATE TABLE events(id bigint, at timestamptz, kind smallint, value double precision, qty int, price numeric(10,2));');
    const words =
      'the a to of and in is it you that he was for on are with as I his they be at one have this from or had by hot word but what some we can out other were all there when up use your how said an each she which do their time if will way about many then them write would like so these her long make thing see him two has look more day could go come did number sound no most people my over know water than call first who may down side been now find any new work part take get place made live where after back little only round man year came show every good me give our under name very through just form sentence great think say help low line differ turn cause much mean before move right boy old too same tell does set three want air well also play small end put home read hand port large spell add even land here must big high such follow act why ask men change went light kind off need house picture try us again animal point mother world near build self earth father';
    const insert = (a, b) =>
      this.psql(
        PG_USER,
        `SET synchronous_commit = off;
         INSERT INTO messages SELECT g, ((g::bigint * 7919) % 100000)::int, timestamptz '2025-01-01' + g * interval '1 second', random(), round((random() * 10000)::numeric, 2), 'user-' || md5((g % 5000)::text),
           array_to_string(ARRAY(SELECT w[1 + floor(random() * cardinality(w))::int] FROM generate_series(1, 8 + g % 40)), ' '),
           jsonb_build_object('lang', (ARRAY['en','de','fr','es'])[1 + g % 4], 'tokens', g % 900, 'tags', jsonb_build_array('t' || g % 13, 't' || g % 29), 'model', 'gpt-' || g % 5),
           decode(md5(random()::text) || md5(random()::text), 'hex')
         FROM generate_series(${a}, ${b}) g, (SELECT string_to_array('${words}', ' ')) AS c(w);`,
      );
    // Two sessions, one per core.
    const half = Math.floor(pgRows / 2);
    await Promise.all([
      insert(1, half),
      insert(half + 1, pgRows),
      this.psql(
        'analytics',
        `SET synchronous_commit = off;
         INSERT INTO events SELECT g, timestamptz '2025-01-01' + g * interval '250 ms', g % 17, random() * 1000, (random() * 100)::int, round((random() * 500)::numeric, 2) FROM generate_series(1, ${eventRows}) g;`,
      ),
    ]);
    await this.psql(PG_USER, 'ANALYZE messages; CHECKPOINT;');
  }

  async seedRedis({ redisKeys }) {
    // Mixed types: strings (some with a TTL), hashes, lists, sets, sorted sets; batches keep the server answering.
    const lua = `
      local s, n = tonumber(ARGV[1]), tonumber(ARGV[2])
      for i = s, s + n - 1 do
        local m = i % 20
        local r = string.format('%08x%08x', math.random(0, 2147483647), math.random(0, 2147483647))
        if m < 12 then
          redis.call('SET', 'session:' .. i, 'tok-' .. r .. '-' .. string.rep(string.char(97 + i % 26), 30 + i % 60))
          if i % 10 == 0 then redis.call('EXPIRE', 'session:' .. i, 864000) end
        elseif m < 15 then redis.call('HSET', 'user:' .. i, 'name', 'user ' .. i, 'email', 'u' .. i .. '@example.com', 'plan', tostring(m), 'token', r)
        elseif m < 17 then redis.call('RPUSH', 'queue:' .. i, 'job-' .. i, 'job-' .. (i + 1), 'payload ' .. r)
        elseif m < 19 then redis.call('SADD', 'tags:' .. i, 'a' .. (i % 7), 'b' .. (i % 11), 'c' .. (i % 13), r)
        else redis.call('ZADD', 'rank:' .. i, i % 100, 'x' .. i, (i * 3) % 100, r, 1.5, 'z') end
      end
      return n`;
    const batch = 50_000;
    for (let s = 1; s <= redisKeys; s += batch) {
      await run('docker', ['exec', this.name('redis'), 'redis-cli', 'EVAL', lua, '0', String(s), String(Math.min(batch, redisKeys - s + 1))], { label: 'redis seed EVAL' });
    }
    const size = Number(await run('docker', ['exec', this.name('redis'), 'redis-cli', 'DBSIZE']));
    if (size !== redisKeys) throw new Error(`redis holds ${size} keys after seeding, expected ${redisKeys}`);
  }

  async seedChroma({ vectors }) {
    const col = await this.chroma('/collections', { name: 'bench-memory', metadata: { owner: 'bench' }, get_or_create: true });
    const batch = 2000;
    const topics = ['billing', 'support', 'onboarding', 'release', 'incident', 'sales', 'research'];
    for (let s = 0; s < vectors; s += batch) {
      const n = Math.min(batch, vectors - s);
      const ids = Array.from({ length: n }, (_, i) => `doc-${s + i}`);
      // Random unit-ish vectors, sent as base64 float32 (the server says it takes them).
      const embeddings = ids.map(() => {
        const f = new Float32Array(384);
        for (let k = 0; k < 384; k++) f[k] = Math.random() * 2 - 1;
        return Buffer.from(f.buffer).toString('base64');
      });
      await this.chroma(`/collections/${col.id}/add`, {
        ids,
        embeddings,
        documents: ids.map((id, i) => `${id}: notes about ${topics[(s + i) % topics.length]} from conversation ${(s + i) % 997}, ${'remember this detail '.repeat(1 + (i % 5))}`),
        metadatas: ids.map((_, i) => ({ topic: topics[(s + i) % topics.length], n: s + i, pinned: i % 9 === 0 })),
      });
    }
    const count = await this.chroma(`/collections/${col.id}/count`);
    if (count !== vectors) throw new Error(`chroma holds ${count} records after seeding, expected ${vectors}`);
  }

  async seedNeo4j({ neo4jBytes }) {
    // Store files as Neo4j leaves them, written as uid 7474: record stores (random), string and
    // array property stores (text-like), index and id files (mostly zeros), transaction logs.
    const third = Math.floor(neo4jBytes / 3);
    const mb = (n) => Math.max(1, Math.round(n / 1048576));
    await run('docker', [
      'exec',
      '-u',
      '7474:7474',
      this.name('neo4j'),
      'bash',
      '-euo',
      'pipefail',
      '-c',
      `d=/data/databases/neo4j; t=/data/transactions/neo4j
       head -c ${Math.floor(third * 0.6)} /dev/urandom > $d/neostore.nodestore.db
       head -c ${Math.floor(third * 0.4)} /dev/urandom > $d/neostore.relationshipstore.db
       head -c ${Math.floor(third * 0.56)} /dev/urandom | base64 -w 120 > $d/neostore.propertystore.db.strings
       head -c ${Math.floor(third * 0.1)} /dev/urandom | od -An -tu2 -w32 > $d/neostore.propertystore.db.arrays
       dd if=/dev/zero of=$d/neostore.relationshipgroupstore.db bs=1M count=${mb(third * 0.5)} status=none
       mkdir -p $d/schema/index/range-1.0/1
       dd if=/dev/zero of=$d/schema/index/range-1.0/1/index-1 bs=1M count=${mb(third * 0.5)} status=none
       head -c ${Math.floor(third * 0.2)} /dev/urandom | base64 > $t/neostore.transaction.db.0`,
    ]);
  }

  async seedSqlite({ sqliteRows }) {
    // Into app.db, the database the app's own writer inserts into every 0.2 s (it keeps doing so
    // during every run): batches of 20,000 rows, each its own short transaction.
    const c = this.name('app');
    await run('docker', [
      'exec',
      c,
      'sqlite3',
      '/app/data/app.db',
      'PRAGMA busy_timeout=20000; CREATE TABLE IF NOT EXISTS conversations(id INTEGER PRIMARY KEY, at TEXT NOT NULL, user TEXT, role TEXT, content TEXT, tokens INTEGER, vec BLOB);',
    ]);
    const corpus =
      'Sure! Here is a summary of the meeting notes. The customer asked about pricing tiers, the onboarding timeline and whether data stays in the EU. We agreed to send a follow-up with the contract draft by Friday. Remember: the user prefers short answers, dislikes emojis and works in the finance team. Next steps: schedule a demo, share the security whitepaper, open a ticket for the SSO issue reported last week. ';
    const batch = 20_000;
    let sql = 'PRAGMA busy_timeout=20000;\n';
    for (let s = 1; s <= sqliteRows; s += batch) {
      const e = Math.min(sqliteRows, s + batch - 1);
      sql += `WITH RECURSIVE c(x) AS (SELECT ${s} UNION ALL SELECT x + 1 FROM c WHERE x < ${e})
        INSERT INTO conversations(at, user, role, content, tokens, vec) SELECT datetime(1735689600 + x * 7, 'unixepoch'), 'user-' || (x % 5000), CASE x % 3 WHEN 0 THEN 'user' ELSE 'assistant' END,
        substr(${q(corpus)}, 1 + abs(random()) % 300, 40 + abs(random()) % 160) || ' [' || hex(randomblob(12)) || '] ' || substr(${q(corpus)}, 1 + abs(random()) % 300, 20 + abs(random()) % 80), x % 900, randomblob(64) FROM c;\n`;
    }
    sql += 'PRAGMA wal_checkpoint(TRUNCATE);\n';
    await run('docker', ['exec', '-i', c, 'sqlite3', '-bail', '/app/data/app.db'], { input: sql, label: 'sqlite seed' });
    await run('docker', ['exec', c, 'sqlite3', '/app/data/notes.db', "PRAGMA busy_timeout=20000; INSERT INTO notes(body) VALUES ('seeded by the benchmark');"]);
  }

  /** Row and key counts that every restore must bring back (checked after manual restores). */
  async snapshotCounts() {
    this.expected = await this.counts();
    const nan = Object.keys(this.expected).filter((k) => !Number.isInteger(this.expected[k]));
    if (nan.length) throw new Error(`could not count ${nan.join(', ')} after seeding`);
  }

  async counts() {
    const c = {};
    c.messages = Number(await this.psql(PG_USER, 'SELECT count(*) FROM messages'));
    c.events = Number(await this.psql('analytics', 'SELECT count(*) FROM events'));
    c.redisKeys = Number(await run('docker', ['exec', this.name('redis'), 'redis-cli', 'DBSIZE']));
    const cols = await this.chroma('/collections');
    c.vectors = await this.chroma(`/collections/${cols.find((x) => x.name === 'bench-memory').id}/count`);
    c.neo4jFiles = Number(await bash(`docker exec ${q(this.name('neo4j'))} find /data -type f | wc -l`));
    c.conversations = Number(await run('docker', ['exec', this.name('app'), 'sqlite3', '-cmd', '.timeout 20000', '/app/data/app.db', 'SELECT count(*) FROM conversations']));
    return c;
  }

  /** Fails loudly when a restore lost data (the app's writer may only have added events). */
  async checkCounts(what) {
    const got = await this.counts();
    const nan = Object.keys(got).filter((k) => !Number.isInteger(got[k]));
    if (nan.length) throw new Error(`could not count ${nan.join(', ')} after ${what}`);
    const bad = Object.keys(this.expected).filter((k) => got[k] !== this.expected[k]);
    if (bad.length) throw new Error(`after ${what} the stack differs from the seeded one: ${bad.map((k) => `${k} ${got[k]} (expected ${this.expected[k]})`).join(', ')}`);
  }

  /** Removes everything this stack created, and only that. */
  async remove() {
    const errors = [];
    const force = { evenWhenAborting: true };
    if (this.created.containers.length) await run('docker', ['rm', '-f', '-v', ...this.created.containers], force).catch((e) => errors.push(e.message));
    // Containers this script might have left with our label (none expected).
    const leftover = (await run('docker', ['ps', '-aq', '--filter', `label=svbench.owner=${this.prefix}`], force).catch(() => '')).split('\n').filter(Boolean);
    if (leftover.length) await run('docker', ['rm', '-f', '-v', ...leftover], force).catch((e) => errors.push(e.message));
    for (const v of this.created.volumes) await run('docker', ['volume', 'rm', '-f', v], force).catch((e) => errors.push(e.message));
    return errors;
  }
}
