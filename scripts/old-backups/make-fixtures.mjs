#!/usr/bin/env node
// Writes the fixture backups of test/fixtures/old-backups/ with earlier stackvault versions:
// for each commit, that version is checked out into a temporary git worktree and built there,
// a tiny stack holding every store type is started under a fixed Compose project name, seeded
// (test/support/stack-content.ts, plus a few more Redis types), its content read with the
// stores' own tools (what the restore of the fixture must bring back, kept as
// expected-content.json), backed up by that version's own CLI, then deep-verified (and drilled)
// by it, as a backup that lived a while would be. Everything it starts is
// removed again. Run from the repository (Node >= 23.6, which reads the .ts helper as is):
//
//   node scripts/old-backups/make-fixtures.mjs            # every version below
//   node scripts/old-backups/make-fixtures.mjs 9261f20    # one of them again
//
// The passwords are the test suite's (test/support/containers.ts): the fixture test starts its
// stack with the same ones. None of them may appear in a manifest; this script checks that.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OUT = join(ROOT, 'test/fixtures/old-backups');
const { seedStack, stackContent, execIn } = await import(join(ROOT, 'test/support/stack-content.ts'));

/**
 * The versions, one per era of the manifest: the first day's (gzip by default, no content
 * fingerprints, and a Chroma driver that looked for /chroma/chroma, so its backup is partial);
 * before drivers declared their details (#13), and before MariaDB; the day drivers declared
 * them; the day before manifests were validated whole and SQLite fingerprints became sqlite-v3
 * (Redis redis-v4, Chroma chroma-api-v2).
 */
const VERSIONS = ['301e1a8', '9261f20', '2d73fdf', '492a2dd'];

const PASSWORDS = { postgres: 'pg-Secret-4242', redis: 'redis-Secret-4242', neo4j: 'neo4j-Secret-4242', mariadb: 'mariadb-Secret-4242' };
const IMAGES = {
  postgres: 'stackvault-local/postgres:17',
  redis: 'stackvault-local/redis:7',
  mariadb: 'stackvault-local/mariadb:11',
  chroma: 'stackvault-local/chroma:1',
  neo4j: 'stackvault-local/neo4j:5-standin',
  appstub: 'stackvault-local/appstub:1',
};
/** The Compose project a fixture's stack runs under; the fixture test starts its stack under the same name. */
const projectOf = (commit) => `sv-oldformat-${commit.slice(0, 7)}`;

const docker = new Docker();
const git = (...args) => execFileSync('git', ['-C', ROOT, ...args], { encoding: 'utf8' }).trim();
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 28 });

async function start(project, service, image, options = {}) {
  const c = await docker.createContainer({
    name: `${project}-${service}`,
    Image: image,
    Env: Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`),
    Cmd: options.cmd,
    Labels: { 'com.docker.compose.project': project, 'com.docker.compose.service': service, ...options.labels },
    HostConfig: { Binds: options.binds },
  });
  await c.start();
  return c;
}

async function until(what, check) {
  for (let i = 0; i < 240; i++) {
    if (await check().then(Boolean, () => false)) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${what} did not come up`);
}

const healthy = async (c) => (await c.inspect()).State.Health?.Status === 'healthy';

async function removeProject(project) {
  for (const c of await docker.listContainers({ all: true, filters: { label: [`com.docker.compose.project=${project}`] } })) await docker.getContainer(c.Id).remove({ force: true, v: true });
}

async function startStack(project, withMariadb, sqliteDir) {
  await removeProject(project);
  const cs = [
    await start(project, 'postgres', IMAGES.postgres, { env: { POSTGRES_USER: 'botadmin', POSTGRES_PASSWORD: PASSWORDS.postgres, POSTGRES_DB: 'bot' } }),
    await start(project, 'redis', IMAGES.redis, { cmd: ['redis-server', '--requirepass', PASSWORDS.redis], env: { REDISCLI_AUTH: PASSWORDS.redis } }),
    await start(project, 'chroma', IMAGES.chroma),
    await start(project, 'neo4j', IMAGES.neo4j, { env: { NEO4J_AUTH: `neo4j/${PASSWORDS.neo4j}` } }),
    await start(project, 'app', IMAGES.appstub, { labels: { 'stackvault.sqlite.paths': '/srv/db/app.db,/srv/db/state/jobs' }, binds: [`${sqliteDir}:/srv/db`] }),
  ];
  if (withMariadb) cs.push(await start(project, 'mariadb', IMAGES.mariadb, { env: { MARIADB_ROOT_PASSWORD: PASSWORDS.mariadb, MARIADB_DATABASE: 'app' } }));
  const [pg, redis, ...rest] = cs;
  await until('postgres', async () => {
    await execIn(pg.id, ['pg_isready', '-U', 'botadmin', '-d', 'bot']);
    return true;
  });
  await until('redis', async () => (await execIn(redis.id, ['redis-cli', 'ping'], { REDISCLI_AUTH: PASSWORDS.redis })).includes('PONG'));
  for (const c of rest) await until(c.id, () => healthy(c));
}

/** Seeds the stack as the other integration tests do, with more Redis types and nothing that expires before the fixture is read. */
async function seed(project) {
  await seedStack(project);
  const service = async (name) => (await docker.listContainers({ filters: { label: [`com.docker.compose.project=${project}`, `com.docker.compose.service=${name}`] } }))[0];
  const mariadb = await service('mariadb');
  // MariaDB's built-in help pages are 450 KB of every fixture's dump; the fixture keeps the rest of the mysql schema.
  if (mariadb)
    await execIn(mariadb.Id, ['mariadb', '-uroot', '-e', 'DELETE FROM mysql.help_relation; DELETE FROM mysql.help_keyword; DELETE FROM mysql.help_topic; DELETE FROM mysql.help_category'], {
      MYSQL_PWD: PASSWORDS.mariadb,
    });
  const redis = await service('redis');
  const cli = (...args) => execIn(redis.Id, ['redis-cli', ...args], { REDISCLI_AUTH: PASSWORDS.redis });
  await cli('PEXPIREAT', 'sv:session', '4102444800000'); // 2100-01-01: still there whenever the fixture is restored
  await cli('SADD', 'sv:set', 'eins', 'двa', '三');
  await cli('ZADD', 'sv:zset', '1.5', 'a', '-2', 'ü', '0.1', 'c');
  await cli('XADD', 'sv:stream', '1-1', 'field', 'wert ✓', 'n', '1');
  await cli('XADD', 'sv:stream', '2-1', 'field', 'zwei');
  await cli('EVAL', "return redis.call('SET', KEYS[1], string.char(0, 255, 1, 128, 10, 13) .. 'bytes')", '1', 'sv:binary');
}

async function makeFixture(commit) {
  const sha = git('rev-parse', `${commit}^{commit}`);
  const short = sha.slice(0, 7);
  const date = git('show', '-s', '--format=%cd', '--date=format:%Y-%m-%d', sha);
  const label = `${date}-${short}`;
  const project = projectOf(short);
  const work = join(tmpdir(), `sv-oldformat-${short}`);
  const sqliteDir = mkdtempSync(join(tmpdir(), `sv-oldformat-${short}-app-`));
  const dir = mkdtempSync(join(tmpdir(), `sv-oldformat-${short}-dir-`));
  console.log(`${label}: building ${short} in ${work}`);
  if (existsSync(work)) git('worktree', 'remove', '--force', work);
  git('worktree', 'add', '--detach', work, sha);
  try {
    // Its own dependencies, unless its lock file is this checkout's (then the same modules serve).
    if (spawnSync('git', ['-C', ROOT, 'diff', '--quiet', sha, 'HEAD', '--', 'package-lock.json']).status === 0) symlinkSync(join(ROOT, 'node_modules'), join(work, 'node_modules'));
    else run('npm', ['ci', '--no-fund', '--no-audit', '--loglevel=error'], work);
    run(join(work, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], work);
    const withMariadb = existsSync(join(work, 'src/drivers/mariadb.ts'));
    await startStack(project, withMariadb, sqliteDir);
    await seed(project);
    const expected = await stackContent(project);
    console.log(`${label}: backing up project ${project} with ${short}`);
    // Its CLI straight from its build: its bot.sh would check its dependencies through the link.
    const created = spawnSync(process.execPath, [join(work, 'dist/cli.js'), 'backup', 'create', '--project', project, '--dir', dir, '--comment', `fixture written by stackvault ${short}`], {
      cwd: work,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    // 3: partial, kept as the version wrote it (the test restores what it holds).
    if (created.status !== 0 && created.status !== 3) throw new Error(`${short}'s backup create exited ${created.status}`);
    const [id] = readdirSync(dir).filter((n) => /_backup_\d{8}_\d{6}/.test(n));
    // A backup that lived a while: proven by that version's verify --deep (which records its
    // content fingerprints in the form of then) and, where it had one, its drill.
    const old = (...args) => run(process.execPath, [join(work, 'dist/cli.js'), 'backup', ...args, id, '--dir', dir], work);
    const withDrill = existsSync(join(work, 'src/core/drill.ts'));
    old('verify', '--deep');
    if (withDrill) old('drill');
    const manifest = readFileSync(join(dir, id, 'manifest.json'), 'utf8');
    const info = readFileSync(join(dir, id, 'backup_info.txt'), 'utf8');
    for (const secret of Object.values(PASSWORDS)) if (manifest.includes(secret) || info.includes(secret)) throw new Error(`${id}'s manifest or backup_info.txt holds a password`);
    const failed = JSON.parse(manifest).services.filter((s) => s.status !== 'ok');
    const target = join(OUT, label);
    rmSync(target, { recursive: true, force: true });
    mkdirSync(target, { recursive: true });
    cpSync(join(dir, id), join(target, id), { recursive: true });
    writeFileSync(join(target, 'expected-content.json'), `${JSON.stringify({ project, id, content: expected }, null, 2)}\n`);
    writeFileSync(
      join(target, 'README.md'),
      `# ${id}\n\nWritten by stackvault at commit ${sha} (${date}, \`git show ${short}\`) with \`backup create --project ${project}\`,\n` +
        `of a stack of ${withMariadb ? 'PostgreSQL, MariaDB' : 'PostgreSQL'}, Redis, Chroma, the Neo4j stand-in and a SQLite app on the local images,\n` +
        'seeded by test/support/stack-content.ts (plus a set, a sorted set, a stream and a binary string in Redis),\n' +
        `then \`backup verify --deep\`${withDrill ? ' and `backup drill`' : ''} by the same version (their records are in the manifest).\n` +
        (failed.length ? `Partial: ${failed.map((s) => `${s.name} ${s.status} (${s.error})`).join('; ')}.\n` : '') +
        "`expected-content.json` is that stack read with the stores' own tools just before the backup.\n\n" +
        `Regenerate: \`node scripts/old-backups/make-fixtures.mjs ${short}\` (test/fixtures/old-backups/README.md).\n`,
    );
    console.log(`${label}: ${id} written to ${target}`);
  } finally {
    await removeProject(project);
    rmSync(sqliteDir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
    git('worktree', 'remove', '--force', work);
  }
}

for (const commit of process.argv.length > 2 ? process.argv.slice(2) : VERSIONS) await makeFixture(commit);
