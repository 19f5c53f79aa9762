import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { lstatSync, mkdirSync } from 'node:fs';
import { ExitCode, StackvaultError } from '../errors.js';
import { Agent } from 'node:http';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';

/**
 * An HTTP agent whose every connection is `ssh HOST docker system dial-stdio`, as the docker
 * CLI does for ssh:// hosts: the system's ssh brings the user's keys, agent, ~/.ssh/config and
 * known_hosts checking (dockerode's own ssh client checks no host key). Batch mode: a prompt
 * for a password or an unknown host key fails instead of hanging a scheduled run. The sessions
 * share one ssh connection (ControlMaster, in a directory only this user can enter), so an
 * exec, which takes a connection of its own, does not pay a key exchange each.
 */
export function sshAgent(url: string): Agent {
  const { username, hostname, port } = new URL(url);
  const target = `${username ? `${decodeURIComponent(username)}@` : ''}${hostname}`;
  const control = controlDir();
  const args = [
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=15',
    '-o',
    'ControlMaster=auto',
    '-o',
    `ControlPath=${join(control, '%C')}`,
    '-o',
    'ControlPersist=30',
    ...(port ? ['-p', port] : []),
    '--',
    target,
    'docker',
    'system',
    'dial-stdio',
  ];
  // Kept alive: one session serves many API calls (an exec's stream takes its own).
  const agent = new Agent({ keepAlive: true, keepAliveMsecs: 10_000 });
  // Node's Agent calls createConnection(options, callback); a Duplex is a usable socket.
  // Each ssh in a process group of its own: a Ctrl-C at the terminal goes to the whole
  // foreground group, and killed with it ssh cut the connections of the cleanup the Ctrl-C
  // starts (a `docker stop` in flight lost, the container then found running and left to stop).
  // It still ends with stackvault: its stdin closes when this process goes.
  (agent as unknown as { createConnection: () => Duplex }).createConnection = () =>
    new SshSocket(spawn(process.env.STACKVAULT_SSH ?? 'ssh', args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true }));
  return agent;
}

/**
 * The directory of the shared ssh connection's socket: this user's alone. In /tmp another user
 * could have made it first and put a socket of theirs there, so its owner and mode are checked.
 */
function controlDir(): string {
  const uid = userInfo().uid;
  const dir = join(process.env.XDG_RUNTIME_DIR ?? tmpdir(), `stackvault-ssh-${uid}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
    throw new StackvaultError(`${dir} is not a private directory of this user, so no ssh connection is shared through it.`, ExitCode.failure, `Remove it (it may be someone else's), then try again.`);
  }
  return dir;
}

/**
 * The ssh process as a socket: its stdout is what the engine sends, its stdin what we send.
 * Reading ends only when its stdout has ended (every byte delivered), whatever order the
 * process's pipes close in, so a stream the engine ended is never taken for a cut one.
 */
class SshSocket extends Duplex {
  private readonly stderr: Buffer[] = [];

  constructor(private readonly child: ChildProcessWithoutNullStreams) {
    super({ allowHalfOpen: true });
    child.stdout.on('data', (b: Buffer) => {
      if (!this.push(b)) child.stdout.pause();
    });
    child.stdout.once('end', () => this.push(null));
    child.stdin.on('error', () => undefined); // EPIPE once the other side is gone: the reading side tells
    child.stderr.on('data', (b: Buffer) => this.stderr.push(b));
    child.once('error', (err) => this.destroy(err));
    child.once('exit', (code) => {
      if (code && !this.readableEnded) {
        const why = Buffer.concat(this.stderr).toString('utf8').trim().split('\n').pop() ?? '';
        this.destroy(Object.assign(new Error(`ssh exited with ${code}${why ? `: ${why}` : ''}`), { code: 'ssh' }));
        return;
      }
      // The connection is gone both ways once ssh has exited (the engine closed it, as it does
      // after an exec's stream): the writing side ends too, and the socket closes when all is
      // read, as a net.Socket does. Left open, whatever waited for the socket to close (the
      // kill of an interrupted exec) waited for good, and with nothing else left to wait for
      // the run ended at once, exit 0, with a store still stopped.
      if (!this.writableEnded) this.end();
    });
  }

  override _read(): void {
    this.child.stdout.resume();
  }

  override _write(chunk: Buffer, _e: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.child.stdin.destroyed) return cb(new Error('the ssh connection is closed'));
    this.child.stdin.write(chunk, () => cb());
  }

  override _final(cb: () => void): void {
    this.child.stdin.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    if (this.child.exitCode === null) this.child.kill();
    cb(err);
  }

  // What http.ClientRequest and Agent call on a net.Socket. An idle kept-alive session is
  // unref'd by the Agent, so it never keeps the process alive.
  setTimeout = () => this;
  setNoDelay = () => this;
  setKeepAlive = () => this;
  ref = () => {
    this.child.ref();
    for (const p of [this.child.stdin, this.child.stdout, this.child.stderr] as unknown as Array<{ ref(): void }>) p.ref();
    return this;
  };
  unref = () => {
    this.child.unref();
    for (const p of [this.child.stdin, this.child.stdout, this.child.stderr] as unknown as Array<{ unref(): void }>) p.unref();
    return this;
  };
}
