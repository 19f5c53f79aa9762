import type { Readable } from 'node:stream';
import { usageError } from '../errors.js';
import { DockerodeEngine } from './dockerode-engine.js';
import type { EngineEndpoint } from './endpoints.js';
import {
  undefinedIfNotFound,
  unknownEngine,
  type ContainerDetails,
  type ContainerSummary,
  type DetachedSpec,
  type DockerEngine,
  type EngineVersion,
  type ExecOptions,
  type HelperSpec,
  type TransferOptions,
} from './engine.js';

/**
 * Several Docker engines seen as one: containers are listed from all of them (each tagged with
 * its engine's name), and every call about a container goes to the engine that has it. What is
 * created (helpers, throwaways) goes where its `volumesFrom` container is, else to `select()`ed
 * engine. Core code is written against DockerEngine and never knows how many there are.
 */
export class MultiEngine implements DockerEngine {
  readonly engineNames: readonly string[];
  private readonly byName = new Map<string, DockerEngine>();
  /** Container id or name → the engine that has it, learned from lists, inspects and creates. */
  private readonly owner = new Map<string, string>();

  constructor(
    private readonly endpoints: readonly EngineEndpoint[],
    make: (e: EngineEndpoint) => DockerEngine = (e) => new DockerodeEngine(e),
  ) {
    for (const e of endpoints) this.byName.set(e.name, make(e));
    this.engineNames = endpoints.map((e) => e.name);
  }

  select(name?: string): DockerEngine {
    const engine = this.byName.get(name ?? this.engineNames[0]!);
    if (!engine) throw unknownEngine(name!, this.engineNames);
    return engine;
  }

  /** Every engine must answer: a backup that silently skipped a host would look complete. */
  async version(): Promise<EngineVersion> {
    const versions = await Promise.all(this.endpoints.map(async (e) => [e.name, { url: e.url, ...(await this.select(e.name).version()) }] as const));
    const [, first] = versions[0]!;
    return { version: first.version, apiVersion: first.apiVersion, engines: Object.fromEntries(versions) };
  }

  async listContainers(options?: { all?: boolean }): Promise<ContainerSummary[]> {
    const lists = await Promise.all(
      this.engineNames.map(async (name) =>
        (await this.select(name).listContainers(options)).map((c) => {
          this.owner.set(c.id, name);
          return { ...c, engine: name };
        }),
      ),
    );
    return lists.flat();
  }

  async inspect(ref: string): Promise<ContainerDetails> {
    const name = await this.ownerOf(ref);
    return { ...(await this.select(name).inspect(ref)), engine: name };
  }

  exec = async (id: string, cmd: string[], options?: ExecOptions) => this.select(await this.ownerOf(id)).exec(id, cmd, options);
  getArchive = async (id: string, path: string, options?: TransferOptions): Promise<Readable> => this.select(await this.ownerOf(id)).getArchive(id, path, options);
  putArchive = async (id: string, path: string, tar: Readable, options?: TransferOptions) => this.select(await this.ownerOf(id)).putArchive(id, path, tar, options);
  stop = async (id: string, timeoutSeconds?: number) => this.select(await this.ownerOf(id)).stop(id, timeoutSeconds);
  start = async (id: string) => this.select(await this.ownerOf(id)).start(id);
  pause = async (id: string) => this.select(await this.ownerOf(id)).pause(id);
  unpause = async (id: string) => this.select(await this.ownerOf(id)).unpause(id);
  remove = async (id: string, options?: { keepVolumes?: boolean }) => this.select(await this.ownerOf(id)).remove(id, options);
  removeOwnNetworks = async (leftBehind: (labels: Record<string, string>) => boolean) =>
    (await Promise.all(this.engineNames.map((name) => this.select(name).removeOwnNetworks(leftBehind)))).reduce((a, b) => a + b, 0);
  imageExists = (ref: string) => this.select().imageExists(ref);

  async runToCompletion(spec: HelperSpec) {
    return this.select(await this.placeOf(spec.volumesFrom)).runToCompletion(spec);
  }

  async runDetached(spec: DetachedSpec): Promise<string> {
    const name = await this.placeOf(spec.volumesFrom);
    const id = await this.select(name).runDetached(spec);
    this.owner.set(id, name);
    return id;
  }

  /** A helper that mounts another container's volumes must run on that container's engine. */
  private async placeOf(volumesFrom: string[] | undefined): Promise<string> {
    const [first] = volumesFrom ?? [];
    return first ? this.ownerOf(first.replace(/:(ro|rw)$/, '')) : this.engineNames[0]!;
  }

  /** The engine that has container `ref`; asked of every engine once, then remembered. */
  private async ownerOf(ref: string): Promise<string> {
    const known = this.owner.get(ref);
    if (known) return known;
    const found = await Promise.all(
      this.engineNames.map((name) =>
        this.select(name)
          .inspect(ref)
          .then((c) => ({ name, id: c.id }), undefinedIfNotFound),
      ),
    );
    const hits = found.filter((f): f is { name: string; id: string } => Boolean(f));
    if (hits.length > 1) throw usageError(`'${ref}' names a container on more than one engine (${hits.map((h) => h.name).join(', ')}).`, 'Use its full container id.');
    const hit = hits[0];
    // None has it: let the first engine say so in its own words.
    if (!hit) return this.engineNames[0]!;
    this.owner.set(ref, hit.name);
    this.owner.set(hit.id, hit.name);
    return hit.name;
  }
}
