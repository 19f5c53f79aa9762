import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { usageError } from '../errors.js';

/** Where one Docker engine is and how to reach it. */
export interface EngineEndpoint {
  /** The name backups record for it (`--host NAME=…`). */
  name: string;
  /** unix:///path, tcp://host:port or ssh://user@host[:port] (no password, ever). */
  url: string;
  /** PEM files for TLS to a tcp:// engine (`ca.pem`, `cert.pem`, `key.pem` in one directory, as Docker keeps them). */
  tlsDir?: string;
  /** Set when the engine came from a `docker context`: its name, for messages. */
  context?: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** The default engine when no --host is given: DOCKER_HOST, else the current `docker context`, else the local socket. */
export function defaultEndpoint(env: NodeJS.ProcessEnv = process.env): EngineEndpoint {
  if (env.DOCKER_HOST) return fromUrl('default', env.DOCKER_HOST, env.DOCKER_TLS_VERIFY || env.DOCKER_CERT_PATH ? dockerCertPath(env) : undefined, { STACKVAULT_INSECURE_TCP: '1', ...env });
  const context = env.DOCKER_CONTEXT ?? currentContext(env);
  if (context && context !== 'default') return { ...fromContext(context, env), name: 'default' };
  return { name: 'default', url: 'unix:///var/run/docker.sock' };
}

/**
 * `--host` values: `NAME=URL` (unix://, tcp://, ssh://) or `NAME=CONTEXT` / `CONTEXT` for a
 * `docker context`. Several may come in one string (STACKVAULT_HOSTS), split by spaces or commas.
 */
export function parseHosts(values: readonly string[], env: NodeJS.ProcessEnv = process.env): EngineEndpoint[] {
  const specs = values.flatMap((v) => v.split(/[\s,]+/)).filter(Boolean);
  const endpoints = specs.map((spec) => {
    const eq = spec.indexOf('=');
    const name = eq < 0 ? spec : spec.slice(0, eq);
    const where = eq < 0 ? spec : spec.slice(eq + 1);
    if (!NAME.test(name))
      throw usageError(
        `'${redactUrl(name)}' is not a usable engine name in --host ${redactUrl(spec)}.`,
        'Give NAME=ADDRESS with a name of letters, digits, dot, dash or underscore, e.g. --host nas=ssh://admin@nas.',
      );
    if (where.includes('://')) return fromUrl(name, where, tlsDirFor(where, env), env);
    return { ...fromContext(where, env), name };
  });
  const seen = new Set<string>();
  for (const e of endpoints) {
    if (seen.has(e.name)) throw usageError(`The engine name '${e.name}' is given twice in --host.`);
    seen.add(e.name);
  }
  return endpoints;
}

function fromUrl(name: string, raw: string, tlsDir: string | undefined, env: NodeJS.ProcessEnv): EngineEndpoint {
  let url: URL;
  try {
    url = new URL(raw.includes('://') ? raw : `tcp://${raw}`);
  } catch {
    throw usageError(`'${redactUrl(raw)}' is not a Docker engine address.`, 'Use unix:///var/run/docker.sock, tcp://host:2376 or ssh://user@host.');
  }
  if (url.password)
    throw usageError(
      `The engine address for '${name}' holds a password; stackvault does not take passwords in addresses.`,
      'For ssh:// use a key (ssh-agent or ~/.ssh); for tcp:// use TLS certificates.',
    );
  switch (url.protocol) {
    case 'unix:':
      // unix://var/run/docker.sock (two slashes) would quietly name /run/docker.sock.
      if (url.host) throw usageError(`The engine address '${raw}' has a host part; a socket path needs three slashes: unix:///var/run/docker.sock.`);
      return { name, url: `unix://${url.pathname || '/var/run/docker.sock'}` };
    case 'tcp:':
    case 'http:':
    case 'https:':
      if (!url.hostname || !url.port) throw usageError(`The engine address '${raw}' needs a host and a port (tcp://host:2376).`);
      // Without TLS, dumps and the environment of every exec cross the network in the clear.
      if (!tlsDir && env.STACKVAULT_INSECURE_TCP !== '1') {
        throw usageError(
          `The engine '${name}' at ${raw} would be reached without TLS.`,
          'Give its client certificates (a docker context, or DOCKER_CERT_PATH with ca.pem, cert.pem, key.pem), or set STACKVAULT_INSECURE_TCP=1 for a trusted network.',
        );
      }
      return { name, url: `tcp://${url.host}`, ...(tlsDir ? { tlsDir } : {}) };
    case 'ssh:':
      if (!url.hostname) throw usageError(`The engine address '${raw}' needs a host (ssh://user@host).`);
      return { name, url: `ssh://${url.username ? `${url.username}@` : ''}${url.host}` };
    default:
      throw usageError(`'${url.protocol}//' engine addresses are not supported ('${name}').`, 'Use unix://, tcp:// (with TLS) or ssh://.');
  }
}

/** TLS for a tcp:// --host: DOCKER_CERT_PATH when set (as the docker CLI does), else none. */
function tlsDirFor(raw: string, env: NodeJS.ProcessEnv): string | undefined {
  return raw.startsWith('tcp://') || raw.startsWith('https://') ? (env.DOCKER_CERT_PATH ? dockerCertPath(env) : undefined) : undefined;
}

const dockerConfigDir = (env: NodeJS.ProcessEnv) => env.DOCKER_CONFIG ?? join(homedir(), '.docker');
const dockerCertPath = (env: NodeJS.ProcessEnv) => env.DOCKER_CERT_PATH ?? dockerConfigDir(env);

function currentContext(env: NodeJS.ProcessEnv): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(dockerConfigDir(env), 'config.json'), 'utf8')) as { currentContext?: string }).currentContext;
  } catch {
    return undefined;
  }
}

/** A `docker context` as the docker CLI stores it: meta/<sha256(name)>/meta.json, TLS files in tls/<sha256(name)>/docker/. */
function fromContext(context: string, env: NodeJS.ProcessEnv): EngineEndpoint {
  const id = createHash('sha256').update(context).digest('hex');
  const dir = join(dockerConfigDir(env), 'contexts');
  let host: string | undefined;
  try {
    const meta = JSON.parse(readFileSync(join(dir, 'meta', id, 'meta.json'), 'utf8')) as { Endpoints?: { docker?: { Host?: string } } };
    host = meta.Endpoints?.docker?.Host;
  } catch {
    throw usageError(`There is no docker context named '${context}'.`, 'See `docker context ls`, or give an address: --host NAME=tcp://host:2376 or NAME=ssh://user@host.');
  }
  if (!host) throw usageError(`The docker context '${context}' has no Docker endpoint.`);
  const tlsDir = join(dir, 'tls', id, 'docker');
  return { ...fromUrl(context, host, existsSync(join(tlsDir, 'ca.pem')) ? tlsDir : undefined, env), context };
}

/** An address fit for messages and manifests: never a password. */
export function redactUrl(raw: string): string {
  // The user info runs to the last @ before the host: a password may hold / and @.
  return raw.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*):\S*@([^@\s]*)/gi, '$1:***@$2');
}
