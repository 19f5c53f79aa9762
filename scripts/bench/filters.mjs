// How fast the restore's own SQL filters read a dump: `backup create` runs every PostgreSQL and
// MariaDB dump through them as it is written (to know whether the restore would refuse it), and
// `backup restore` runs the dump through them again before the client. Prints MB/s and the
// ratio against SHA-256 of the same bytes in the same run (which every backup pays anyway).
//
//   node scripts/bench/filters.mjs [--rows N] [--runs N]
//
// Starts one PostgreSQL and one MariaDB container on the local images, fills each with the same
// rows (text with quotes, backslashes and non-ASCII, numbers, JSON, binary), dumps them the way
// stackvault does into a temporary directory, and times each filter over its file in-process.
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { bash, docker, run, sleep } from './proc.mjs';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '600000' }, runs: { type: 'string', default: '3' } } });
const rows = Number(values.rows);
const runs = Number(values.runs);
const { DUMP_ARGS, HostileSqlFilter } = await import('../../dist/drivers/mariadb.js');
const { PgRestoreFilter } = await import('../../dist/drivers/pg-restore-filter.js');
const { RefusalJudge } = await import('../../dist/util/refusal-judge.js');

const prefix = `svbench-filters-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'svbench-filters-'));
const names = { pg: `${prefix}-pg`, maria: `${prefix}-maria` };

async function until(check) {
  for (let i = 0; i < 240; i++) {
    if (
      await check().then(
        () => true,
        () => false,
      )
    )
      return;
    await sleep(500);
  }
  throw new Error('a container did not become ready in 2 minutes');
}

async function dumpTo(file, args) {
  await bash(`docker ${args.join(' ')} > '${file}'`);
  return statSync(file).size;
}

async function seed() {
  await docker('run', '-d', '--name', names.pg, '-e', 'POSTGRES_PASSWORD=bench-only', 'stackvault-local/postgres:17');
  await docker('run', '-d', '--name', names.maria, '-e', 'MARIADB_ROOT_PASSWORD=bench-only', '-e', 'MARIADB_DATABASE=bench', 'stackvault-local/mariadb:11');
  await until(() => run('docker', ['exec', names.pg, 'psql', '-U', 'postgres', '-Atqc', 'SELECT 1']));
  await until(() => run('docker', ['exec', names.maria, 'mariadb', '-uroot', '-pbench-only', 'bench', '-e', 'SELECT 1']));
  await run('docker', ['exec', '-i', names.pg, 'psql', '-U', 'postgres', '-v', 'ON_ERROR_STOP=1', '-q'], {
    input: `CREATE TABLE t (id int PRIMARY KEY, name text, body text, n float8, j jsonb, b bytea);
INSERT INTO t SELECT i, 'name ' || i || ' o''brien "q" é \\ tab' || chr(9), repeat(md5(i::text), 4), i * 1.5,
  jsonb_build_object('k', i, 's', md5(i::text)), decode(md5(i::text), 'hex') FROM generate_series(1, ${rows}) i;`,
  });
  await run('docker', ['exec', '-i', names.maria, 'mariadb', '-uroot', '-pbench-only', 'bench'], {
    input: `SET SESSION max_recursive_iterations = ${rows + 1};
CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(100), body TEXT, n DOUBLE, j JSON, b BLOB);
INSERT INTO t WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${rows})
  SELECT i, CONCAT('name ', i, ' o''brien "q" é \\\\ tab\t'), REPEAT(MD5(i), 4), i * 1.5, JSON_OBJECT('k', i, 's', MD5(i)), UNHEX(MD5(i)) FROM s;`,
  });
  const pgSize = await dumpTo(join(dir, 'pg.sql'), ['exec', names.pg, 'pg_dumpall', '-U', 'postgres', '--clean', '--if-exists', '--quote-all-identifiers']);
  const mariaSize = await dumpTo(join(dir, 'maria.sql'), ['exec', names.maria, 'mariadb-dump', '-uroot', '-pbench-only', ...DUMP_ARGS]);
  return { pg: pgSize, maria: mariaSize };
}

/** Seconds to stream `file` in 64 KiB chunks into `sink()`. */
async function seconds(file, sink) {
  const t0 = performance.now();
  await pipeline(createReadStream(file, { highWaterMark: 1 << 16 }), sink());
  return (performance.now() - t0) / 1000;
}

const sha256 = () => {
  const h = createHash('sha256');
  return new Writable({
    write(chunk, _e, cb) {
      h.update(chunk);
      cb();
    },
    final(cb) {
      h.digest();
      cb();
    },
  });
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  const sizes = await seed();
  const filters = {
    pg: () => new RefusalJudge(new PgRestoreFilter('postgres', false, { major: 17, restrictKey: 'benchKey0123456789' })),
    pgUnguarded: () => new RefusalJudge(new PgRestoreFilter('postgres', false, { major: 13 })),
    maria: () => new RefusalJudge(new HostileSqlFilter()),
  };
  const label = { pg: 'PostgreSQL, psql with \\restrict', pgUnguarded: 'PostgreSQL, older psql', maria: 'MariaDB' };
  const fileOf = { pg: 'pg', pgUnguarded: 'pg', maria: 'maria' };
  console.log(`rows ${rows}; median of ${runs} runs; machine: ${(await import('node:os')).cpus().length} cores`);
  for (const kind of ['pg', 'pgUnguarded', 'maria']) {
    const file = join(dir, `${fileOf[kind]}.sql`);
    const mb = sizes[fileOf[kind]] / 1e6;
    const hash = [];
    const filter = [];
    for (let i = 0; i < runs; i++) {
      hash.push(await seconds(file, sha256));
      const judge = filters[kind]();
      filter.push(await seconds(file, () => judge));
      if (judge.refused) throw new Error(`the ${label[kind]} refused the benchmark's own dump: ${judge.refused}`);
    }
    const [h, f] = [median(hash), median(filter)];
    console.log(
      `${label[kind].padEnd(32)} dump ${mb.toFixed(0)} MB: filter ${(mb / f).toFixed(0)} MB/s (${f.toFixed(2)} s), SHA-256 ${(mb / h).toFixed(0)} MB/s; filter/SHA-256 ${(f / h).toFixed(1)}x`,
    );
  }
} finally {
  await run('docker', ['rm', '-f', '-v', names.pg, names.maria]).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
