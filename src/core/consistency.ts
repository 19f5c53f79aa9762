import type { ContainerDetails, DockerEngine } from '../docker/engine.js';
import { labelledTrue } from '../docker/labels.js';
import type { Driver, Peer } from '../drivers/types.js';
import type { ConsistencyRecord } from './manifest.js';
import { LABELS, type Candidate } from './selection.js';
import { pauseAll } from './stopped-markers.js';

/**
 * A consistent backup (`backup create --consistent`, issue #14): every store's snapshot point
 * is fixed inside one short window while the project's writers (its app containers) are
 * paused, so the stores hold the state of one moment of the app; the bulk streams afterwards,
 * while the app runs again.
 *
 * Each service first gets ready on its own (drivers with `prepareSnapshot` open sessions, read
 * config, check files); once every service is ready or has failed, the window opens: the
 * writers are paused (with markers, as for stops), every service fixes its point in parallel
 * (a driver without `prepareSnapshot` is copied whole inside the window), and the writers are
 * unpaused as soon as the last one is done. Nothing here knows a driver.
 */
/** `stackvault.consistent=true` on any container of a backed-up project makes its backups consistent by default. */
export function consistentByPolicy(found: { running: Candidate[]; peers(id: string): Peer[] }): boolean {
  const all = found.running.flatMap((c) => [c.container, ...found.peers(c.container.id).map((p) => p.container)]);
  return all.some((c) => labelledTrue(c, LABELS.consistent));
}

/**
 * The project's writers: containers labelled `stackvault.writer=true` when any is, else every
 * running container of the backed-up projects that is not a datastore server (app containers,
 * whether their own data is backed up or not). A server is never paused: its snapshot point is
 * fixed by its driver while it runs.
 */
export function writersOf(found: { running: Candidate[]; peers(id: string): Peer[] }, drivers: readonly Driver[]): ContainerDetails[] {
  const byId = new Map<string, { container: ContainerDetails; driver: Driver | undefined }>();
  for (const c of found.running) {
    byId.set(c.container.id, { container: c.container as ContainerDetails, driver: c.driver });
    for (const p of found.peers(c.container.id)) {
      if (!byId.has(p.container.id)) byId.set(p.container.id, { container: p.container, driver: drivers.find((d) => d.name === p.driver) });
    }
  }
  const apps = [...byId.values()].filter(({ container, driver }) => container.running && !container.paused && !labelledTrue(container, LABELS.helper) && !driver?.recognise);
  const labelled = apps.filter(({ container }) => labelledTrue(container, LABELS.writer));
  const anyLabelled = [...byId.values()].some(({ container }) => labelledTrue(container, LABELS.writer));
  return (anyLabelled ? labelled : apps).map((a) => a.container).sort((a, b) => a.name.localeCompare(b.name));
}

/** One service's place in the window. */
export interface WindowSlot {
  /** Ready to fix the point: resolves when the writers are paused (rejects if they could not be). */
  enter(): Promise<void>;
  /** The point is fixed (or fixing failed): the writers may run again once every service has left. */
  leave(): void;
  /** Resolves once the writers run again. */
  readonly closed: Promise<void>;
  /** Always called at the end of the service (also when it failed before entering). */
  done(): void;
}

export class ConsistencyWindow {
  private waiting: number;
  private inside = 0;
  private opened?: Promise<void>;
  private releaseAll?: () => Promise<void>;
  private resolveOpen!: () => void;
  private rejectOpen!: (err: unknown) => void;
  private readonly openGate: Promise<void>;
  private resolveClosed!: () => void;
  readonly closed: Promise<void>;
  private began = 0;
  private pausedAt?: Date;
  private pausedMs?: number;
  private copiedInWindow: string[] = [];
  /** A failure to unpause, reported by the run (the writers' markers stay for the next run). */
  unpauseError?: unknown;

  constructor(
    services: number,
    private readonly engine: DockerEngine,
    private readonly dir: string,
    readonly writers: readonly ContainerDetails[],
  ) {
    this.waiting = services;
    this.openGate = new Promise((resolve, reject) => {
      this.resolveOpen = resolve;
      this.rejectOpen = reject;
    });
    this.openGate.catch(() => undefined);
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    if (services === 0) this.resolveClosed();
  }

  /** Whether the window holds this container paused right now (its driver must not pause it again). */
  holdsPaused(containerId: string): boolean {
    return this.pausedAt !== undefined && this.pausedMs === undefined && this.writers.some((w) => w.id === containerId);
  }

  /** How long the window held this container paused: undefined when it is not a writer, or before the window closed. */
  pausedFor(containerId: string): number | undefined {
    return this.writers.some((w) => w.id === containerId) ? this.pausedMs : undefined;
  }

  /** A service that has no quick snapshot point and is copied whole inside the window. */
  copiedWhole(service: string): void {
    this.copiedInWindow.push(service);
  }

  slot(): WindowSlot {
    let arrived = false;
    let entered = false;
    let left = false;
    const arrive = () => {
      if (arrived) return;
      arrived = true;
      this.waiting--;
      if (this.waiting === 0) this.open();
    };
    const leave = () => {
      if (!entered || left) return;
      left = true;
      this.inside--;
      if (this.inside === 0 && this.waiting === 0) void this.close();
    };
    return {
      enter: async () => {
        entered = true;
        this.inside++;
        arrive();
        await this.openGate;
      },
      leave,
      closed: this.closed,
      done: () => {
        leave();
        arrive();
      },
    };
  }

  /** What the manifest records; undefined when the window never opened. */
  record(): ConsistencyRecord | undefined {
    if (!this.pausedAt) return undefined;
    return {
      at: this.pausedAt.toISOString(),
      pausedMs: this.pausedMs ?? Date.now() - this.began,
      paused: this.writers.map((w) => w.name),
      ...(this.copiedInWindow.length ? { copiedInWindow: [...this.copiedInWindow].sort() } : {}),
    };
  }

  private open(): void {
    if (this.opened) return;
    if (this.inside === 0) {
      // Every service failed before it was ready: nothing to pause for.
      this.rejectOpen(new Error('no service got ready for the consistency window'));
      this.resolveClosed();
      return;
    }
    this.began = Date.now();
    // The window is the writers' pause itself: from the first pause request to the last unpause's answer.
    this.opened = pauseAll(
      this.engine,
      this.dir,
      this.writers.map((w) => ({ id: w.id, name: w.name, service: w.labels[LABELS.composeService] ?? w.name })),
      {
        pausing: () => {
          this.began = Date.now();
        },
        running: () => {
          this.pausedMs = Date.now() - this.began;
        },
      },
    ).then(
      (release) => {
        this.releaseAll = release;
        this.pausedAt = new Date();
        this.resolveOpen();
      },
      (err: unknown) => {
        this.rejectOpen(new Error(`the project's writers could not be paused for the consistency window: ${err instanceof Error ? err.message : String(err)}`));
        this.resolveClosed();
      },
    );
  }

  private async close(): Promise<void> {
    await this.opened;
    if (!this.releaseAll) return;
    try {
      await this.releaseAll();
    } catch (err) {
      this.unpauseError = err;
    } finally {
      this.pausedMs ??= Date.now() - this.began;
      this.resolveClosed();
    }
  }
}

/** At most `limit` holders at a time (the streaming phase keeps to --parallel). */
export function semaphore(limit: number): <T>(work: () => Promise<T>) => Promise<T> {
  let free = Math.max(1, limit);
  const queue: Array<() => void> = [];
  return async (work) => {
    if (free > 0) free--;
    else await new Promise<void>((resolve) => queue.push(resolve));
    try {
      return await work();
    } finally {
      const next = queue.shift();
      if (next) next();
      else free++;
    }
  };
}
