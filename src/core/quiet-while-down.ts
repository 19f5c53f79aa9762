/**
 * While a store is stopped (or an app paused) for its copy, the other services' streams wait,
 * and so does another store's stop, so that its stop, its catch-up and its start get the
 * machine's CPU and disk: on a small server a `docker start` competing with compression and
 * other dumps took 1.3-2.5 s instead of well under one. A service that is down itself never
 * waits (its own copy may stream), and nothing waits on one down period for longer than
 * `maxWaitMs`: a store copied whole while stopped (no pre-copy possible) must not hold every
 * other service for the length of its copy. Not used for consistent backups: there every
 * store is stopped in the window at once, and a store's snapshot (Redis's RDB, Postgres's
 * sessions) must not be held open longer.
 */
export class QuietWhileDown {
  private readonly down = new Map<string, number>();
  private readonly waiters: Array<{ service: string; resolve: () => void }> = [];
  private timer?: NodeJS.Timeout;
  private ended = false;

  private readonly maxWaitMs: number;
  private readonly now: () => number;

  constructor({ maxWaitMs = 10_000, now = () => performance.now(), signal }: { maxWaitMs?: number; now?: () => number; signal?: AbortSignal } = {}) {
    this.maxWaitMs = maxWaitMs;
    this.now = now;
    // Interrupted: nothing waits any more (the run is ending; every down service is being started).
    this.ended = signal?.aborted ?? false;
    signal?.addEventListener('abort', () => {
      this.ended = true;
      this.settle();
    });
  }

  /** A service goes down (stopped or paused). */
  enter(service: string): void {
    this.down.set(service, this.now());
    this.settle();
  }

  /**
   * Waits for `service`'s turn to go down, then marks it down: one store down at a time, so its
   * stop and start do not compete with another's. Asked again after each wake-up, in the same
   * tick as the marking: when a long down period stops holding several waiters at once, the
   * first to wake goes down and the others wait for it. Resolves false when the run was
   * interrupted meanwhile (nothing may go down then).
   */
  async goDown(service: string): Promise<boolean> {
    for (let turn = this.wait(service); turn; turn = this.wait(service)) await turn;
    if (this.ended) return false;
    this.enter(service);
    return true;
  }

  /** It runs again. */
  leave(service: string): void {
    this.down.delete(service);
    this.settle();
  }

  /** Resolves when `service`'s stream may go on; undefined when it may at once. */
  wait(service: string): Promise<void> | undefined {
    if (!this.holds(service)) return undefined;
    return new Promise((resolve) => {
      this.waiters.push({ service, resolve });
      this.settle();
    });
  }

  /** Whether `service` must wait now: it is up and another service's down period is young. */
  holds(service: string): boolean {
    if (this.ended || this.down.has(service)) return false;
    const t = this.now();
    return [...this.down.values()].some((since) => t - since < this.maxWaitMs);
  }

  private settle(): void {
    for (const w of [...this.waiters]) {
      if (this.holds(w.service)) continue;
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.waiters.length) {
      // Wake when the youngest down period grows old enough to stop holding anyone.
      const t = this.now();
      const until = Math.max(...[...this.down.values()].map((since) => since + this.maxWaitMs - t));
      this.timer = setTimeout(() => this.settle(), Math.max(1, until));
    }
  }
}
