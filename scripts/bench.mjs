#!/usr/bin/env node
// Benchmarks `backup create` on a seeded stack of the project's local images and prints
// figures, with ratios against a baseline measured in the same run:
//   1. compression: gzip (baseline) vs zstd vs none: time and size;
//   2. parallelism: --parallel 1 (baseline) vs --parallel 4: wall time.
// Usage: node scripts/bench.mjs [--runs N]   (needs the engine, images and a build: scripts/test.sh)
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const runs = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 3;
const project = `svbench-${process.pid}`;
const cli = join(import.meta.dirname, '..', 'dist', 'cli.js');
const docker = (...args) => execFileSync('docker', args, { encoding: 'utf8' }).trim();
const started = [];

function start(name, image, args = [], env = []) {
  const id = docker('run', '-d', '--label', `com.docker.compose.project=${project}`, '--label', `com.docker.compose.service=${name}`, ...env.flatMap((e) => ['-e', e]), image, ...args);
  started.push(id);
  return id;
}
const waitFor = (id, cmd) => {
  for (let i = 0; i < 120; i++) {
    if (spawnSync('docker', ['exec', id, ...cmd]).status === 0) return;
    execFileSync('sleep', ['0.5']);
  }
  throw new Error(`${cmd.join(' ')} never succeeded`);
};

function backup(flags) {
  const dir = mkdtempSync(join(tmpdir(), 'svbench-'));
  const t0 = process.hrtime.bigint();
  const r = spawnSync('node', [cli, 'backup', 'create', '--json', '--project', project, '--dir', dir, ...flags], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`backup failed: ${r.stderr}`);
  const m = JSON.parse(r.stdout);
  rmSync(dir, { recursive: true, force: true });
  return { ms, bytes: m.services.reduce((t, s) => t + s.bytes, 0), raw: m.services.reduce((t, s) => t + s.rawBytes, 0) };
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const measure = (flags) => {
  const results = Array.from({ length: runs }, () => backup(flags));
  return { ms: median(results.map((r) => r.ms)), bytes: results[0].bytes, raw: results[0].raw };
};
const mb = (b) => `${(b / 1048576).toFixed(1)} MB`;

try {
  console.log(`Seeding project ${project}...`);
  const pg = start('postgres', 'stackvault-local/postgres:17', [], ['POSTGRES_USER=bench', 'POSTGRES_PASSWORD=bench-only']);
  const redis = start('redis', 'stackvault-local/redis:7');
  const neo4j = start('neo4j', 'stackvault-local/neo4j:5-standin', [], ['NEO4J_AUTH=none']);
  waitFor(pg, ['psql', '-U', 'bench', '-c', 'select 1']);
  waitFor(redis, ['redis-cli', 'ping']);
  waitFor(neo4j, ['test', '-f', '/data/databases/neo4j/neostore']);
  docker(
    'exec',
    pg,
    'psql',
    '-U',
    'bench',
    '-qc',
    "CREATE TABLE messages AS SELECT g AS id, md5(g::text) AS author, repeat('conversation text ', 1 + g % 9) AS body, jsonb_build_object('n', g, 'tag', g % 17) AS meta FROM generate_series(1, 600000) g",
  );
  docker('exec', redis, 'redis-cli', 'EVAL', "for i=1,150000 do redis.call('SET','session:'..i, string.rep('token', 20)..i) end", '0');
  docker('exec', '-u', '7474', neo4j, 'bash', '-c', 'head -c 40000000 /dev/urandom > /data/databases/neo4j/nodes.db && head -c 30000000 /dev/urandom | base64 > /data/databases/neo4j/strings.db');

  console.log(`\nCompression (median of ${runs} runs, all services, --parallel 4):`);
  const gzip = measure(['--compress', 'gzip']);
  const rows = [
    ['gzip', gzip],
    ['zstd', measure(['--compress', 'zstd'])],
    ['none', measure(['--compress', 'none'])],
  ];
  console.log('codec   time       on disk     raw        time/gzip  size/gzip');
  for (const [name, r] of rows) {
    console.log(
      `${name.padEnd(7)} ${(r.ms / 1000).toFixed(2).padStart(6)} s  ${mb(r.bytes).padStart(10)}  ${mb(r.raw).padStart(9)}  ${(r.ms / gzip.ms).toFixed(2).padStart(8)}x  ${(r.bytes / gzip.bytes).toFixed(2).padStart(8)}x`,
    );
  }

  console.log(`\nParallelism (median of ${runs} runs, gzip):`);
  const one = measure(['--parallel', '1']);
  const four = measure(['--parallel', '4']);
  console.log(`--parallel 1  ${(one.ms / 1000).toFixed(2)} s   (baseline)`);
  console.log(`--parallel 4  ${(four.ms / 1000).toFixed(2)} s   ${(four.ms / one.ms).toFixed(2)}x the time of --parallel 1`);
} finally {
  for (const id of started) spawnSync('docker', ['rm', '-f', '-v', id]);
}
