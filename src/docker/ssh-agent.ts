import { spawn } from 'node:child_process';
import { Agent } from 'node:http';
import { Duplex } from 'node:stream';

/**
 * An HTTP agent whose every connection is `ssh HOST docker system dial-stdio`, as the docker
 * CLI does for ssh:// hosts: the system's ssh brings the user's keys, agent, ~/.ssh/config and
 * known_hosts checking (dockerode's own ssh client checks no host key). Batch mode: a prompt
 * for a password or an unknown host key fails instead of hanging a scheduled run.
 */
export function sshAgent(url: string): Agent {
  const { username, hostname, port } = new URL(url);
  const target = `${username ? `${decodeURIComponent(username)}@` : ''}${hostname}`;
  const args = ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=15', ...(port ? ['-p', port] : []), '--', target, 'docker', 'system', 'dial-stdio'];
  // Kept alive: one ssh session serves many API calls (an exec's stream takes its own).
  const agent = new Agent({ keepAlive: true, keepAliveMsecs: 10_000 });
  // Node's Agent calls createConnection(options, callback); a Duplex is a usable socket.
  (agent as unknown as { createConnection: () => Duplex }).createConnection = () => {
    const child = spawn(process.env.STACKVAULT_SSH ?? 'ssh', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const stderr: Buffer[] = [];
    child.stderr.on('data', (b: Buffer) => stderr.push(b));
    const socket = Duplex.from({ readable: child.stdout, writable: child.stdin }) as Duplex & Record<string, unknown>;
    // What http.ClientRequest and Agent may call on a net.Socket. An idle kept-alive session is
    // unref'd by the Agent, so it never keeps the process alive.
    for (const m of ['setTimeout', 'setNoDelay', 'setKeepAlive']) socket[m] = () => socket;
    const pipes = [child.stdin, child.stdout, child.stderr] as unknown as Array<{ ref(): void; unref(): void }>;
    socket.ref = () => {
      child.ref();
      for (const p of pipes) p.ref();
      return socket;
    };
    socket.unref = () => {
      child.unref();
      for (const p of pipes) p.unref();
      return socket;
    };
    child.once('error', (err) => socket.destroy(err));
    child.once('exit', (code) => {
      if (code !== 0 && code !== null) {
        const why = Buffer.concat(stderr).toString('utf8').trim().split('\n').pop() ?? '';
        socket.destroy(Object.assign(new Error(`ssh exited with ${code}${why ? `: ${why}` : ''}`), { code: 'ssh' }));
      }
    });
    socket.once('close', () => {
      if (child.exitCode === null) child.kill();
    });
    return socket;
  };
  return agent;
}
