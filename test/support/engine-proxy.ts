import { mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A socket proxy in front of the real Docker engine, so a test can make the engine unreachable
 * for one stackvault run (DOCKER_HOST=dockerHost) without stopping the daemon other tests use.
 */
export interface EngineProxy {
  /** The DOCKER_HOST value that reaches the engine through this proxy. */
  dockerHost: string;
  /** Refuses new connections and drops the open ones: the engine is gone for its clients. */
  cut(): void;
}

export async function startEngineProxy(engineSocket = '/var/run/docker.sock'): Promise<EngineProxy> {
  const sock = join(await mkdtemp(join(tmpdir(), 'stackvault-proxy-')), 'docker.sock');
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(engineSocket);
    open.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(sock, resolve));
  return {
    dockerHost: `unix://${sock}`,
    cut() {
      server.close();
      for (const s of open) s.destroy();
    },
  };
}
