/**
 * Loads before dockerode (imported first, for its side effect) and keeps two of its modules from
 * ever loading, modules stackvault does not use:
 * - dockerode's BuildKit session (`lib/session.js`: @grpc/grpc-js and protobufjs, 100+ modules),
 *   which it needs only for `buildImage` with `version: '2'`; stackvault builds no images;
 * - docker-modem's ssh2 transport (`lib/ssh.js`, with a WebAssembly Poly1305), used only when
 *   `protocol: 'ssh'`; stackvault reaches ssh:// engines through the system's ssh (ssh-agent.ts).
 * dockerode requires both eagerly: measured, they are 19 MB of the 34 MB of RSS that loading it
 * costs, in every process, `backup list` included. Should either ever be called, it says why.
 */
import { createRequire, Module } from 'node:module';

const require = createRequire(import.meta.url);

function neverLoaded(file: string, what: string): void {
  const stub = new Module(file);
  stub.filename = file;
  stub.loaded = true;
  stub.exports = () => {
    throw new Error(`${what} is not loaded by stackvault (see src/docker/dockerode-lean.ts)`);
  };
  require.cache[file] = stub;
}

try {
  const fromDockerode = createRequire(require.resolve('dockerode'));
  neverLoaded(fromDockerode.resolve('./session.js'), "dockerode's BuildKit session");
  neverLoaded(createRequire(fromDockerode.resolve('docker-modem')).resolve('./ssh.js'), "docker-modem's ssh2 transport");
} catch {
  // A later dockerode that moved these files loads as it is, only heavier (a unit test notices).
}
