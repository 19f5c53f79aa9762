import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { GenericContainer, type StartedTestContainer, Wait } from 'testcontainers';
import { relay } from './engine-proxy.js';
import { IMAGES } from './images.js';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real restic REST server on 127.0.0.1 (`rclone serve restic`, Debian's rclone), with a TCP
 * proxy in front of it that a test can set to cut every connection after some bytes (a
 * server that goes down in the middle of an upload) or refuse all (a server that is down).
 */
export interface ResticServer {
  /** The environment that names the repository and its password (a file). */
  env: Record<string, string>;
  dir: string;
  /** 'cut' drops connections once `afterBytes` went up in total; 'down' refuses; 'up' passes all. */
  set(mode: 'up' | 'down' | { cutAfterBytes: number }): void;
  stop(): Promise<void>;
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });

export async function startResticServer(password = 'offsite-Secret-4242'): Promise<ResticServer> {
  const dir = await mkdtemp(join(tmpdir(), 'svt-restic-'));
  const port = await freePort();
  const rclone: ChildProcess = spawn('rclone', ['serve', 'restic', join(dir, 'repo'), '--addr', `127.0.0.1:${port}`], { stdio: 'ignore' });
  // Wait until it answers.
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((resolve) =>
      net
        .connect(port, '127.0.0.1')
        .once('connect', function (this: net.Socket) {
          this.destroy();
          resolve(true);
        })
        .once('error', () => resolve(false)),
    );
    if (ok) break;
    if (i > 100) throw new Error('rclone serve restic did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  let mode: 'up' | 'down' | { cutAfterBytes: number } = 'up';
  let sent = 0;
  const open = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    if (mode === 'down') return client.destroy();
    const upstream = net.connect(port, '127.0.0.1');
    relay(client, upstream, open);
    client.on('data', (c: Buffer) => {
      sent += c.length;
      if (typeof mode === 'object' && sent > mode.cutAfterBytes) {
        client.destroy();
        upstream.destroy();
        return;
      }
      upstream.write(c);
    });
  });
  const proxyPort = await new Promise<number>((resolve) => proxy.listen(0, '127.0.0.1', () => resolve((proxy.address() as net.AddressInfo).port)));
  const passwordFile = join(dir, 'password');
  await writeFile(passwordFile, password, { mode: 0o600 });
  return {
    dir,
    env: { RESTIC_REPOSITORY: `rest:http://127.0.0.1:${proxyPort}/`, RESTIC_PASSWORD_FILE: passwordFile, RESTIC_CACHE_DIR: join(dir, 'cache') },
    set(m) {
      mode = m;
      sent = 0;
      if (m === 'down') for (const s of open) s.destroy();
    },
    async stop() {
      proxy.close();
      for (const s of open) s.destroy();
      rclone.kill('SIGTERM');
    },
  };
}

/**
 * An SFTP server (openssh-server, compose/images/sshd) with a key made here, reached by restic
 * through the `ssh` it finds first on PATH: a wrapper that adds this server's ssh_config.
 */
/**
 * With `dockerSocket`, the server is also a Docker host reachable over ssh:// (as the docker CLI
 * reaches one): the host's docker client and that engine's socket are mounted in, so
 * `ssh sv-sftp docker system dial-stdio` works for its user.
 */
export async function startSftpServer(options: { dockerSocket?: string } = {}): Promise<{ env: Record<string, string>; container: StartedTestContainer }> {
  const dir = await mkdtemp(join(tmpdir(), 'svt-sftp-'));
  const key = join(dir, 'id_ed25519');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  await chmod(dir, 0o755);
  if (options.dockerSocket) await chmod(options.dockerSocket, 0o666); // a test engine; its user is not root
  const container = await new GenericContainer(IMAGES.sshd)
    .withCopyFilesToContainer([{ source: `${key}.pub`, target: '/authorized_keys', mode: 0o644 }])
    .withBindMounts(
      options.dockerSocket
        ? [
            { source: '/usr/bin/docker', target: '/usr/local/bin/docker', mode: 'ro' },
            { source: options.dockerSocket, target: '/var/run/docker.sock', mode: 'rw' },
          ]
        : [],
    )
    .withExposedPorts(22)
    .withWaitStrategy(Wait.forLogMessage(/Server listening/))
    .start();
  await writeFile(
    join(dir, 'ssh_config'),
    `Host sv-sftp\n  HostName 127.0.0.1\n  Port ${container.getMappedPort(22)}\n  User restic\n  IdentityFile ${key}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n`,
  );
  await mkdir(join(dir, 'bin'));
  await writeFile(join(dir, 'bin', 'ssh'), `#!/bin/sh\nexec /usr/bin/ssh -F ${join(dir, 'ssh_config')} "$@"\n`, { mode: 0o755 });
  const passwordFile = join(dir, 'password');
  await writeFile(passwordFile, 'sftp-Secret-4242', { mode: 0o600 });
  return {
    container,
    env: {
      RESTIC_REPOSITORY: 'sftp:sv-sftp:/srv/restic/repo',
      RESTIC_PASSWORD_FILE: passwordFile,
      RESTIC_CACHE_DIR: join(dir, 'cache'),
      PATH: `${join(dir, 'bin')}:${process.env.PATH}`,
    },
  };
}
