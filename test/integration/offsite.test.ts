import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, psql, startApp, startNeo4j, startPostgres, startRedis } from '../support/containers.js';
import { type ResticServer, startResticServer, startSftpServer } from '../support/restic-server.js';
import { changeStack, seedStack, stackContent } from '../support/stack-content.js';
import { execa } from 'execa';

const PASSWORD = 'offsite-Secret-4242';

/** Offsite copies in a real restic REST server (rclone serve restic), faults included. */
describe('offsite copies in a restic repository', () => {
  const project = newProjectName('offsite');
  let containers: StartedTestContainer[];
  let server: ResticServer;
  let dir: string;
  let seeded: Record<string, string>;
  const run = (args: string[], env: Record<string, string> = server.env) => bot(args, { env, timeout: 300_000 });
  const create = async (env?: Record<string, string>) => {
    const r = await run(['backup', 'create', '--json', '--offsite', '--project', project, '--dir', dir], env);
    return { r, m: r.stdout ? (JSON.parse(String(r.stdout)) as Manifest) : undefined };
  };
  const manifestOf = async (id: string) => JSON.parse(await readFile(join(dir, id, 'manifest.json'), 'utf8')) as Manifest;
  const restic = async (args: string[]) => String((await execa('restic', ['--no-lock', ...args], { env: server.env })).stdout);
  /** The first two backups' snapshots, by the path each stream is stored under. */
  const snapshotsByPath = async () => {
    const all = JSON.parse(await restic(['snapshots', '--json'])) as Array<{ id: string; time: string; paths: string[] }>;
    const byPath: Record<string, string[]> = {};
    for (const s of all.sort((x, y) => x.time.localeCompare(y.time))) (byPath[s.paths[0]!] ??= []).push(s.id);
    return byPath;
  };
  const repoBytes = async () => Number((await execa('du', ['-sb', join(server.dir, 'repo')])).stdout.split('\t')[0]);

  beforeAll(async () => {
    [server, ...containers] = await Promise.all([startResticServer(PASSWORD), startPostgres({ project }), startRedis({ project }), startNeo4j({ project }), startApp({ project })]);
    await seedStack(project);
    // Enough rows that the dump is many restic chunks (512 KiB to 8 MiB each), as a real one is.
    await psql(containers[0]!, 'bot', "CREATE TABLE bulk AS SELECT g AS id, md5(g::text) || repeat(' naïve ☕', 8) AS body FROM generate_series(1, 300000) g");
    seeded = await stackContent(project);
    dir = await tempDir('offsite');
  });
  afterAll(async () => {
    await Promise.all(containers.map((c) => c.stop()));
    await server?.stop();
  });

  let first: Manifest;
  it('stores a backup offsite (creating the repository); a second one of the unchanged stack adds little', async () => {
    const a = await create();
    expect(a.r.exitCode, String(a.r.stderr)).toBe(0);
    first = a.m!;
    expect(String(a.r.stderr)).toMatch(new RegExp(`✅ ${first.id} stored offsite \\(snapshot \\w+, new repository\\)`));
    expect((await manifestOf(first.id)).offsite).toMatchObject({ ok: true });
    const afterFirst = await repoBytes();
    const b = await create();
    expect(b.r.exitCode, String(b.r.stderr)).toBe(0);
    const growth = (await repoBytes()) - afterFirst;
    // Per stream: the chunks restic stored for the first backup, and those the second added.
    // pg_dumpall writes a new random \restrict key at both ends of each dump, so a stream of an
    // unchanged store may differ in its first and last chunk; everything between is shared.
    // Bytes alone cannot say this: restic picks a random chunker per repository, so two changed
    // chunks are 1 MiB or 16 MiB, and a byte bound is either loose or flaky.
    const streams = await snapshotsByPath();
    const added: Record<string, number> = {};
    for (const [path, [one, two]] of Object.entries(streams)) {
      const diff = await restic(['diff', '--json', one!, two!]);
      const stats = JSON.parse(diff.split('\n').filter(Boolean).at(-1)!) as { added: { data_blobs: number } };
      added[path] = stats.added.data_blobs;
    }
    const pgChunks = JSON.parse(await restic(['stats', '--json', '--mode', 'raw-data', streams['/postgres.sql']![0]!])).total_blob_count as number;
    console.log(
      `offsite: repository ${afterFirst} bytes after the first backup (raw ${first.services.reduce((n, s) => n + (s.rawBytes ?? 0), 0)}), +${growth} after a second of the unchanged stack; postgres ${pgChunks} chunks; new chunks per stream ${JSON.stringify(added)}`,
    );
    expect(Object.keys(added).sort()).toEqual(['/app.tar', '/neo4j.tar', '/postgres.sql', '/redis.tar', '/stackvault-offsite.json']);
    expect(pgChunks).toBeGreaterThanOrEqual(4); // several chunks, so "at most two new" says something
    for (const [path, n] of Object.entries(added)) expect(n, path).toBeLessThanOrEqual(2);
    for (const out of [a.r, b.r]) expect(String(out.stdout) + String(out.stderr)).not.toContain(PASSWORD);
    expect(JSON.stringify(await manifestOf(first.id))).not.toContain(PASSWORD);
  });

  it('list --remote shows what the repository holds beside the local backups', async () => {
    const r = await run(['backup', 'list', '--remote', '--json', '--dir', dir]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const { local, remote } = JSON.parse(String(r.stdout)) as { local: Manifest[]; remote: Array<{ id: string; type: string }> };
    expect(remote.map((x) => x.id).sort()).toEqual(local.map((x) => x.id).sort());
    const text = await run(['backup', 'list', '--remote', '--dir', dir]);
    expect(String(text.stdout)).toMatch(/2 backups in the restic repository rest:http:\/\/127\.0\.0\.1:\d+\/, newest first/);
  });

  it('a server that goes down mid-upload: the local backup stays, exit 10; the next run stores it too', async () => {
    // New rows, so this upload has megabytes of new chunks to send, and the server drops out after the first.
    await psql(containers[0]!, 'bot', 'CREATE TABLE bulk2 AS SELECT g AS id, md5((g * 7)::text) AS body FROM generate_series(1, 200000) g');
    server.set({ cutAfterBytes: 1_000_000 });
    const cut = await create({ ...server.env, STACKVAULT_OFFSITE_RETRY_SECONDS: '8' }).finally(() => server.set('up'));
    expect(cut.r.exitCode, String(cut.r.stderr)).toBe(10);
    const failedId = cut.m!.id;
    expect(String(cut.r.stderr)).toMatch(new RegExp(`❌ ${failedId} NOT stored offsite: .*kept locally`));
    expect((await manifestOf(failedId)).offsite).toMatchObject({ ok: false });
    const listed = JSON.parse(String((await run(['backup', 'list', '--remote', '--json', '--dir', dir])).stdout)) as { remote: Array<{ id: string }> };
    expect(listed.remote.map((x) => x.id)).not.toContain(failedId); // a broken upload is never listed
    const next = await create();
    expect(next.r.exitCode, String(next.r.stderr)).toBe(0);
    expect(String(next.r.stderr)).toMatch(new RegExp(`✅ ${failedId} stored offsite`));
    expect((await manifestOf(failedId)).offsite).toMatchObject({ ok: true });
    await psql(containers[0]!, 'bot', 'DROP TABLE bulk2');
  });

  it('a wrong password or a server that is down: one sentence, exit 10, before or after the local backup', async () => {
    const wrongFile = join(dir, '..', `wrong-${project}`);
    await writeFile(wrongFile, 'not-the-password', { mode: 0o600 });
    const wrong = await run(['backup', 'list', '--remote', '--dir', dir], { ...server.env, RESTIC_PASSWORD_FILE: wrongFile });
    expect(wrong.exitCode).toBe(10);
    expect(String(wrong.stderr)).toMatch(/The restic password does not open the repository rest:http/);
    server.set('down');
    const down = await run(['backup', 'list', '--remote', '--dir', dir]).finally(() => server.set('up'));
    expect(down.exitCode).toBe(10);
    expect(String(down.stderr)).toMatch(/cannot be reached/);
    const unset = await run(['backup', 'create', '--offsite', '--project', project, '--dir', dir], { RESTIC_REPOSITORY: '' });
    expect(unset.exitCode).toBe(2);
    expect(String(unset.stderr)).toMatch(/RESTIC_REPOSITORY is not set/);
  });

  it('restore of a backup that is only offsite: fetched, checked, restored exactly', async () => {
    await rm(join(dir, first.id), { recursive: true });
    await changeStack(project);
    expect(await stackContent(project)).not.toEqual(seeded);
    const r = await run(['backup', 'restore', first.id, '--yes', '--dir', dir]);
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    expect(String(r.stdout)).toMatch(new RegExp(`${first.id} is not in .*: fetching it from the restic repository`));
    expect(await stackContent(project)).toEqual(seeded);
    const fetched = await manifestOf(first.id);
    expect(fetched.fetchedFrom?.repository).toMatch(/^rest:http/);
    expect(fetched.services.filter((s) => s.status === 'ok').every((s) => s.compression === 'none' || s.encryption)).toBe(true);
  });
});

describe('offsite retention, verification and schedule', () => {
  const project = newProjectName('offsite-ret');
  let containers: StartedTestContainer[];
  let server: ResticServer;
  let dir: string;
  const run = (args: string[], env: Record<string, string> = server.env) => bot(args, { env, timeout: 300_000 });
  const remoteIds = async () => (JSON.parse(String((await run(['backup', 'list', '--remote', '--json', '--dir', dir])).stdout)) as { remote: Array<{ id: string; type: string }> }).remote;

  beforeAll(async () => {
    [server, ...containers] = await Promise.all([startResticServer(PASSWORD), startPostgres({ project }), startRedis({ project })]);
    await psql(containers[0]!, 'bot', 'CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g');
    dir = await tempDir('offsite-ret');
  });
  afterAll(async () => {
    await Promise.all(containers.map((c) => c.stop()));
    await server?.stop();
  });

  it('prune --remote forgets by the same rules as on disk; manual backups and the newest stay', async () => {
    const ids: string[] = [];
    for (const type of ['manual', 'pre-update', 'pre-update']) {
      const r = await run(['backup', 'create', '--json', '--offsite', '--type', type, '--project', project, '--dir', dir]);
      expect(r.exitCode, String(r.stderr)).toBe(0);
      ids.push((JSON.parse(String(r.stdout)) as Manifest).id);
    }
    const p = await run(['backup', 'prune', '--remote', '--keep-pre-update', '1', '--dir', dir]);
    expect(p.exitCode, String(p.stderr)).toBe(0);
    expect(String(p.stdout)).toMatch(new RegExp(`forgot ${ids[1]} in the restic repository: pre-update: older than the last 1`));
    expect((await remoteIds()).map((r) => r.id).sort()).toEqual([ids[0], ids[2]].sort());
  });

  it('scheduler trigger --offsite stores the run offsite, then applies retention in both places', async () => {
    const r = await run(['scheduler', 'trigger', '--offsite', '--type', 'daily', '--project', project, '--dir', dir]);
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    expect(String(r.stdout)).toMatch(/offsite stackvault_backup_\w+: stored \(snapshot \w+/);
    expect((await remoteIds()).some((x) => x.type === 'daily')).toBe(true);
  });

  it('"offsite": true in the policy file stores every backup offsite, without the flag', async () => {
    await writeFile(join(dir, 'retention.json'), JSON.stringify({ offsite: true }));
    try {
      const r = await run(['backup', 'create', '--json', '--project', project, '--dir', dir]);
      expect(r.exitCode, String(r.stderr)).toBe(0);
      const id = (JSON.parse(String(r.stdout)) as Manifest).id;
      expect((await remoteIds()).map((x) => x.id)).toContain(id);
    } finally {
      await rm(join(dir, 'retention.json'));
    }
  });

  it('prune --remote forgets the snapshots of uploads that broke off, and only those', async () => {
    const kept = (await remoteIds()).map((r) => r.id);
    const stored = kept[0]!;
    // What an upload cut off after its first artifact leaves: an artifact snapshot no meta names.
    const orphan = (id: string, time?: string) =>
      execa('restic', ['backup', '--quiet', '--stdin', '--stdin-filename', 'postgres.sql', '--tag', `stackvault,sv-id:${id},sv-part:artifact`, ...(time ? ['--time', time] : [])], {
        env: server.env,
        input: `cut off ${id}`,
      });
    await orphan(stored); // a retry stored that backup since: goes at once
    await orphan('stackvault_backup_20200101_000000', '2020-01-01 00:00:00'); // never stored, long ago: goes
    await orphan('stackvault_backup_20990101_000000'); // never stored, just now: may still be uploading, stays
    const snapshots = async () => JSON.parse((await execa('restic', ['snapshots', '--json'], { env: server.env })).stdout) as Array<{ id: string; tags?: string[] }>;
    const before = await snapshots();
    const p = await run(['backup', 'prune', '--remote', '--keep-daily', '365', '--keep-pre-update', '10', '--dir', dir]);
    expect(p.exitCode, String(p.stderr)).toBe(0);
    expect(String(p.stdout)).toMatch(/forgot 2 snapshots of uploads that broke off/);
    const after = await snapshots();
    expect(before.length - after.length).toBe(2);
    const has = (id: string) => after.some((x) => x.tags?.includes(`sv-id:${id}`));
    expect(has('stackvault_backup_20990101_000000')).toBe(true);
    expect(has('stackvault_backup_20200101_000000')).toBe(false);
    expect((await remoteIds()).map((r) => r.id)).toEqual(kept);
    // Every backup it kept still comes back whole.
    const v = await run(['backup', 'verify', stored, '--remote', '--dir', dir]);
    expect(v.exitCode, String(v.stdout) + String(v.stderr)).toBe(0);
  });

  it('a crafted record in the repository cannot smuggle restic flags or paths: exit 5, nothing fetched', async () => {
    const mine = JSON.parse(String((await run(['backup', 'list', '--json', '--dir', dir])).stdout)) as Manifest[];
    const manifest = { ...mine[0]!, id: 'stackvault_backup_20300101_000000' };
    const pwned = join(dir, '..', `pwned-${project}`);
    for (const [name, snapshot] of [
      ['postgres.sql', `--password-command=touch ${pwned}`],
      ['../../etc/evil', '0123abcd'],
    ]) {
      const meta = { format: 1, manifest, files: { [manifest.services[0]!.name]: { name, compression: 'none', sha256: '0'.repeat(64), bytes: 1, snapshot } } };
      await execa('restic', ['backup', '--stdin', '--stdin-filename', 'stackvault-offsite.json', '--tag', 'stackvault', '--tag', `sv-id:${manifest.id}`, '--tag', 'sv-part:meta'], {
        input: JSON.stringify(meta),
        env: server.env,
      });
      const r = await run(['backup', 'restore', manifest.id, '--yes', '--dir', dir]);
      expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(5);
      expect(String(r.stderr)).toMatch(/not a (plain name|snapshot ID)/);
      await expect(readFile(pwned)).rejects.toThrow();
      expect((await execa('ls', ['-a', dir])).stdout).not.toMatch(/fetch|stackvault_backup_2030/);
    }
    const crafted = JSON.parse((await execa('restic', ['snapshots', '--json', '--tag', `sv-id:${manifest.id}`], { env: server.env })).stdout) as Array<{ id: string }>;
    await execa('restic', ['forget', ...crafted.map((c) => c.id)], { env: server.env });
  });

  it('verify --remote reads the repository back and checks every artifact; a damaged pack is found (exit 5)', async () => {
    const ok = await run(['backup', 'verify', 'latest', '--remote', '--read-data-subset', '100%', '--dir', dir]);
    expect(ok.exitCode, String(ok.stdout) + String(ok.stderr)).toBe(0);
    expect(String(ok.stdout)).toMatch(/✅ repository: no errors were found/);
    expect(String(ok.stdout)).toMatch(/\(fetched from the restic repository\): all 2 artifacts verified/);
    // An attacker (or a failing disk) flips bytes in one of the repository's data packs.
    const packs = (await execa('find', [join(server.dir, 'repo', 'data'), '-type', 'f'])).stdout.split('\n').filter(Boolean);
    const pack = packs[0]!;
    const bytes = await readFile(pack);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    await writeFile(pack, bytes);
    const bad = await run(['backup', 'verify', 'latest', '--remote', '--read-data-subset', '100%', '--dir', dir]);
    expect(bad.exitCode, String(bad.stdout) + String(bad.stderr)).toBe(5);
    expect(String(bad.stderr)).toMatch(/failed its check/);
  });
});

describe('offsite over SFTP (openssh-server, a key made here)', () => {
  const project = newProjectName('offsite-sftp');
  let containers: StartedTestContainer[];
  let sftp: Awaited<ReturnType<typeof startSftpServer>>;
  let dir: string;

  beforeAll(async () => {
    [sftp, ...containers] = await Promise.all([startSftpServer(), startPostgres({ project }), startRedis({ project }), startApp({ project })]);
    dir = await tempDir('offsite-sftp');
  });
  afterAll(async () => {
    await Promise.all([...containers, sftp?.container].map((c) => c?.stop()));
  });

  it('backs up with --offsite, loses the local directory, restores from the SFTP repository exactly', async () => {
    await seedStack(project);
    const seeded = await stackContent(project);
    const r = await bot(['backup', 'create', '--json', '--offsite', '--project', project, '--dir', dir], { env: sftp.env, timeout: 300_000 });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const id = (JSON.parse(String(r.stdout)) as Manifest).id;
    await rm(dir, { recursive: true });
    await changeStack(project);
    const back = await bot(['backup', 'restore', id, '--yes', '--dir', dir], { env: sftp.env, timeout: 300_000 });
    expect(back.exitCode, String(back.stdout) + String(back.stderr)).toBe(0);
    expect(String(back.stdout)).toMatch(/fetching it from the restic repository sftp:sv-sftp:\/srv\/restic\/repo/);
    expect(await stackContent(project)).toEqual(seeded);
  });
});
