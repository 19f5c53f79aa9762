import { createHash } from 'node:crypto';
import Docker from 'dockerode';

/**
 * Seeds, changes and reads the content of every store and data mount of a Compose project,
 * with the stores' own tools (psql, redis-cli, Chroma's HTTP API, sha256sum) and none of
 * stackvault's code, so a round trip can be checked independently of the code under test.
 * What a container is, is decided here from its environment and image, as a user would.
 */
const docker = new Docker();
/** Further engines whose containers belong to the stacks too (a stack spread over several hosts). */
const engines: Docker[] = [docker];
const engineOf = new Map<string, Docker>();
export function alsoOnEngine(other: Docker): void {
  if (!engines.includes(other)) engines.push(other);
}

/**
 * `labelled` apps keep SQLite files named by a label and write all the time: restore.test.ts
 * covers them. `sqlite` is a labelled app stand-in (appstub: idle, python3, no sqlite3) whose
 * databases are written and read here with Python's own sqlite3 module.
 */
type Kind = 'postgres' | 'mariadb' | 'redis' | 'chroma' | 'neo4j' | 'clickhouse' | 'app' | 'labelled' | 'sqlite';

export interface Member {
  id: string;
  name: string;
  service: string;
  kind: Kind;
  env: Record<string, string>;
  cmd: string[];
  /** Read-write data mounts (destination, and source for binds). */
  mounts: Array<{ type: string; source: string; destination: string }>;
  ip: string;
}

/** Members of a project; `projectDir` (where its compose file is) marks source-tree binds, which keep only SQLite files. */
export async function membersOf(project: string, projectDir = ''): Promise<Member[]> {
  const out: Member[] = [];
  for (const engine of engines)
    for (const c of await engine.listContainers({ filters: { label: [`com.docker.compose.project=${project}`] } })) {
      engineOf.set(c.Id, engine);
      const i = await engine.getContainer(c.Id).inspect();
      const env = Object.fromEntries((i.Config.Env ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      const cmd = [...[i.Config.Entrypoint ?? []].flat(), ...(i.Config.Cmd ?? [])];
      const image = i.Config.Image;
      const kind: Kind = i.Config.Labels?.['stackvault.sqlite.paths']
        ? /appstub/.test(image)
          ? 'sqlite'
          : 'labelled'
        : env.PG_MAJOR
          ? 'postgres'
          : env.MARIADB_VERSION || env.MYSQL_MAJOR
            ? 'mariadb'
            : env.REDIS_VERSION || env.VALKEY_VERSION
              ? 'redis'
              : /chroma/.test(image)
                ? 'chroma'
                : /neo4j/.test(image)
                  ? 'neo4j'
                  : /clickhouse/.test(image)
                    ? 'clickhouse'
                    : 'app';
      out.push({
        id: c.Id,
        name: i.Name.slice(1),
        service: c.Labels['com.docker.compose.service'] ?? i.Name.slice(1),
        kind,
        env,
        cmd,
        mounts: (i.Mounts ?? [])
          .filter((m) => m.RW && !/\.sock$|^\/etc\//.test(m.Destination) && !/(^|\/)\.env$|\.(ya?ml|json|conf|py|sh)$/.test(m.Destination))
          .filter((m) => !(m.Type === 'bind' && projectDir && (projectDir === m.Source || projectDir.startsWith(`${m.Source}/`))))
          .map((m) => ({ type: m.Type, source: m.Source, destination: m.Destination })),
        ip: Object.values(i.NetworkSettings.Networks ?? {})[0]?.IPAddress ?? '',
      });
    }
  return out.sort((a, b) => a.service.localeCompare(b.service));
}

/** Runs a command in a container and returns its stdout (throws on a non-zero exit). */
export async function execIn(id: string, cmd: string[], env: Record<string, string> = {}, user?: string): Promise<string> {
  const on = engineOf.get(id) ?? docker;
  const exec = await on.getContainer(id).exec({ Cmd: cmd, Env: Object.entries(env).map(([k, v]) => `${k}=${v}`), AttachStdout: true, AttachStderr: true, ...(user ? { User: user } : {}) });
  const stream = await exec.start({ hijack: true, stdin: false });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    on.modem.demuxStream(stream, { write: (c: Buffer) => out.push(c) } as never, { write: (c: Buffer) => err.push(c) } as never);
    stream.on('end', () => resolve());
    stream.on('error', reject);
  });
  const info = await exec.inspect();
  if (info.ExitCode !== 0) throw new Error(`${cmd.join(' ')} in ${id.slice(0, 12)} exited ${info.ExitCode}: ${Buffer.concat(err).toString()}`);
  return Buffer.concat(out).toString('utf8');
}

const pgUser = (m: Member) => m.env.POSTGRES_USER || 'postgres';
async function psql(m: Member, db: string, sql: string): Promise<string> {
  // A server restarted by a backup or restore may still be starting.
  for (let i = 0; i < 240; i++) {
    if (
      await execIn(m.id, ['pg_isready', '-q', '-U', pgUser(m)]).then(
        () => true,
        () => false,
      )
    )
      break;
    await new Promise((r) => setTimeout(r, 500));
  }
  return (await execIn(m.id, ['psql', '-U', pgUser(m), '-d', db, '-v', 'ON_ERROR_STOP=1', '-AtXq', '-c', sql])).trim();
}
/** MariaDB's own client, as root over the socket (MYSQL_PWD from the container where it has one). */
const maria = async (m: Member, query: string) =>
  (await execIn(m.id, ['mariadb', '-uroot', '-N', '-B', '--default-character-set=utf8mb4', '-e', query], m.env.MARIADB_ROOT_PASSWORD ? { MYSQL_PWD: m.env.MARIADB_ROOT_PASSWORD } : {})).trim();
const MARIA_SYSTEM = "('mysql','information_schema','performance_schema','sys')";
const mariaDatabases = async (m: Member) => (await maria(m, `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ${MARIA_SYSTEM} ORDER BY 1`)).split('\n').filter(Boolean);
const databases = async (m: Member) => (await psql(m, 'postgres', 'SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1')).split('\n').filter(Boolean);

function redisAuth(m: Member): Record<string, string> {
  const i = m.cmd.indexOf('--requirepass');
  const password = i >= 0 ? m.cmd[i + 1] : m.env.REDIS_PASSWORD || m.env.REDISCLI_AUTH;
  return password ? { REDISCLI_AUTH: password } : {};
}
const redis = (m: Member, ...args: string[]) => execIn(m.id, ['redis-cli', '--no-auth-warning', ...args], redisAuth(m)).then((s) => s.replace(/\n$/, ''));

async function chroma<T>(m: Member, path: string, body?: unknown, method?: string): Promise<T> {
  const res = await fetch(`http://${m.ip}:8000/api/v2/tenants/default_tenant/databases/default_database${path}`, {
    method: method ?? (body ? 'POST' : 'GET'),
    headers: { 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`chroma ${path}: ${res.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Chroma answers again (a backup or restore restarts it). */
async function chromaReady(m: Member): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await chroma(m, '/collections');
      return;
    } catch (err) {
      if (i > 120) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/**
 * ClickHouse's own client in its container (a store stackvault has no driver for, copied as
 * files): one statement per call, so no statement splitting differs between versions.
 */
async function clickhouse(m: Member, query: string): Promise<string> {
  // A server restarted by a backup or restore may still be starting.
  for (let i = 0; ; i++) {
    try {
      return (await execIn(m.id, ['clickhouse-client', '--query', query])).trim();
    } catch (err) {
      if (i > 120 || !/Connection refused|NETWORK_ERROR|Code: 210/.test(String(err))) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
const CLICKHOUSE_SYSTEM = "('system', 'INFORMATION_SCHEMA', 'information_schema')";

const TEXT = "中文テキスト naïve café ☕ Straße 🎉 'quoted' \\back";

/** The SQLite files a labelled app names. */
const sqlitePathsOf = async (m: Member) =>
  ((await docker.getContainer(m.id).inspect()).Config.Labels?.['stackvault.sqlite.paths'] ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
/**
 * Python's sqlite3 on each labelled database (argv: text, paths). The connections are kept and
 * never closed (os._exit): closing the last one would checkpoint the first database's WAL,
 * which is meant to hold committed rows the backup must recover.
 */
const SQLITE_PY = {
  seed: `import hashlib, os, sqlite3, sys
text = sys.argv[1]
kept = []
for i, path in enumerate(sys.argv[2:]):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    kept.append(db)
    if i == 0:
        db.execute('PRAGMA journal_mode=WAL')
        db.execute('PRAGMA wal_autocheckpoint=0')
    db.execute('CREATE TABLE sv_seed (id INTEGER PRIMARY KEY, body TEXT, payload BLOB, score REAL, n INTEGER, note)')
    rows = [(k, (text + ' ') * (1 + k % 9) + str(k), hashlib.md5(str(k).encode()).digest(), k / 7, k * 2**40, None if k % 5 else 'x') for k in range(1, 501)]
    db.execute('BEGIN')
    db.executemany('INSERT INTO sv_seed VALUES (?, ?, ?, ?, ?, ?)', rows)
    db.execute('COMMIT')
    db.execute("CREATE TABLE \\"sv other ✓\\" (k TEXT PRIMARY KEY, v) WITHOUT ROWID")
    db.execute("INSERT INTO \\"sv other ✓\\" VALUES ('张三', x'00ff'), ('Zürich', 3.5), ('empty', '')")
sys.stdout.flush()
os._exit(0)
`,
  change: `import os, sqlite3, sys
kept = []
for path in sys.argv[2:]:
    db = sqlite3.connect(path, isolation_level=None)
    kept.append(db)
    db.execute("UPDATE sv_seed SET body = 'changed' WHERE id % 3 = 0")
    db.execute('DELETE FROM sv_seed WHERE id > 400')
    db.execute('CREATE TABLE sv_later (x)')
    db.execute("INSERT INTO sv_later VALUES ('after the backup')")
os._exit(0)
`,
  content: `import hashlib, json, os, sqlite3, sys
out = {}
kept = []
for path in sys.argv[2:]:
    db = sqlite3.connect(path)
    kept.append(db)
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    out[path + ' tables'] = ','.join(tables)
    for t in tables:
        rows = sorted(repr(tuple((type(v).__name__, v) for v in r)) for r in db.execute('SELECT * FROM "%s"' % t.replace('"', '""')))
        out[path + ' ' + t] = '%d %s' % (len(rows), hashlib.sha256('\\n'.join(rows).encode()).hexdigest())
sys.stdout.write(json.dumps(out))
sys.stdout.flush()
os._exit(0)
`,
};
const sqlitePy = async (m: Member, script: keyof typeof SQLITE_PY) => execIn(m.id, ['python3', '-c', SQLITE_PY[script], TEXT, ...(await sqlitePathsOf(m))], {}, '0');

/** Data in every store: rows with Chinese and other multibyte text in every database, keys, vectors, files. */
export async function seedStack(project: string, projectDir = ''): Promise<void> {
  for (const m of await membersOf(project, projectDir)) {
    if (m.kind === 'postgres') {
      for (const db of await databases(m)) {
        await psql(
          m,
          db,
          `CREATE TABLE sv_seed (id int PRIMARY KEY, body text, tags text[], payload bytea);
          INSERT INTO sv_seed SELECT i, repeat('${TEXT.replace(/'/g, "''")} ', 1 + i % 9) || i, ARRAY['标签', 'tag ' || i], decode(md5(i::text), 'hex') FROM generate_series(1, 500) i`,
        );
        const vector = await psql(m, db, "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'");
        if (vector === '1') {
          await psql(
            m,
            db,
            `CREATE EXTENSION IF NOT EXISTS vector; CREATE TABLE sv_vectors (id int PRIMARY KEY, embedding vector(384));
            INSERT INTO sv_vectors SELECT i, (SELECT array_agg(sin(i * 7 + j))::vector FROM generate_series(1, 384) j) FROM generate_series(1, 200) i`,
          );
        }
      }
    } else if (m.kind === 'mariadb') {
      await maria(
        m,
        `CREATE DATABASE IF NOT EXISTS sv CHARACTER SET utf8mb4; CREATE TABLE sv.sv_seed (id INT PRIMARY KEY, body TEXT, payload VARBINARY(64)) CHARSET=utf8mb4;
        INSERT INTO sv.sv_seed SELECT seq, CONCAT(REPEAT('${TEXT.replace(/\\/g, '\\\\').replace(/'/g, "''")} ', 1 + seq % 9), seq), UNHEX(MD5(seq)) FROM sv.seq_1_to_500;
        CREATE USER IF NOT EXISTS 'sv_reader'@'%' IDENTIFIED BY 'sv-reader-1'; GRANT SELECT ON sv.* TO 'sv_reader'@'%';`,
      );
    } else if (m.kind === 'redis') {
      await redis(m, 'SET', 'sv:text', TEXT);
      await redis(m, 'HSET', 'sv:hash', 'name', '张三', 'city', 'Zürich');
      await redis(m, 'RPUSH', 'sv:list', 'a', 'β', '😀');
      await redis(m, 'SET', 'sv:session', 'x', 'PX', '86400000');
      await redis(m, '-n', '2', 'SET', 'sv:db2', 'second database');
    } else if (m.kind === 'chroma') {
      await chromaReady(m);
      const c = await chroma<{ id: string }>(m, '/collections', { name: 'sv-seed', metadata: { note: TEXT } });
      await chroma(m, `/collections/${c.id}/add`, {
        ids: Array.from({ length: 40 }, (_, i) => `doc-${i}`),
        embeddings: Array.from({ length: 40 }, (_, i) => Array.from({ length: 384 }, (_, j) => Math.fround(Math.cos(i * 13 + j)))),
        documents: Array.from({ length: 40 }, (_, i) => `${TEXT} ${i}`),
        metadatas: Array.from({ length: 40 }, (_, i) => ({ i, lang: i % 2 ? 'zh' : 'de' })),
      });
    } else if (m.kind === 'neo4j') {
      await execIn(m.id, ['sh', '-c', `mkdir -p /data/sv && echo '${TEXT}' > /data/sv/seed.txt && chown -R 7474:7474 /data/sv`], {}, '0');
    } else if (m.kind === 'clickhouse') {
      // Plausible's kind of table: a MergeTree of events, with text, raw bytes (every byte value) and numbers; two inserts, two parts.
      await clickhouse(m, 'CREATE DATABASE IF NOT EXISTS sv_events');
      await clickhouse(m, 'CREATE TABLE sv_events.sv_seed (id UInt64, body String, payload String, score Float64, at DateTime) ENGINE = MergeTree ORDER BY id');
      for (const [from, to] of [
        [1, 300],
        [301, 500],
      ])
        await clickhouse(
          m,
          `INSERT INTO sv_events.sv_seed SELECT number, concat(arrayStringConcat(arrayMap(x -> '${TEXT.replace(/\\/g, '\\\\').replace(/'/g, "\\'")} ', range(toUInt64(1 + number % 9)))), toString(number)), concat(unhex(hex(MD5(toString(number)))), unhex(concat(hex(toUInt8(number % 256)), '00FF'))), number / 7, toDateTime(1700000000 + number) FROM system.numbers WHERE number BETWEEN ${from} AND ${to} LIMIT ${to - from + 1}`,
        );
      await clickhouse(m, 'CREATE TABLE default.sv_log (k String, v String) ENGINE = Log');
      await clickhouse(m, "INSERT INTO default.sv_log VALUES ('张三', 'Zürich'), ('empty', '')");
    }
    if (m.kind === 'sqlite') await sqlitePy(m, 'seed');
    if (m.kind === 'app') {
      for (const mount of m.mounts) await execIn(m.id, ['sh', '-c', 'mkdir -p "$1/sv-seed" && head -c 5000 /dev/urandom > "$1/sv-seed/uploaded ✓.bin"', 'sh', mount.destination], {}, '0');
    }
  }
}

/** Changes everything seeded (and some of what the apps wrote). */
export async function changeStack(project: string, projectDir = ''): Promise<void> {
  for (const m of await membersOf(project, projectDir)) {
    if (m.kind === 'postgres') {
      for (const db of await databases(m)) {
        await psql(m, db, "UPDATE sv_seed SET body = 'changed' WHERE id % 3 = 0; DELETE FROM sv_seed WHERE id > 400");
        await psql(m, db, 'DROP TABLE IF EXISTS sv_vectors');
      }
      await psql(m, 'postgres', 'CREATE DATABASE sv_made_later');
    } else if (m.kind === 'mariadb') {
      await maria(m, "UPDATE sv.sv_seed SET body = 'changed' WHERE id % 3 = 0; DELETE FROM sv.sv_seed WHERE id > 400; CREATE DATABASE sv_made_later; DROP USER 'sv_reader'@'%'");
    } else if (m.kind === 'redis') {
      await redis(m, 'FLUSHALL');
      await redis(m, 'SET', 'sv:after', 'the backup');
    } else if (m.kind === 'chroma') {
      await chromaReady(m);
      await chroma(m, '/collections/sv-seed', undefined, 'DELETE');
    } else if (m.kind === 'neo4j') {
      await execIn(m.id, ['sh', '-c', 'rm -rf /data/sv && touch /data/after-backup'], {}, '0');
    } else if (m.kind === 'clickhouse') {
      await clickhouse(m, 'DROP TABLE sv_events.sv_seed');
      await clickhouse(m, "INSERT INTO default.sv_log VALUES ('after', 'the backup')");
      await clickhouse(m, 'CREATE DATABASE sv_made_later');
    }
    if (m.kind === 'sqlite') await sqlitePy(m, 'change');
    if (m.kind === 'app') {
      for (const mount of m.mounts) await execIn(m.id, ['sh', '-c', 'rm -rf "$1/sv-seed" && echo later > "$1/after-backup.txt"', 'sh', mount.destination], {}, '0');
    }
  }
}

/** Everything seeded, read back with the stores' own tools: equal before the backup and after the restore. */
export async function stackContent(project: string, projectDir = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const m of await membersOf(project, projectDir)) {
    if (m.kind === 'postgres') {
      out[`${m.service} databases`] = (await databases(m)).join(',');
      for (const db of await databases(m)) {
        const tables = (await psql(m, db, "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog','information_schema') ORDER BY 1"))
          .split('\n')
          .filter(Boolean);
        for (const t of tables) out[`${m.service} ${db} ${t}`] = await psql(m, db, `SELECT count(*) || ' ' || coalesce(md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))), '-') FROM ${t} x`);
      }
    } else if (m.kind === 'mariadb') {
      out[`${m.service} databases`] = (await mariaDatabases(m)).join(',');
      out[`${m.service} users`] = await maria(m, "SELECT GROUP_CONCAT(CONCAT(User, '@', Host) ORDER BY User, Host) FROM mysql.global_priv");
      for (const db of await mariaDatabases(m)) {
        for (const t of (await maria(m, `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${db}' AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1`)).split('\n').filter(Boolean)) {
          const cols = (await maria(m, `SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '${db}' AND TABLE_NAME = '${t}' ORDER BY ORDINAL_POSITION`)).split('\n');
          const row = `CONCAT_WS('|', ${cols.map((c) => `IFNULL(HEX(\`${c}\`), 'NULL')`).join(', ')})`;
          out[`${m.service} ${db} ${t}`] = await maria(
            m,
            `SET SESSION group_concat_max_len = 1073741824; SELECT COUNT(*), MD5(IFNULL(GROUP_CONCAT(${row} ORDER BY ${row} SEPARATOR '\\n'), '-')) FROM \`${db}\`.\`${t}\``,
          );
        }
      }
    } else if (m.kind === 'redis') {
      for (const db of ['0', '2']) {
        const keys = (await redis(m, '-n', db, '--scan', '--pattern', 'sv:*')).split('\n').filter(Boolean).sort();
        for (const k of keys) {
          const type = await redis(m, '-n', db, 'TYPE', k);
          // --no-raw: redis-cli quotes each value and writes bytes that are not printable as \xNN, so binary values read back whole.
          const read = async (...args: string[]) => (await redis(m, '--no-raw', '-n', db, ...args)).split('\n');
          const value =
            type === 'string'
              ? (await read('GET', k)).join('|')
              : type === 'hash'
                ? (await read('HGETALL', k)).join('|')
                : type === 'set'
                  ? (await read('SMEMBERS', k))
                      .map((l) => l.replace(/^\d+\) /, ''))
                      .sort()
                      .join('|')
                  : type === 'zset'
                    ? (await read('ZRANGE', k, '0', '-1', 'WITHSCORES')).join('|')
                    : type === 'stream'
                      ? (await read('XRANGE', k, '-', '+')).join('|')
                      : (await read('LRANGE', k, '0', '-1')).join('|');
          const ttl = Number(await redis(m, '-n', db, 'PTTL', k)) > 0 ? 'ttl' : 'no ttl';
          out[`${m.service} db${db} ${k}`] = `${type} ${value} ${ttl}`;
        }
      }
    } else if (m.kind === 'chroma') {
      await chromaReady(m);
      const cols = await chroma<Array<{ id: string; name: string }>>(m, '/collections');
      out[`${m.service} collections`] = cols
        .map((c) => c.name)
        .sort()
        .join(',');
      const seed = cols.find((c) => c.name === 'sv-seed');
      if (seed) {
        const got = await chroma<{ ids: string[]; embeddings: number[][]; documents: string[] }>(m, `/collections/${seed.id}/get`, { include: ['embeddings', 'documents'] });
        const rows = got.ids.map((id, i) => JSON.stringify([id, got.embeddings[i], got.documents[i]])).sort();
        out[`${m.service} sv-seed`] = createHash('sha256').update(rows.join('\n')).digest('hex');
      }
    } else if (m.kind === 'neo4j') {
      out[`${m.service} files`] = await execIn(m.id, ['sh', '-c', 'cd /data && find . -type f -print0 | sort -z | xargs -0 sha256sum'], {}, '0');
    } else if (m.kind === 'clickhouse') {
      out[`${m.service} databases`] = (await clickhouse(m, `SELECT name FROM system.databases WHERE name NOT IN ${CLICKHOUSE_SYSTEM} ORDER BY name`)).split('\n').join(',');
      const tables = (await clickhouse(m, `SELECT concat(database, '.', name) FROM system.tables WHERE database NOT IN ${CLICKHOUSE_SYSTEM} ORDER BY 1`)).split('\n').filter(Boolean);
      for (const t of tables) {
        // In the table's order (18.16's system.columns has no position column).
        const cols = (await clickhouse(m, `SELECT name FROM system.columns WHERE concat(database, '.', table) = '${t}'`)).split('\n');
        // Every row hashed by ClickHouse itself, then summed: the same whatever the parts' order.
        out[`${m.service} ${t}`] = await clickhouse(m, `SELECT count(), sum(cityHash64(${cols.map((c) => `\`${c}\``).join(', ')})) FROM ${t}`);
      }
    }
    if (m.kind === 'sqlite') {
      for (const [k, v] of Object.entries(JSON.parse(await sqlitePy(m, 'content')) as Record<string, string>)) out[`${m.service} ${k}`] = v;
    }
    if (m.kind === 'app') {
      for (const mount of m.mounts) {
        out[`${m.service} ${mount.destination}`] = await execIn(
          m.id,
          ['sh', '-c', 'cd "$1" && find . -type f ! -name "*-wal" ! -name "*-shm" ! -name "*-journal" -print0 | sort -z | xargs -0 -r sha256sum', 'sh', mount.destination],
          {},
          '0',
        );
      }
    }
  }
  return out;
}
