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

describe('QuietWhileDown.goDown: one store down at a time', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('stores waiting to go down go one after another, each when the one before runs again', async () => {
    const q = new QuietWhileDown();
    const order: string[] = [];
    await q.goDown('chroma');
    const neo4j = q.goDown('neo4j').then(() => order.push('neo4j'));
    const redis = q.goDown('redis').then(() => order.push('redis'));
    await Promise.resolve();
    expect(order).toEqual([]);
    q.leave('chroma');
    await Promise.race([neo4j, redis]);
    await new Promise((r) => setTimeout(r, 10));
    expect(order).toHaveLength(1); // the other waits for the first to run again
    q.leave(order[0]!);
    await Promise.all([neo4j, redis]);
    expect(order.sort()).toEqual(['neo4j', 'redis']);
  });

  it('when a long down period stops holding them, only the first waiter goes down in that tick', async () => {
    vi.useFakeTimers();
    const q = new QuietWhileDown();
    await q.goDown('chroma'); // copied whole while stopped: stays down past the limit
    const gone: string[] = [];
    for (const s of ['neo4j', 'redis', 'app']) void q.goDown(s).then(() => gone.push(s));
    await vi.advanceTimersByTimeAsync(10_100);
    expect(gone).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(10_100); // the next one waits on the first one's own down period
    expect(gone).toHaveLength(2);
  });

  it('an interrupt: waiters are told not to go down, and none is marked down', async () => {
    const abort = new AbortController();
    const q = new QuietWhileDown({ signal: abort.signal });
    await q.goDown('chroma');
    const going = q.goDown('neo4j');
    abort.abort();
    expect(await going).toBe(false);
    expect(await q.goDown('redis')).toBe(false);
  });
});
