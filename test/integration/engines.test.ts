import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { execa } from 'execa';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName, PG_PASSWORD, PG_SUPERUSER, REDIS_PASSWORD, startApp, startChroma, startNeo4j } from '../support/containers.js';
import { IMAGES } from '../support/images.js';
import { startSftpServer } from '../support/restic-server.js';
import { type SecondEngine, startOn, startSecondEngine } from '../support/second-engine.js';
import { alsoOnEngine, changeStack, seedStack, stackContent } from '../support/stack-content.js';

const readAll = async (stream: NodeJS.ReadableStream) => {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};
const compose = (project: string, service: string) => ({ 'com.docker.compose.project': project, 'com.docker.compose.service': service });

/**
 * One stack over two real Docker engines on this machine: Chroma, the Neo4j stand-in and the
 * app on the first (local socket), Postgres and Redis on a second dockerd reached over tcp://
 * with mutual TLS through a `docker context`, and over ssh:// through an openssh server.
 */
describe('one backup across two Docker engines', () => {
  const project = newProjectName('engines');
  let second: SecondEngine;
  let sftp: Awaited<ReturnType<typeof startSftpServer>>;
  let onFirst: StartedTestContainer[] = [];
  let onSecond: Array<{ stop(): Promise<void> }> = [];
  let dir: string;
  let env: Record<string, string>;
  const HOSTS = 'local=unix:///var/run/docker.sock nas';

  beforeAll(async () => {
    second = await startSecondEngine([IMAGES.postgres, IMAGES.redis]);
    alsoOnEngine(second.docker);
    // The docker CLI's own context store, in a directory of this test.
    const dockerConfig = await mkdtemp(join(tmpdir(), 'svt-docker-config-'));
    const c = second.clientCerts;
    await execa('docker', ['context', 'create', 'nas', '--docker', `host=${second.tcp},ca=${join(c, 'ca.pem')},cert=${join(c, 'cert.pem')},key=${join(c, 'key.pem')}`], {
      env: { DOCKER_CONFIG: dockerConfig },
    });
    [sftp, ...onFirst] = await Promise.all([startSftpServer({ dockerSocket: second.socket }), startChroma({ project }), startNeo4j({ project }), startApp({ project })]);
    onSecond = await Promise.all([
      startOn(second.docker, {
        image: IMAGES.postgres,
        labels: compose(project, 'postgres'),
        env: { POSTGRES_USER: PG_SUPERUSER, POSTGRES_PASSWORD: PG_PASSWORD, POSTGRES_DB: 'bot' },
        ready: ['pg_isready', '-U', PG_SUPERUSER, '-d', 'bot'],
      }),
      startOn(second.docker, {
        image: IMAGES.redis,
        labels: compose(project, 'redis'),
        cmd: ['redis-server', '--requirepass', REDIS_PASSWORD],
        env: { REDISCLI_AUTH: REDIS_PASSWORD },
        ready: ['redis-cli', 'ping'],
      }),
    ]);
    dir = await tempDir('engines');
    env = { ...sftp.env, DOCKER_CONFIG: dockerConfig };
  });
  afterAll(async () => {
    await Promise.all([...onFirst, ...onSecond, sftp?.container].map((c) => c?.stop().catch(() => undefined)));
    await second?.stop();
  });

  let id: string;
  it('backs the stack up from both engines with --offsite, loses the local directory, restores from the SFTP repository exactly', async () => {
    await seedStack(project);
    const seeded = await stackContent(project);
    expect(Object.keys(seeded).some((k) => k.startsWith('postgres '))).toBe(true);
    const r = await bot(['backup', 'create', '--json', '--offsite', '--project', project, '--dir', dir, '--host', 'local=unix:///var/run/docker.sock', '--host', 'nas'], { env, timeout: 300_000 });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const m = JSON.parse(String(r.stdout)) as Manifest;
    id = m.id;
    expect(Object.fromEntries(m.services.map((s) => [s.name, `${s.status}@${s.engine}`]))).toEqual({
      app: 'ok@local',
      chroma: 'ok@local',
      neo4j: 'ok@local',
      postgres: 'ok@nas',
      redis: 'ok@nas',
    });
    expect(m.engines?.nas?.url).toBe(second.tcp);
    expect(m.engines?.local?.url).toBe('unix:///var/run/docker.sock');
    expect(JSON.stringify(m)).not.toContain(PG_PASSWORD);
    const list = await bot(['backup', 'list', '--dir', dir], { env });
    expect(String(list.stdout)).toMatch(/postgres@nas/);

    await rm(dir, { recursive: true });
    await changeStack(project);
    expect(await stackContent(project)).not.toEqual(seeded);
    const back = await bot(['backup', 'restore', id, '--yes', '--dir', dir], { env: { ...env, STACKVAULT_HOSTS: HOSTS }, timeout: 400_000 });
    expect(back.exitCode, String(back.stdout) + String(back.stderr)).toBe(0);
    expect(String(back.stdout)).toMatch(/fetching it from the restic repository sftp:/);
    expect(String(back.stdout).match(/content equal|equal/g)?.length).toBeGreaterThanOrEqual(5);
    expect(await stackContent(project)).toEqual(seeded);
  });

  it('verify --deep starts each throwaway on the engine its service ran on', async () => {
    const since = Math.floor(Date.now() / 1000);
    const r = await bot(['backup', 'verify', id, '--deep', '--dir', dir], { env: { ...env, STACKVAULT_HOSTS: HOSTS }, timeout: 400_000 });
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    const until = Math.ceil(Date.now() / 1000) + 1;
    // Throwaways of this backup directory, by image, as each engine saw them created.
    const throwaways = async (docker: Docker) =>
      [
        ...new Set(
          String(await docker.getEvents({ since, until, filters: { type: ['container'], event: ['create'], label: [`stackvault.throwaway-for=${dir}`] } }).then(readAll))
            .split('\n')
            .filter(Boolean)
            .map((l) => (JSON.parse(l) as { Actor: { Attributes: Record<string, string> } }).Actor.Attributes.image),
        ),
      ].sort();
    expect(await throwaways(second.docker)).toEqual([IMAGES.postgres, IMAGES.redis]);
    const onLocal = await throwaways(new Docker());
    expect(onLocal.filter((image) => image === IMAGES.postgres || image === IMAGES.redis)).toEqual([]);
  });

  it('a backup from an engine that is not given, an unknown context, an engine that is down: one sentence each, nothing changed', async () => {
    const before = await stackContent(project);
    const missing = await bot(['backup', 'restore', id, '--yes', '--dir', dir, '--host', 'local=unix:///var/run/docker.sock'], { env });
    expect(missing.exitCode).toBe(2);
    expect(String(missing.stderr)).toMatch(/backed up from the Docker engine 'nas', which is not among the engines given \(local\)/);
    const typo = await bot(['backup', 'create', '--project', project, '--dir', dir, '--host', 'nsa'], { env });
    expect(typo.exitCode).toBe(2);
    expect(String(typo.stderr)).toMatch(/There is no docker context named 'nsa'/);
    const plain = await bot(['backup', 'create', '--project', project, '--dir', dir, '--host', 'ghost=tcp://127.0.0.1:1'], { env });
    expect(plain.exitCode).toBe(2);
    expect(String(plain.stderr)).toMatch(/would be reached without TLS/);
    const down = await bot(['backup', 'create', '--project', project, '--dir', dir, '--host', 'local=unix:///var/run/docker.sock', '--host', 'ghost=tcp://127.0.0.1:1'], {
      env: { ...env, STACKVAULT_INSECURE_TCP: '1' },
    });
    expect(down.exitCode).toBe(6);
    expect(String(down.stderr)).toMatch(/The Docker engine 'ghost' at tcp:\/\/127\.0\.0\.1:1 is unreachable/);
    const password = await bot(['backup', 'create', '--dir', dir, '--host', 'x=ssh://me:hunter2@nas'], { env });
    expect(password.exitCode).toBe(2);
    expect(String(password.stderr) + String(password.stdout)).not.toContain('hunter2');
    expect(await stackContent(project)).toEqual(before);
  });

  it('reaches an engine over ssh:// with the system ssh (key, config and known_hosts of the user)', async () => {
    const sshDir = await tempDir('engines-ssh');
    const only = ['--project', project, '--only', 'postgres,redis', '--dir', sshDir, '--host', 'tunnel=ssh://sv-sftp'];
    const seeded = await stackContent(project);
    const r = await bot(['backup', 'create', '--json', ...only], { env, timeout: 300_000 });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const m = JSON.parse(String(r.stdout)) as Manifest;
    expect(m.services.map((s) => `${s.name}@${s.engine}`).sort()).toEqual(['postgres@tunnel', 'redis@tunnel']);
    expect(m.engines?.tunnel?.url).toBe('ssh://sv-sftp');
    await changeStack(project);
    const back = await bot(['backup', 'restore', m.id, '--yes', '--dir', sshDir, '--host', 'tunnel=ssh://sv-sftp'], { env, timeout: 300_000 });
    expect(back.exitCode, String(back.stdout) + String(back.stderr)).toBe(0);
    const now = await stackContent(project);
    for (const k of Object.keys(seeded).filter((k) => /^(postgres|redis) /.test(k))) expect(now[k], k).toEqual(seeded[k]);
  });
});
