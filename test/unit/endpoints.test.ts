import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultEndpoint, parseHosts, redactUrl } from '../../src/docker/endpoints.js';

/** A docker CLI config directory holding contexts laid out as `docker context create` writes them. */
function dockerConfig(contexts: Record<string, { host: string; tls?: boolean }>, current?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'svt-docker-config-'));
  for (const [name, c] of Object.entries(contexts)) {
    const id = createHash('sha256').update(name).digest('hex');
    mkdirSync(join(dir, 'contexts', 'meta', id), { recursive: true });
    writeFileSync(join(dir, 'contexts', 'meta', id, 'meta.json'), JSON.stringify({ Name: name, Endpoints: { docker: { Host: c.host, SkipTLSVerify: false } } }));
    if (c.tls) {
      mkdirSync(join(dir, 'contexts', 'tls', id, 'docker'), { recursive: true });
      for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(dir, 'contexts', 'tls', id, 'docker', f), 'pem');
    }
  }
  if (current) writeFileSync(join(dir, 'config.json'), JSON.stringify({ currentContext: current }));
  return dir;
}

describe('--host values', () => {
  const config = dockerConfig({ nas: { host: 'tcp://10.0.0.5:2376', tls: true }, pi: { host: 'ssh://pi@raspberry' } });
  const env = { DOCKER_CONFIG: config };
  const tls = join(config, 'contexts', 'tls', createHash('sha256').update('nas').digest('hex'), 'docker');

  it.each([
    ['a unix socket', ['local=unix:///var/run/docker.sock'], [{ name: 'local', url: 'unix:///var/run/docker.sock' }]],
    ['ssh with a user and port', ['edge=ssh://admin@edge.lan:2222'], [{ name: 'edge', url: 'ssh://admin@edge.lan:2222' }]],
    ['a context by its own name', ['nas'], [{ name: 'nas', url: 'tcp://10.0.0.5:2376', tlsDir: tls, context: 'nas' }]],
    ['a context under another name', ['store=pi'], [{ name: 'store', url: 'ssh://pi@raspberry', context: 'pi' }]],
    [
      'several in one string (STACKVAULT_HOSTS)',
      ['local=unix:///run/docker.sock, nas'],
      [
        { name: 'local', url: 'unix:///run/docker.sock' },
        { name: 'nas', url: 'tcp://10.0.0.5:2376', tlsDir: tls, context: 'nas' },
      ],
    ],
    ['nothing', [], []],
  ])('%s', (_what, values, expected) => {
    expect(parseHosts(values, env)).toEqual(expected);
  });

  it('tcp:// without TLS only when asked for (STACKVAULT_INSECURE_TCP=1)', () => {
    expect(parseHosts(['b=tcp://10.0.0.9:2375'], { ...env, STACKVAULT_INSECURE_TCP: '1' })).toEqual([{ name: 'b', url: 'tcp://10.0.0.9:2375' }]);
  });

  it('tcp:// takes TLS files from DOCKER_CERT_PATH, as the docker CLI does', () => {
    expect(parseHosts(['b=tcp://10.0.0.9:2376'], { ...env, DOCKER_CERT_PATH: '/etc/certs' })).toEqual([{ name: 'b', url: 'tcp://10.0.0.9:2376', tlsDir: '/etc/certs' }]);
  });

  it.each([
    ['an unknown context (a typo)', ['nsa'], /There is no docker context named 'nsa'/],
    ['a name used twice', ['a=unix:///x', 'a=unix:///y'], /given twice/],
    ['a bad name', ['../x=unix:///x'], /not a usable engine name/],
    ['a password in the address', ['x=ssh://me:hunter2@nas'], /holds a password/],
    ['no port for tcp', ['x=tcp://nas'], /needs a host and a port/],
    ['an unsupported scheme', ['x=ftp://nas:21'], /not supported/],
    ['tcp without TLS', ['b=tcp://10.0.0.9:2375'], /would be reached without TLS/],
    ['https without certificates', ['b=https://nas:2376'], /would be reached without TLS/],
    ['a socket path with two slashes', ['l=unix://var/run/docker.sock'], /three slashes/],
    ['an address without a name', ['tcp://admin:hunter2@nas:2376'], /not a usable engine name/],
    ['a colon typed for the equals sign', ['nas:tcp://admin:hunter2@nas:2376'], /not a usable engine name/],
  ])('refuses %s with exit code 2', (_what, values, message) => {
    try {
      parseHosts(values, env);
      expect.unreachable();
    } catch (err) {
      expect((err as { exitCode: number }).exitCode).toBe(2);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain('hunter2');
    }
  });
});

describe('the default engine', () => {
  it.each([
    ['DOCKER_HOST wins', { DOCKER_HOST: 'tcp://h:2375' }, { name: 'default', url: 'tcp://h:2375' }],
    ['DOCKER_HOST with DOCKER_CERT_PATH uses TLS', { DOCKER_HOST: 'tcp://h:2376', DOCKER_CERT_PATH: '/c' }, { name: 'default', url: 'tcp://h:2376', tlsDir: '/c' }],
    ['the current docker context', { DOCKER_CONFIG: dockerConfig({ pi: { host: 'ssh://pi@raspberry' } }, 'pi') }, { name: 'default', url: 'ssh://pi@raspberry', context: 'pi' }],
    ['DOCKER_CONTEXT=default is the local socket', { DOCKER_CONTEXT: 'default' }, { name: 'default', url: 'unix:///var/run/docker.sock' }],
    ['nothing set', { DOCKER_CONFIG: '/nonexistent' }, { name: 'default', url: 'unix:///var/run/docker.sock' }],
  ])('%s', (_what, env, expected) => {
    expect(defaultEndpoint(env)).toEqual(expected);
  });
});

describe('addresses in messages', () => {
  it.each([
    ['ssh://me:hunter2@nas', 'ssh://me:***@nas'],
    ['tcp://admin:hun/ter2@nas:2376', 'tcp://admin:***@nas:2376'],
    ['tcp://admin:hun@ter2@nas:2376', 'tcp://admin:***@nas:2376'],
    ['ssh://me@nas:22', 'ssh://me@nas:22'],
    ['tcp://10.0.0.1:2376', 'tcp://10.0.0.1:2376'],
    ['unix:///var/run/docker.sock', 'unix:///var/run/docker.sock'],
  ])('%s', (raw, shown) => expect(redactUrl(raw)).toBe(shown));
});
