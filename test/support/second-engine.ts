import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import { execa } from 'execa';

/**
 * A second, real Docker engine on this machine: its own dockerd (and the containerd it starts),
 * socket, data root, exec root, pid file, config and bridge, reached over unix:// and over tcp:// with mutual TLS (a CA and certificates made
 * here with openssl). Its data root is kept between runs so images are loaded once per machine.
 */
export interface SecondEngine {
  socket: string;
  tcp: string;
  /** ca.pem, cert.pem and key.pem of a client certificate the engine trusts. */
  clientCerts: string;
  docker: Docker;
  /** `docker` CLI arguments that reach it over TLS. */
  cli: string[];
  stop(): Promise<void>;
}

const ROOT = '/var/lib/stackvault-test-engine2';
const RUN = '/run/stackvault-test-engine2';
const BRIDGE = 'svt-br2';

async function ensureBridge(): Promise<void> {
  if ((await execa('ip', ['link', 'show', BRIDGE], { reject: false })).exitCode === 0) return;
  await execa('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  await execa('ip', ['addr', 'add', '172.29.77.1/24', 'dev', BRIDGE]);
  await execa('ip', ['link', 'set', BRIDGE, 'up']);
}

export async function startSecondEngine(images: string[], port = 23760): Promise<SecondEngine> {
  await stopStale();
  await mkdir(join(RUN, 'certs'), { recursive: true });
  const certs = join(RUN, 'certs');
  await makeCertificates(certs);
  const socket = join(RUN, 'docker.sock');
  await rm(socket, { recursive: true, force: true }); // a bind mount of a missing socket leaves a directory
  await writeFile(join(RUN, 'daemon.json'), '{}\n');
  await ensureBridge();
  const daemon: ChildProcess = spawn(
    'dockerd',
    [
      `--host=unix://${socket}`,
      `--host=tcp://127.0.0.1:${port}`,
      '--tlsverify',
      `--tlscacert=${join(certs, 'ca.pem')}`,
      `--tlscert=${join(certs, 'server-cert.pem')}`,
      `--tlskey=${join(certs, 'server-key.pem')}`,
      `--data-root=${ROOT}`,
      `--exec-root=${join(RUN, 'exec')}`,
      `--pidfile=${join(RUN, 'docker.pid')}`,
      `--config-file=${join(RUN, 'daemon.json')}`,
      // Its own bridge, made here. Not --bridge=none: a dockerd started so deletes docker0, the
      // first engine's bridge, and the first engine's containers lose their network.
      `--bridge=${BRIDGE}`,
      '--iptables=false',
      '--ip-masq=false',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], detached: false },
  );
  const log: Buffer[] = [];
  daemon.stderr?.on('data', (b: Buffer) => log.push(b));
  const docker = new Docker({ socketPath: socket });
  for (let i = 0; ; i++) {
    if (
      await docker.ping().then(
        () => true,
        () => false,
      )
    )
      break;
    if (i > 120 || daemon.exitCode !== null) throw new Error(`the second dockerd did not start: ${Buffer.concat(log).toString().split('\n').slice(-10).join('\n')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  await loadImages(images, socket);
  const clientCerts = join(RUN, 'client');
  await mkdir(clientCerts, { recursive: true });
  for (const [from, to] of [
    ['ca.pem', 'ca.pem'],
    ['client-cert.pem', 'cert.pem'],
    ['client-key.pem', 'key.pem'],
  ] as const)
    await writeFile(join(clientCerts, to), await readFile(join(certs, from)));
  return {
    socket,
    tcp: `tcp://127.0.0.1:${port}`,
    clientCerts,
    docker,
    cli: ['--tlsverify', `--tlscacert=${join(clientCerts, 'ca.pem')}`, `--tlscert=${join(clientCerts, 'cert.pem')}`, `--tlskey=${join(clientCerts, 'key.pem')}`, '-H', `tcp://127.0.0.1:${port}`],
    async stop() {
      const left = await docker.listContainers({ all: true }).catch(() => []);
      await Promise.all(
        left.map((c) =>
          docker
            .getContainer(c.Id)
            .remove({ force: true, v: true })
            .catch(() => undefined),
        ),
      );
      daemon.kill('SIGTERM');
      for (let i = 0; i < 100 && daemon.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
      if (daemon.exitCode === null) daemon.kill('SIGKILL');
    },
  };
}

/** A dockerd left by a killed run holds the pid file and sockets: end it first. */
async function stopStale(): Promise<void> {
  const pidFile = join(RUN, 'docker.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).trim());
  try {
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100; i++) {
      process.kill(pid, 0);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch {
    // gone
  }
  await rm(pidFile, { force: true });
}

/** The first engine's images, by the same ID: loaded when missing or when the tag moved on. */
async function loadImages(images: string[], socket: string): Promise<void> {
  for (const image of images) {
    const id = async (host?: string) => (await execa('docker', [...(host ? ['-H', `unix://${host}`] : []), 'image', 'inspect', '-f', '{{.Id}}', image], { reject: false })).stdout.trim();
    const want = await id();
    if (!want) throw new Error(`${image} is not built on the first engine (scripts/build-images.sh)`);
    if ((await id(socket)) === want) continue;
    await execa('sh', ['-c', `docker save "$1" | docker -H "unix://$2" load -q`, 'sh', image, socket]);
  }
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, as Docker's TLS guide makes them. */
async function makeCertificates(dir: string): Promise<void> {
  const ssl = (args: string[]) => execa('openssl', args, { cwd: dir });
  await ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=stackvault-test-ca', '-keyout', 'ca-key.pem', '-out', 'ca.pem']);
  await writeFile(join(dir, 'server.ext'), 'subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n');
  await writeFile(join(dir, 'client.ext'), 'extendedKeyUsage = clientAuth\n');
  for (const who of ['server', 'client']) {
    await ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${who === 'server' ? '127.0.0.1' : 'stackvault-test-client'}`, '-keyout', `${who}-key.pem`, '-out', `${who}.csr`]);
    await ssl(['x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-days', '2', '-extfile', `${who}.ext`, '-out', `${who}-cert.pem`]);
  }
}

/** Starts a container on `docker` and waits until `ready` succeeds in it (testcontainers speaks to one engine only). */
export async function startOn(
  docker: Docker,
  spec: { image: string; labels: Record<string, string>; env?: Record<string, string>; cmd?: string[]; ready: string[] },
): Promise<{ id: string; stop(): Promise<void> }> {
  const container = await docker.createContainer({
    Image: spec.image,
    Labels: spec.labels,
    Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
    ...(spec.cmd ? { Cmd: spec.cmd } : {}),
  });
  await container.start();
  for (let i = 0; ; i++) {
    const exec = await container.exec({ Cmd: spec.ready, AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({ hijack: true, stdin: false });
    stream.resume();
    await new Promise((r) => stream.on('end', r));
    if ((await exec.inspect()).ExitCode === 0) break;
    if (i > 240) throw new Error(`${spec.image} on the second engine did not get ready`);
    await new Promise((r) => setTimeout(r, 500));
  }
  return { id: container.id, stop: () => container.remove({ force: true, v: true }).then(() => undefined) };
}
