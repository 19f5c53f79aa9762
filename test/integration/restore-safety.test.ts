import { createHash } from 'node:crypto';
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { Header } from 'tar';
import { chromaApi, NEO4J_PASSWORD, newProjectName, redisCli, startApp, startChromaOldLayout, startPostgres, startRedis, startAll, untilAnswers } from '../support/containers.js';
import { IMAGES } from '../support/images.js';
import { CHROMA_COLLECTION, seedChroma, snapshotChroma } from '../support/seed.js';
import { handMadeTar, rawArtifact, replaceArtifact, rewriteArtifact } from '../support/tamper.js';

const readManifest = async (dir: string, id: string) => JSON.parse(await readFile(join(dir, id, 'manifest.json'), 'utf8')) as Manifest;
const restorePoints = async (dir: string) => (await readdir(dir)).filter((n) => n.startsWith('restore-point'));
const exists = async (c: StartedTestContainer, path: string) => (await c.exec(['test', '-e', path])).exitCode === 0;

/**
 * A compose layout taken from real stacks: Chroma 1.x persists to /data, but the volume is
 * mounted at /chroma/chroma (0.x docs). Then hostile backups of it, refused before anything changes.
 */
describe('Chroma with its volume at /chroma/chroma, and hostile archives', () => {
  const project = newProjectName('chromalayout');
  let chroma: StartedTestContainer;
  let dir: string;
  let backup: Manifest;
  let seeded: string;

  beforeAll(async () => {
    chroma = await startChromaOldLayout(project, await tempDir('chroma-vol'));
    await seedChroma(chroma);
    seeded = await snapshotChroma(chroma);
    dir = await tempDir('chromalayout');
    const created = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(created.exitCode, String(created.stderr)).toBe(0);
    backup = JSON.parse(String(created.stdout)) as Manifest;
  });

  afterAll(async () => {
    await chroma?.stop().catch(() => undefined);
  });

  /** A fresh backup of the Chroma service whose archive is replaced by hand-written entries (checksums fixed). */
  async function backupWithArchive(prefix: string, entries: Parameters<typeof handMadeTar>[0]): Promise<{ copy: string; m: Manifest }> {
    const copy = await tempDir(prefix);
    const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', copy]);
    const m = JSON.parse(String(c.stdout)) as Manifest;
    await replaceArtifact(join(copy, m.id), 'chromadb', handMadeTar(entries));
    return { copy, m };
  }

  it('archives the directory Chroma really persists to, and warns that it is not on a volume', () => {
    const entry = backup.services[0]!;
    expect(entry.details!.paths).toEqual(['/data']);
    expect(entry.warnings).toEqual(
      expect.arrayContaining([expect.stringContaining('/chroma/chroma is not where Chroma keeps its data (/data, from its command line)'), expect.stringContaining('/data is not on a volume')]),
    );
  });

  it('restores it, proven by the content read back through the Chroma API', async () => {
    const api = chromaApi(chroma);
    await untilAnswers(() => api('/collections')); // the backup stopped and started it
    await api(`/collections/${CHROMA_COLLECTION}`, { method: 'DELETE' });
    await api('/collections', { body: { name: 'made-after-the-backup' } });
    const r = await bot(['backup', 'restore', backup.id, '--dir', dir, '--yes', '--json']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(JSON.parse(String(r.stdout)).services).toEqual([expect.objectContaining({ status: 'restored', check: 'equal' })]);
    expect(await snapshotChroma(chroma)).toBe(seeded);
  });

  it('an archive entry outside the recorded paths refuses the restore before a byte is written (exit 5)', async () => {
    const { copy, m } = await backupWithArchive('hostile-entry', [
      { path: 'data/', type: 'Directory' },
      { path: 'data/chroma.sqlite3', data: 'x' },
      { path: 'usr/local/bin/pwned', data: '#!/bin/sh\necho pwned\n' },
    ]);
    const r = await bot(['backup', 'restore', m.id, '--dir', copy, '--yes']);
    expect(r.exitCode).toBe(5);
    expect(String(r.stderr)).toContain("'usr/local/bin/pwned', which is not under any recorded path");
    expect(await exists(chroma, '/usr/local/bin/pwned')).toBe(false);
    expect(await restorePoints(copy)).toEqual([]);
  });

  it('a recorded path inside a system directory is refused (exit 5), whatever the archive holds', async () => {
    const { copy, m } = await backupWithArchive('hostile-path', [
      { path: 'etc/', type: 'Directory' },
      { path: 'etc/stackvault-pwned', data: 'x' },
    ]);
    const manifest = await readManifest(copy, m.id);
    manifest.services[0]!.details!.paths = ['/etc'];
    await writeFile(join(copy, m.id, 'manifest.json'), JSON.stringify(manifest));
    const r = await bot(['backup', 'restore', m.id, '--dir', copy, '--yes']);
    expect(r.exitCode).toBe(5);
    expect(String(r.stderr)).toContain('inside the system directory /etc');
    expect(await exists(chroma, '/etc/stackvault-pwned')).toBe(false);
    expect(await restorePoints(copy)).toEqual([]);
  });
});

/** A tar header as a hostile archive writes it: any type, any size. */
function rawHeader(path: string, type: string, size: number, o: { linkpath?: string; mode?: number } = {}): Buffer {
  const h = new Header({ path, type: type as 'File', size, linkpath: o.linkpath ?? '', mode: o.mode ?? 0o644, uid: 0, gid: 0, mtime: new Date(0) });
  h.encode();
  return h.block!;
}
const padded = (data: Buffer) => Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
const rawFile = (path: string, data: string, mode = 0o755) => Buffer.concat([rawHeader(path, 'File', Buffer.byteLength(data), { mode }), padded(Buffer.from(data))]);

/** An honest tar with `extra` put after its last entry (walked header by header: its trailer is dropped). */
function appended(tar: Buffer, extra: Buffer): Buffer {
  let at = 0;
  while (at + 512 <= tar.length && tar.subarray(at, at + 512).some((b) => b !== 0)) {
    const size = Number.parseInt(
      tar
        .subarray(at + 124, at + 136)
        .toString('latin1')
        .replace(/\0.*$/, '')
        .trim() || '0',
      8,
    );
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return Buffer.concat([tar.subarray(0, at), extra, Buffer.alloc(1024)]);
}

/**
 * HUNT-TAR.md F1 and F2, on the layout they broke: Neo4j with its /data volume and a host
 * directory bound read-write at /conf, which no backup records. On the old code, F1's entries
 * replaced the container's entrypoint (run as root at every start) and wrote into the host
 * directory; F2's carried a setuid-root shell and a device node onto the host.
 */
describe('hostile archives that lead outside the recorded paths (a read-write host bind beside them)', () => {
  const project = newProjectName('escape');
  const entrypoint = '/usr/local/bin/neo4j-standin';
  let neo4j: StartedTestContainer;
  let hostDir: string;
  let entrypointSha: string;

  beforeAll(async () => {
    hostDir = await tempDir('host-bind');
    neo4j = await new GenericContainer(IMAGES.neo4j)
      .withLabels({ 'com.docker.compose.project': project, 'com.docker.compose.service': 'neo4j' })
      .withEnvironment({ NEO4J_AUTH: `neo4j/${NEO4J_PASSWORD}` })
      .withBindMounts([{ source: hostDir, target: '/conf', mode: 'rw' }])
      .withWaitStrategy(Wait.forHealthCheck())
      .start();
    entrypointSha = await sha256In(neo4j, entrypoint);
  });

  afterAll(async () => {
    await neo4j?.stop().catch(() => undefined);
  });

  const sha256In = async (c: StartedTestContainer, path: string) =>
    createHash('sha256')
      .update((await c.exec(['cat', path])).output)
      .digest('hex');
  const payload = '#!/bin/sh\necho "ran from a restored backup as $(id -u)" >> /PWNED-BY-RESTORE\nexec sleep infinity\n';
  const hidden = Buffer.concat([
    rawFile('usr/local/bin/suid-shell', '#!/bin/sh\nid\n', 0o4755),
    rawHeader('conf/host-char-device', 'CharacterDevice', 0, { mode: 0o666 }),
    rawFile('conf/host-suid-shell', '#!/bin/sh\nid\n', 0o4755),
  ]);

  it.each([
    [
      'F1: a -> ., b -> a/.., then files through data/./b',
      Buffer.concat([
        rawHeader('data/a', 'SymbolicLink', 0, { linkpath: '.', mode: 0o777 }),
        rawHeader('data/b', 'SymbolicLink', 0, { linkpath: 'a/..', mode: 0o777 }),
        rawFile(`data/./b${entrypoint}`, payload),
        rawFile('data/./b/conf/written-on-the-host.sh', '#!/bin/sh\necho put on the host by a restore\n'),
      ]),
      "the archive entry 'data/b' is unsafe: symlink to a/.. uses '..'",
    ],
    [
      'F2: a symlink whose size carries more entries (setuid shells, a device node)',
      Buffer.concat([rawHeader('data/carrier', 'SymbolicLink', hidden.length, { linkpath: 'databases', mode: 0o777 }), hidden]),
      `a SymbolicLink entry with ${hidden.length} bytes of content, which Docker would read as further entries`,
    ],
    [
      // Needs the entries before it (a link made earlier): verify judged entries alone and said ✅.
      'F5: a -> ., then a hard link named through it',
      Buffer.concat([rawHeader('data/a', 'SymbolicLink', 0, { linkpath: '.', mode: 0o777 }), rawHeader('data/h', 'Link', 0, { linkpath: 'data/a/dbms/auth', mode: 0o644 })]),
      "the hard link 'data/h' names data/a/dbms/auth through the symlink 'data/a'",
    ],
  ])('%s: verify and restore refuse it (exit 5), and nothing is written outside /data', async (_what, extra, message) => {
    const copy = await tempDir('escape');
    const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', copy]);
    expect(c.exitCode, String(c.stderr)).toBe(0);
    const m = JSON.parse(String(c.stdout)) as Manifest;
    await replaceArtifact(join(copy, m.id), 'neo4j', appended(await rawArtifact(join(copy, m.id), m.services[0]!.artifact!), extra));

    const v = await bot(['backup', 'verify', m.id, '--dir', copy]);
    expect(v.exitCode, String(v.stdout)).toBe(5);
    expect(String(v.stdout) + String(v.stderr)).toContain(message);
    const r = await bot(['backup', 'restore', m.id, '--dir', copy, '--yes']);
    expect(r.exitCode, String(r.stderr)).toBe(5);
    expect(String(r.stderr)).toContain(message);

    expect(await readdir(hostDir)).toEqual([]);
    expect(await sha256In(neo4j, entrypoint)).toBe(entrypointSha);
    for (const path of ['/PWNED-BY-RESTORE', '/usr/local/bin/suid-shell', '/data/a', '/data/carrier']) expect(await exists(neo4j, path), path).toBe(false);
    expect(await restorePoints(copy)).toEqual([]);
  });
});

describe('typos and hostile dumps change nothing', () => {
  const project = newProjectName('typos');
  let app: StartedTestContainer;
  let pg: StartedTestContainer;

  beforeAll(async () => {
    [app, pg] = await startAll([startApp({ project, labels: { 'stackvault.driver': 'sqlite', 'stackvault.sqlite.paths': '/app/data/app.db,/app/data/nosuch.db' } }), startPostgres({ project })]);
  });

  afterAll(async () => {
    await Promise.all([app, pg].map((c) => c?.stop().catch(() => undefined)));
  });

  it('a mistyped SQLite path fails that service with one sentence and creates nothing in the container', async () => {
    const dir = await tempDir('typo');
    const r = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(r.exitCode).toBe(3); // postgres ok, the app failed
    const m = JSON.parse(String(r.stdout)) as Manifest;
    const entry = m.services.find((s) => s.name === 'app')!;
    expect(entry.status).toBe('failed');
    expect(entry.error).toContain('/app/data/nosuch.db does not exist in the container (check the stackvault.sqlite.paths label)');
    expect(await exists(app, '/app/data/nosuch.db')).toBe(false);
  });

  it('a dump holding a shell escape is refused before anything changes (exit 5)', async () => {
    const dir = await tempDir('hostile-sql');
    const c = await bot(['backup', 'create', '--json', '--project', project, '--only', 'postgres', '--dir', dir]);
    const m = JSON.parse(String(c.stdout)) as Manifest;
    await rewriteArtifact(join(dir, m.id), 'postgres', (sql) => sql.replace('\\connect "bot"', '\\connect "bot"\n\\! touch /tmp/stackvault-pwned'));
    const r = await bot(['backup', 'restore', m.id, '--dir', dir, '--yes']);
    expect(r.exitCode).toBe(5);
    expect(String(r.stderr)).toContain('the psql command \\!');
    expect(await exists(pg, '/tmp/stackvault-pwned')).toBe(false);
    expect(await restorePoints(dir)).toEqual([]);
  });

  it("a shell escape hidden from stackvault's reading of the dump is stopped by psql's own guard (\\restrict)", async () => {
    const dir = await tempDir('hidden-sql');
    const c = await bot(['backup', 'create', '--json', '--project', project, '--only', 'postgres', '--dir', dir]);
    const m = JSON.parse(String(c.stdout)) as Manifest;
    // With standard_conforming_strings off (set by a function call the reading does not follow),
    // psql reads `\'` as a quote inside the string, so the string runs on to the next line's
    // quote and the command after it is psql's; read with the setting on, the command is quoted
    // text. (Without \restrict, psql is put back to the dump's setting: pg-old-psql.test.ts.)
    await rewriteArtifact(join(dir, m.id), 'postgres', (sql) =>
      sql.replace(
        '\\connect "bot"',
        () => "\\connect \"bot\"\nSELECT pg_catalog.set_config('standard_conforming_strings', 'off', false);\nSELECT 'a\\';\nSELECT ' \\! touch /tmp/stackvault-pwned\n';",
      ),
    );
    const r = await bot(['backup', 'restore', m.id, '--dir', dir, '--yes']);
    expect(r.exitCode, String(r.stderr)).not.toBe(0);
    // psql stopped at the command; the restore put the restore point back.
    expect(String(r.stdout)).toMatch(/NOT restored, back on the restore point: replaying the dump stopped at an error: backslash commands are restricted/);
    expect(await exists(pg, '/tmp/stackvault-pwned')).toBe(false);
  });
  it('a statement that switches psql to SJIS cannot make a \\connect run a backquote while psql is unrestricted', async () => {
    // In SJIS 0x81 takes the quote after it, so psql would end the quoted dbname early and run
    // the backquoted text in a shell (proven by hand below); the replay puts psql back in
    // SQL_ASCII before each command it lets through.
    const lines = Buffer.concat([
      Buffer.from("SELECT pg_catalog.set_config('client_encoding', 'SJIS', false);\n\\connect -reuse-previous=on \"dbname='a", 'latin1'),
      Buffer.from([0x81]),
      Buffer.from('""`touch /tmp/stackvault-pwned`\'"\n', 'latin1'),
    ]);
    await pg.copyContentToContainer([{ content: lines, target: '/tmp/hostile.sql' }]);
    await pg.exec(['psql', '-U', 'botadmin', '-d', 'bot', '-X', '-q', '-f', '/tmp/hostile.sql']);
    expect(await exists(pg, '/tmp/stackvault-pwned')).toBe(true);
    await pg.exec(['rm', '-f', '/tmp/stackvault-pwned']);

    const dir = await tempDir('sjis-connect');
    const c = await bot(['backup', 'create', '--json', '--project', project, '--only', 'postgres', '--dir', dir]);
    const m = JSON.parse(String(c.stdout)) as Manifest;
    const entry = m.services.find((s) => s.name === 'postgres')!;
    const raw = await rawArtifact(join(dir, m.id), entry.artifact!);
    const at = raw.indexOf('\\connect "bot"\n') + '\\connect "bot"\n'.length;
    await replaceArtifact(join(dir, m.id), 'postgres', Buffer.concat([raw.subarray(0, at), lines, raw.subarray(at)]));
    const r = await bot(['backup', 'restore', m.id, '--dir', dir, '--yes']);
    expect(r.exitCode, String(r.stderr)).not.toBe(0); // psql cannot connect to that name: the restore point goes back
    expect(await exists(pg, '/tmp/stackvault-pwned')).toBe(false);
  });
});

describe('a Redis RDB with commands after its end', () => {
  const project = newProjectName('rdbtail');
  let redis: StartedTestContainer;
  afterAll(async () => {
    await redis?.stop().catch(() => undefined);
  });

  it('is refused before anything changes (exit 5): with AOF on, Redis would run them', async () => {
    redis = await startRedis({ project, appendonly: true });
    await redisCli(redis, 'SET', 'greeting', 'hello');
    const dir = await tempDir('rdbtail');
    const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(c.exitCode, String(c.stderr)).toBe(0);
    const m = JSON.parse(String(c.stdout)) as Manifest;
    // The artifact's dump.rdb, as a tar entry: everything between its header and the padding.
    const tar = await rawArtifact(join(dir, m.id), m.services[0]!.artifact!);
    const size = Number.parseInt(tar.subarray(124, 136).toString('latin1').trim(), 8);
    expect(tar.subarray(0, 8).toString('latin1')).toBe('dump.rdb');
    const rdb = tar.subarray(512, 512 + size);
    const hidden = Buffer.from('*3\r\n$3\r\nSET\r\n$6\r\npwned!\r\n$1\r\n1\r\n');
    await replaceArtifact(join(dir, m.id), 'redis', handMadeTar([{ path: 'dump.rdb', data: Buffer.concat([rdb, hidden]) }]));
    await redisCli(redis, 'SET', 'greeting', 'changed after the backup');

    const r = await bot(['backup', 'restore', m.id, '--dir', dir, '--yes']);
    expect(r.exitCode, String(r.stderr)).toBe(5);
    expect(String(r.stderr)).toContain(`the backup's RDB carries ${hidden.length} bytes after its end`);
    expect(await redisCli(redis, '--raw', 'GET', 'greeting')).toBe('changed after the backup');
    expect(await redisCli(redis, '--raw', 'EXISTS', 'pwned!')).toBe('0');
    expect(await restorePoints(dir)).toEqual([]);
  });

  /**
   * HUNT-TAR F3: the check passed one file and the restore read another. Whoever can write to
   * the backup directory swaps in, once the restore point starts (after the check and the
   * confirmation), a file of the same length whose RDB is followed by commands. The restore
   * must write the bytes it checked: Redis gets the honest RDB, and runs none of the commands.
   */
  it('a file swapped in after the check is not what is restored: the checked RDB is, and no hidden command runs', async () => {
    const swapProject = newProjectName('rdbswap');
    const target = await startRedis({ project: swapProject, appendonly: true });
    try {
      await redisCli(target, 'SET', 'greeting', 'hello');
      const dir = await tempDir('rdbswap');
      const c = await bot(['backup', 'create', '--json', '--project', swapProject, '--dir', dir]);
      expect(c.exitCode, String(c.stderr)).toBe(0);
      const m = JSON.parse(String(c.stdout)) as Manifest;
      const backupPath = join(dir, m.id);
      const tar = await rawArtifact(backupPath, m.services[0]!.artifact!);
      const rdb = tar.subarray(512, 512 + Number.parseInt(tar.subarray(124, 136).toString('latin1').trim(), 8));
      const resp = (...args: string[]) => Buffer.from(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
      const hidden = Buffer.concat([resp('ACL', 'SETUSER', 'svtest-backdoor', 'on', '>not-a-real-password', '~*', '&*', '+@all'), resp('CONFIG', 'SET', 'maxmemory', '1mb')]);
      // Uncompressed, so the two files have the same length: the honest one as checked, the other swapped in.
      const checked = handMadeTar([{ path: 'dump.rdb', data: rdb }]);
      const swapped = handMadeTar([{ path: 'dump.rdb', data: Buffer.concat([rdb, hidden]) }]);
      expect(swapped.length).toBe(checked.length);
      const manifest = await readManifest(dir, m.id);
      const entry = manifest.services[0]!;
      const artifact = join(backupPath, entry.artifact!);
      Object.assign(entry, { compression: 'none', bytes: checked.length, rawBytes: checked.length, sha256: createHash('sha256').update(checked).digest('hex') });
      await writeFile(join(backupPath, 'manifest.json'), JSON.stringify(manifest));
      await writeFile(artifact, checked);
      await writeFile(`${artifact}.swap`, swapped);
      await redisCli(target, 'SET', 'greeting', 'changed after the backup');

      // The swap, as soon as the restore point's temporary directory appears.
      let watching = true;
      const swap = (async () => {
        while (watching) {
          if ((await readdir(dir)).some((n) => n.startsWith('.tmp-restore-point'))) {
            await rename(`${artifact}.swap`, artifact);
            return true;
          }
          await new Promise((r) => setTimeout(r, 10));
        }
        return false;
      })();
      const r = await bot(['backup', 'restore', m.id, '--dir', dir, '--yes', '--json']);
      watching = false;
      expect(await swap).toBe(true);
      expect((await readFile(artifact)).equals(swapped)).toBe(true); // the directory held the other file during the restore

      expect(r.exitCode, String(r.stderr)).toBe(0);
      expect(JSON.parse(String(r.stdout)).services).toEqual([expect.objectContaining({ status: 'restored', check: 'equal' })]);
      expect(await redisCli(target, '--raw', 'GET', 'greeting')).toBe('hello');
      expect(await redisCli(target, '--raw', 'ACL', 'USERS')).not.toContain('svtest-backdoor');
      expect(await redisCli(target, '--raw', 'CONFIG', 'GET', 'maxmemory')).toBe('maxmemory\n0');
      // The AOF base Redis loads at every start is the checked RDB, byte for byte.
      const base = await target.exec(['sh', '-c', 'wc -c < /data/appendonlydir/appendonly.aof.1.base.rdb']);
      expect(Number(base.output.trim())).toBe(rdb.length);
      expect((await readdir(dir)).filter((n) => n.startsWith('.tmp-'))).toEqual([]); // the staged copy is gone
    } finally {
      await target.stop().catch(() => undefined);
    }
  });
});

/**
 * Each driver's `details` schema is checked before anything acts on a manifest: a record that
 * its driver would never write is refused with exit 5 by restore, verify and drill alike.
 */
describe('a manifest record its driver would never write', () => {
  const project = newProjectName('details');
  let app: StartedTestContainer;
  beforeAll(async () => {
    app = await startApp({ project, labels: { 'stackvault.sqlite.paths': '/app/data/app.db' } });
  });
  afterAll(async () => {
    await app?.stop().catch(() => undefined);
  });

  it('is refused (exit 5) before a restore point, a throwaway or a file is made', async () => {
    const dir = await tempDir('details');
    const c = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(c.exitCode, String(c.stderr)).toBe(0);
    const m = JSON.parse(String(c.stdout)) as Manifest;
    const manifest = await readManifest(dir, m.id);
    const files = manifest.services[0]!.details!.files as Array<{ entry: string }>;
    files[0]!.entry = '../../../tmp/stackvault-details-pwned';
    await writeFile(join(dir, m.id, 'manifest.json'), JSON.stringify(manifest));
    for (const args of [
      ['backup', 'restore', m.id, '--yes'],
      ['backup', 'verify', m.id, '--deep'],
      ['backup', 'drill', m.id],
    ]) {
      const r = await bot([...args, '--dir', dir]);
      expect(r.exitCode, `${args.join(' ')}: ${String(r.stdout)}${String(r.stderr)}`).toBe(5);
      // verify names it on the service's line, restore and drill in their one sentence.
      expect(String(r.stdout) + String(r.stderr)).toContain('details.files[0].entry is not a name stackvault writes');
    }
    expect(await restorePoints(dir)).toEqual([]);
    expect(await readdir('/tmp')).not.toContain('stackvault-details-pwned');
    const Docker = (await import('dockerode')).default;
    const throwaways = (await new Docker().listContainers({ all: true })).filter((d) => d.Labels['stackvault.drill-for'] === m.id);
    expect(throwaways).toEqual([]);
  });
});
