import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
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
    open.add(client).add(upstream);
    client.on('data', (c: Buffer) => {
      sent += c.length;
      if (typeof mode === 'object' && sent > mode.cutAfterBytes) {
        client.destroy();
        upstream.destroy();
        return;
      }
      upstream.write(c);
    });
    upstream.pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
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
