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
  // Half-open on both sides: an exec's stdin ending (the client's FIN) must not end its output.
  // Without it every `docker exec` fed on its stdin (psql, redis-cli sessions) failed with exit
  // 126 through the proxy, so a run through it could not even take a restore point.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ path: engineSocket, allowHalfOpen: true });
    relay(client, upstream, open);
    client.pipe(upstream);
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

/**
 * Joins a proxy's client and upstream sockets: the upstream's bytes go back to the client, and
 * when either ends or fails both are dropped. Both are kept in `open` while they live (so a
 * test can cut them); the client's bytes are the caller's to forward.
 */
export function relay(client: net.Socket, upstream: net.Socket, open: Set<net.Socket>): void {
  open.add(client).add(upstream);
  upstream.pipe(client);
  const drop = () => {
    client.destroy();
    upstream.destroy();
    open.delete(client);
    open.delete(upstream);
  };
  client.on('error', drop).on('close', drop);
  upstream.on('error', drop).on('close', drop);
}
