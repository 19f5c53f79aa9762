import { afterEach, describe, expect, it, vi } from 'vitest';
import { QuietWhileDown } from '../../src/core/quiet-while-down.js';

describe('QuietWhileDown: streams wait while another service is down', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it.each([
    { name: 'nobody down: nobody waits', down: [], asks: 'a', holds: false },
    { name: 'another service down: wait', down: ['b'], asks: 'a', holds: true },
    { name: 'down itself: its own copy streams', down: ['a'], asks: 'a', holds: false },
    { name: 'itself and another down: never waits while down', down: ['a', 'b'], asks: 'a', holds: false },
  ])('$name', ({ down, asks, holds }) => {
    const q = new QuietWhileDown({ now: () => 0 });
    for (const d of down) q.enter(d);
    expect(q.holds(asks)).toBe(holds);
    expect(q.wait(asks) === undefined).toBe(!holds);
  });

  it('a waiting stream goes on once the service runs again', async () => {
    const q = new QuietWhileDown();
    q.enter('chroma');
    let released = false;
    const waiting = q.wait('postgres')!.then(() => {
      released = true;
    });
    await Promise.resolve();
    expect(released).toBe(false);
    q.leave('chroma');
    await waiting;
    expect(released).toBe(true);
  });

  it('no stream waits on one down period longer than the limit (a store copied whole while stopped)', async () => {
    vi.useFakeTimers();
    const q = new QuietWhileDown();
    q.enter('neo4j');
    let released = false;
    const waiting = q.wait('postgres')!.then(() => {
      released = true;
    });
    await vi.advanceTimersByTimeAsync(9_000);
    expect(released).toBe(false);
    await vi.advanceTimersByTimeAsync(1_100);
    await waiting;
    expect(released).toBe(true);
    expect(q.holds('postgres')).toBe(false); // still down, but past the limit
    q.enter('chroma'); // a new down period holds again
    expect(q.holds('postgres')).toBe(true);
  });

  it('an interrupt releases every waiting stream and holds no one after', async () => {
    const abort = new AbortController();
    const q = new QuietWhileDown({ signal: abort.signal });
    q.enter('chroma');
    const waiting = q.wait('postgres')!;
    abort.abort();
    await waiting;
    expect(q.holds('postgres')).toBe(false);
  });
});
