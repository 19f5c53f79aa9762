import type { Readable, Writable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { answerMarker, openSession } from '../../src/docker/command-session.js';
import type { DockerEngine, ExecOptions, ExecResult } from '../../src/docker/engine.js';
import { chunked } from '../support/chunks.js';

/** An engine whose one exec runs `command` with the session's stdin and stdout (pure logic: no container). */
function engineRunning(command: (stdin: Readable, stdout: Writable, options: ExecOptions) => Promise<ExecResult>): DockerEngine {
  return { exec: (_id: string, _cmd: string[], options: ExecOptions) => command(options.stdin!, options.stdout!, options) } as unknown as DockerEngine;
}

/** Writes chunks one by one, waiting for room (the session holds back a reader that does not keep up). */
async function writeAll(out: Writable, chunks: Buffer[]): Promise<void> {
  for (const c of chunks) if (!out.write(c)) await new Promise((r) => out.once('drain', r));
}

const ended = (stdin: Readable) => new Promise((r) => stdin.once('end', r).resume());

describe('command session', () => {
  it('gives back every answer byte for byte, wherever the output is cut', async () => {
    const marker = Buffer.from(answerMarker());
    // Answers hold any bytes, including the marker's first bytes and NULs, but not the marker itself.
    const answer = fc.oneof(fc.uint8Array({ maxLength: 500 }), fc.constant(marker.subarray(0, 10))).map((a) => Buffer.from(a));
    await fc.assert(
      fc.asyncProperty(fc.array(answer, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 30 }), async (answers, cuts) => {
        const wire = Buffer.concat(answers.flatMap((a) => [a, marker]));
        const engine = engineRunning(async (stdin, stdout) => {
          await writeAll(stdout, chunked(wire, cuts));
          await ended(stdin);
          return { exitCode: 0, stdout: '', stderr: '' };
        });
        const session = openSession(engine, 'c', ['cmd'], { label: 'cmd' });
        const got = await Promise.all(answers.map(() => session.readUntil(marker)));
        expect(got.map((g) => g.toString('hex'))).toEqual(answers.map((a) => a.toString('hex')));
        expect(await session.close()).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it('ends an answer at a refusal line when the marker never comes, wherever the output is cut', async () => {
    const marker = Buffer.from(`${answerMarker()}\n`);
    const refusal = /^(BUSY|LOADING)\b/;
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(fc.nat(), { maxLength: 20 }), async (refused, cuts) => {
        // An answer of lines (one begins "BUSYNESS": not a refusal), then the marker or a refusal.
        const before = 'used_memory:1\nBUSYNESS:2\n';
        const wire = Buffer.from(refused ? `${before}BUSY Redis is busy running a script.\n` : `${before}${marker}`);
        const engine = engineRunning(async (stdin, stdout) => {
          await writeAll(stdout, chunked(wire, cuts));
          await ended(stdin);
          return { exitCode: 0, stdout: '', stderr: '' };
        });
        const session = openSession(engine, 'c', ['cmd'], { label: 'cmd' });
        const got = await session.readUntilOr(marker, refusal);
        if (refused) expect(got).toEqual({ answer: Buffer.alloc(0), line: 'BUSY Redis is busy running a script.' });
        else expect(got).toEqual({ answer: Buffer.from(before) });
        await session.close();
      }),
      { numRuns: 200 },
    );
  });

  it('reads an answer far larger than what it holds back (the command is let go on while the marker is sought)', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024 + 7, 0xab);
    const engine = engineRunning(async (stdin, stdout) => {
      const chunks: Buffer[] = [];
      for (let at = 0; at < big.length; at += 65536) chunks.push(big.subarray(at, at + 65536));
      await writeAll(stdout, [...chunks, Buffer.from('END\n')]);
      await ended(stdin);
      return { exitCode: 0, stdout: '', stderr: '' };
    });
    const session = openSession(engine, 'c', ['cmd'], { label: 'cmd' });
    const got = await session.readUntil('END\n');
    expect(got.equals(big)).toBe(true);
    await session.close();
  });

  it('answers what is asked, one request after another', async () => {
    const engine = engineRunning(async (stdin, stdout) => {
      for await (const chunk of stdin) {
        for (const line of (chunk as Buffer).toString().split('\n').filter(Boolean)) await writeAll(stdout, [Buffer.from(`${line.toUpperCase()}\n`)]);
      }
      return { exitCode: 3, stdout: '', stderr: '' };
    });
    const session = openSession(engine, 'c', ['cmd'], { label: 'cmd' });
    session.send('one\n');
    expect((await session.readUntil('\n')).toString()).toBe('ONE');
    session.send('two\nthree\n');
    expect((await session.readUntil('\n')).toString()).toBe('TWO');
    expect((await session.readUntil('\n')).toString()).toBe('THREE');
    expect(await session.close()).toBe(3);
  });

  it('fails an answer when the command ends before giving it, saying what ended and why', async () => {
    const engine = engineRunning(async (_stdin, stdout) => {
      await writeAll(stdout, [Buffer.from('half an answer')]);
      return { exitCode: 2, stdout: '', stderr: 'psql: FATAL: database "x" does not exist\nmore' };
    });
    const session = openSession(engine, 'c', ['psql'], { label: 'the psql session of x' });
    await expect(session.readUntil('\n')).rejects.toThrow('the psql session of x ended (exit 2): psql: FATAL: database "x" does not exist');
    await expect(session.readUntil('\n')).rejects.toThrow(/ended \(exit 2\)/);
  });

  it('with stderrFails, fails at the first word on stderr instead of waiting for a marker that never comes', async () => {
    const engine = engineRunning(async (stdin, _stdout, options) => {
      options.onStderr?.(Buffer.from('Could not connect to Redis at 127.0.0.1:6379: Connection refused\n'));
      await ended(stdin);
      return { exitCode: 0, stdout: '', stderr: '' };
    });
    const session = openSession(engine, 'c', ['redis-cli'], { label: 'redis-cli', stderrFails: true });
    await expect(session.readUntil('m\n')).rejects.toThrow('redis-cli: Could not connect to Redis at 127.0.0.1:6379: Connection refused');
    await session.close();
  });

  it('fails when the exec itself fails (the engine is gone)', async () => {
    const engine = engineRunning(async () => {
      throw new Error('connect ENOENT /var/run/docker.sock');
    });
    const session = openSession(engine, 'c', ['sh'], { label: 'sh' });
    await expect(session.readUntil('\n')).rejects.toThrow('connect ENOENT');
    expect(await session.close()).toBe(-1);
  });

  it('markers differ every time', () => {
    const seen = new Set(Array.from({ length: 1000 }, answerMarker));
    expect(seen.size).toBe(1000);
  });
});
