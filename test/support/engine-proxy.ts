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

export interface EngineProxyOptions {
  /**
   * Asked with each request's first line (`GET /containers/…/json HTTP/1.1`), in the order they
   * come: in the answer to the first one it returns true for, the proxy passes on the headers
   * and a few bytes of the body, then cuts (as `cut`). The engine goes away at one chosen
   * point of a run, halfway through an answer, whatever the machine's speed.
   */
  cutInAnswerTo?: (requestLine: string) => boolean;
}

export async function startEngineProxy(engineSocket = '/var/run/docker.sock', options: EngineProxyOptions = {}): Promise<EngineProxy> {
  const sock = join(await mkdtemp(join(tmpdir(), 'stackvault-proxy-')), 'docker.sock');
  const open = new Set<net.Socket>();
  let armed = options.cutInAnswerTo;
  // Half-open on both sides: an exec's stdin ending (the client's FIN) must not end its output.
  // Without it every `docker exec` fed on its stdin (psql, redis-cli sessions) failed with exit
  // 126 through the proxy, so a run through it could not even take a restore point.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ path: engineSocket, allowHalfOpen: true });
    if (!armed) {
      relay(client, upstream, open);
      client.pipe(upstream);
      return;
    }
    /** This connection's next answer is the one to cut in. */
    let watched = false;
    client.on('data', (chunk: Buffer) => {
      // A client sends a request before it reads its answer (no pipelining), and a request
      // starts a chunk; on an exec's hijacked connection the chunks are its stdin.
      const line = /^[A-Z]+ \S+ HTTP\/1\.1(?=\r\n)/.exec(chunk.subarray(0, 4096).toString('latin1'))?.[0];
      if (line && armed?.(line)) {
        armed = undefined;
        watched = true;
      }
    });
    client.pipe(upstream);
    open.add(client).add(upstream);
    let head = Buffer.alloc(0);
    upstream.on('data', (chunk: Buffer) => {
      if (!watched) {
        if (!client.write(chunk)) upstream.pause();
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end >= 0) client.write(head.subarray(0, Math.min(head.length, end + 4 + 8)), cut);
    });
    client.on('drain', () => upstream.resume());
    upstream.on('end', () => client.end());
    dropTogether(client, upstream, open);
  });
  const cut = () => {
    server.close();
    for (const s of open) s.destroy();
  };
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(sock, resolve));
  return { dockerHost: `unix://${sock}`, cut };
}

/**
 * Joins a proxy's client and upstream sockets: the upstream's bytes go back to the client, and
 * when either ends or fails both are dropped. Both are kept in `open` while they live (so a
 * test can cut them); the client's bytes are the caller's to forward.
 */
export function relay(client: net.Socket, upstream: net.Socket, open: Set<net.Socket>): void {
  open.add(client).add(upstream);
  upstream.pipe(client);
  dropTogether(client, upstream, open);
}

/** Drops both sockets when either ends or fails, and forgets them. */
function dropTogether(client: net.Socket, upstream: net.Socket, open: Set<net.Socket>): void {
  const drop = () => {
    client.destroy();
    upstream.destroy();
    open.delete(client);
    open.delete(upstream);
  };
  client.on('error', drop).on('close', drop);
  upstream.on('error', drop).on('close', drop);
}
