import { describe, expect, it } from 'vitest';
import { mapLimit } from '../../src/util/limit.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('mapLimit', () => {
  it('keeps the input order and never runs more than the limit at once', async () => {
    let running = 0;
    let most = 0;
    const out = await mapLimit([30, 10, 20, 5, 15], 2, async (ms, i) => {
      most = Math.max(most, ++running);
      await tick(ms);
      running--;
      return i * 10;
    });
    expect(out).toEqual([0, 10, 20, 30, 40]);
    expect(most).toBe(2);
  });

  it('on a failure, waits for every lane that already started to settle before it rejects', async () => {
    const log: string[] = [];
    const run = mapLimit(['fails', 'slow', 'never'], 2, async (item) => {
      log.push(`start ${item}`);
      if (item === 'fails') {
        await tick(5);
        log.push('fails rejects');
        throw new Error('boom');
      }
      await tick(60); // e.g. a container that is still stopped for its copy
      log.push(`end ${item}`);
      return item;
    });
    await expect(run).rejects.toThrow('boom');
    // The slow lane finished (its container was started again) before the caller saw the error,
    // and no new item was started after the failure.
    expect(log).toEqual(['start fails', 'start slow', 'fails rejects', 'end slow']);
  });

  it('rejects with the first error when several lanes fail', async () => {
    const run = mapLimit([1, 2, 3], 3, async (n) => {
      await tick(n * 10);
      throw new Error(`error ${n}`);
    });
    await expect(run).rejects.toThrow('error 1');
  });

  it('handles an empty list', async () => {
    expect(await mapLimit([], 4, async () => 1)).toEqual([]);
  });
});
