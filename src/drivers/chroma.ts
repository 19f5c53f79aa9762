import { posix } from 'node:path';
import { text } from 'node:stream/consumers';
import type { ContainerDetails, DockerEngine } from '../docker/engine.js';
import type { ServiceEntry } from '../core/manifest.js';
import { findTarEntry } from '../util/tar-build.js';
import { CHROMA_FINGERPRINT_METHOD, chromaFingerprint } from './chroma-fingerprint.js';
import { mountOf } from './container-files.js';
import { tcpAnswers } from './exec.js';
import { type Fingerprint, firstDifference } from './fingerprint.js';
import type { Driver } from './types.js';
import { recorded } from './details.js';
import { isServer } from './recognise.js';
import { archiveDataPaths, archiveSnapshot, checkRestorable, labelledPaths, planDataPaths, recordedEntryRule, restoreDataPaths, VOLUME_DETAILS, type VolumeDetails } from './volume-archive.js';

/**
 * ChromaDB has no dump tool and copying its directory while the server writes is not
 * documented as safe, so the container is stopped while the directory it really persists to
 * is archived. That directory is read from the server's command line (`--path`), its config
 * file (`persist_path`) or its environment (`PERSIST_DIRECTORY`, 0.x), not assumed: real
 * compose files often mount the volume at `/chroma/chroma` (0.x) while 1.x persists to `/data`.
 */
const SIGNS = { images: ['chroma', 'chromadb'], env: [], binaries: [] };

export const chromaDriver: Driver<VolumeDetails, string[]> = {
  name: 'chroma',
  details: VOLUME_DETAILS,
  format: 'tar',
  entryRule: recordedEntryRule,
  imageNames: SIGNS.images,
  recognise: (c) => isServer(c, SIGNS) || (c.cmd.includes('chroma') && c.cmd.includes('run')),
  secrets: (c) => [c.env.CHROMA_SERVER_AUTHN_CREDENTIALS, c.env.CHROMA_SERVER_AUTH_CREDENTIALS].filter((s): s is string => Boolean(s)),

  async backup(ctx) {
    const { paths, warnings } = await whatToArchive(ctx.engine, ctx.container);
    // Chroma's content is what its API serves: the files' fingerprint is only used inside a
    // restore, so the manifest gets the API one (from a throwaway, on first need).
    const { fingerprint: _files, ...outcome } = await archiveDataPaths(ctx, paths, { warnings });
    return outcome;
  },

  /** Consistent backups: the pre-copy runs before the window; in it only the stop; the catch-up of changed files runs after it. */
  async prepareSnapshot(ctx) {
    const { paths, warnings } = await whatToArchive(ctx.engine, ctx.container);
    const snapshot = await archiveSnapshot(ctx, paths, { warnings });
    return {
      ...snapshot,
      async backup(output) {
        const { fingerprint: _files, ...outcome } = await snapshot.backup(output);
        return outcome;
      },
    };
  },

  async plan(engine, container) {
    const { paths, warnings } = await whatToArchive(engine, container);
    return planDataPaths(engine, container, paths, 'stopped', warnings);
  },

  /** Returns the paths it judged writable: the restore and its rollback use them, not the container's state after a failed restore. */
  checkRestore: async (ctx) => {
    const paths = labelledPaths(ctx.container) ?? [(await persistPath(ctx.engine, ctx.container)).path];
    await checkRestorable(ctx, paths);
    return paths;
  },

  /** Files are put back and compared before Chroma starts; its API content is compared after. */
  async restore(ctx) {
    await restoreDataPaths(ctx, ctx.checked ?? labelledPaths(ctx.container) ?? [(await persistPath(ctx.engine, ctx.container)).path]);
  },

  throwaway: (entry) => throwawaySpec(entry),

  artifactFingerprint: (ctx) => ctx.inThrowaway(throwawaySpec(ctx.entry), (container) => chromaFingerprint(ctx.engine, container, recordedPath(ctx.entry))),

  liveFingerprint: ({ engine, container, entry }) => chromaFingerprint(engine, container, recordedPath(entry)),

  fingerprintAt: comparable,

  /** Starts a throwaway Chroma on the archive; its API content must equal the backup's when that is known. */
  deepVerify: (ctx) =>
    ctx.inThrowaway(throwawaySpec(ctx.entry), async (container) => {
      const fp = await chromaFingerprint(ctx.engine, container, recordedPath(ctx.entry));
      ctx.fingerprinted?.(fp);
      const backedUp = ctx.entry.fingerprint && comparable(ctx.entry.fingerprint);
      const difference = backedUp ? firstDifference(backedUp, fp) : undefined;
      if (difference) throw new Error(`the restored copy does not hold the backup's content: ${difference}`);
      const records = Object.fromEntries(
        Object.entries(fp.parts).flatMap(([k, v]) => (k.startsWith(DEFAULT_COLLECTIONS) ? [[k.slice(DEFAULT_COLLECTIONS.length), Number(/n=(\d+)/.exec(v)?.[1])]] : [])),
      );
      return { collections: Object.keys(records).sort(), records };
    }),

  ready: async (engine, container) => tcpAnswers(engine, container.id, 8000),
};

/** A recorded fingerprint, when it can be compared: one of an older method (v1: embeddings as JSON text) is computed again from the artifact. */
function comparable(fp: Fingerprint): Fingerprint | undefined {
  return fp.method === CHROMA_FINGERPRINT_METHOD ? fp : undefined;
}

const DEFAULT_COLLECTIONS = 'default_tenant/default_database/collection ';

/** Where the backed-up Chroma persisted (its one archived directory). */
const recordedPath = (entry: ServiceEntry) => recorded(VOLUME_DETAILS, entry).paths[0] ?? '/data';

/**
 * A throwaway with a fresh volume at each recorded path, so extraction lands on a volume. Its
 * readiness is the driver's own probe, not the image's healthcheck: one that starts a program
 * under a short timeout (the local image's `node -e fetch(...)` under 2 s) never passes on a
 * loaded host, and a drill or deep verify then failed with the server up (seen on a 2-core
 * machine at load 15). Official images declare none, so this is what they got anyway.
 */
// Read over HTTP from this host (chroma-fingerprint.ts): an internal network of its own.
const throwawaySpec = (entry: ServiceEntry) => ({ volumes: recorded(VOLUME_DETAILS, entry).paths, noHealthcheck: true, readOverNetwork: true });

/** The directory to archive (label, else where the server persists) and what to warn about. */
async function whatToArchive(engine: DockerEngine, container: ContainerDetails): Promise<{ paths: string[]; warnings: string[] }> {
  const labelled = labelledPaths(container);
  const found = labelled ? { path: labelled[0]!, source: 'label' } : await persistPath(engine, container);
  const warnings = container.mounts
    .filter((m) => (m.type === 'volume' || m.type === 'bind') && m.destination !== found.path && !found.path.startsWith(`${m.destination}/`))
    .map((m) => `the volume at ${m.destination} is not where Chroma keeps its data (${found.path}, from its ${found.source}); it is not backed up`);
  return { paths: labelled ?? [found.path], warnings };
}

/** Where this Chroma server persists, and how we know. */
export async function persistPath(engine: DockerEngine, container: ContainerDetails): Promise<{ path: string; source: string }> {
  const cmd = container.cmd;
  const flag = cmd.findIndex((a) => a === '--path' || a === '--persist-path');
  if (flag >= 0 && cmd[flag + 1]) return { path: clean(cmd[flag + 1]!), source: 'command line' };
  const inline = cmd.find((a) => /^--(persist-)?path=/.test(a));
  if (inline) return { path: clean(inline.slice(inline.indexOf('=') + 1)), source: 'command line' };
  const config = cmd.find((a) => /\.ya?ml$/.test(a)) ?? container.env.CONFIG_PATH;
  if (config) {
    const fromFile = await readPersistPath(engine, container.id, config).catch(() => undefined);
    if (fromFile) return { path: clean(fromFile), source: `config file ${config}` };
  }
  const env = container.env.PERSIST_DIRECTORY ?? container.env.CHROMA_PERSIST_PATH;
  if (env) return { path: clean(env), source: 'environment' };
  // 1.x default; a volume at the 0.x path with nothing else said is taken at its word.
  if (!mountOf(container, '/data') && mountOf(container, '/chroma/chroma') && !cmd.some((a) => a === 'run')) return { path: '/chroma/chroma', source: 'volume (0.x layout)' };
  return { path: '/data', source: "image's default" };
}

const clean = (p: string) => posix.normalize(p).replace(/\/+$/, '') || '/';

async function readPersistPath(engine: DockerEngine, id: string, file: string): Promise<string | undefined> {
  const entry = await findTarEntry(await engine.getArchive(id, file), posix.basename(file));
  const yaml = await text(entry.stream);
  return /^\s*persist_path:\s*["']?([^"'\s#]+)/m.exec(yaml)?.[1];
}
