import { execChecked } from './exec.js';
import { fingerprintTar } from './tar-fingerprint.js';
import type { Driver } from './types.js';
import { recorded } from './details.js';
import { count, type Infer, object, optional } from '../util/schema.js';
import { isServer } from './recognise.js';
import { archiveDataPaths, archiveSnapshot, checkRestorable, labelledPaths, planDataPaths, readBack, recordedEntryRule, restoreDataPaths, VOLUME_SHAPE } from './volume-archive.js';

/** An archive of data paths; backups written before December 2026 also counted its files here (now `archive.files`). */
const DETAILS = object({ ...VOLUME_SHAPE, tarFiles: optional(count) });

/** The official image's data and (when mounted) log volumes. */
const USUAL_PATHS = ['/data'];

/**
 * Neo4j Community has no online backup and `neo4j-admin database dump` needs the database
 * stopped; stopping neo4j inside the official container ends the container. So: stop the
 * container and archive its /data volume. Its content is its files: they are compared with
 * the archive after a restore, before Neo4j starts (a running Neo4j changes them).
 */
// The official image sets NEO4J_HOME and NEO4J_EDITION; apps that talk to Neo4j set NEO4J_URI etc., not these.
const SIGNS = { images: ['neo4j'], env: ['NEO4J_HOME', 'NEO4J_EDITION'], binaries: ['neo4j'] };

export const neo4jDriver: Driver<Infer<typeof DETAILS>> = {
  name: 'neo4j',
  details: DETAILS,
  format: 'tar',
  entryRule: recordedEntryRule,
  imageNames: SIGNS.images,
  recognise: (c) => isServer(c, SIGNS),
  secrets: (c) => {
    const auth = c.env.NEO4J_AUTH;
    if (!auth || auth === 'none') return [];
    const password = auth.includes('/') ? auth.slice(auth.indexOf('/') + 1) : auth;
    return [auth, password];
  },
  backup: (ctx) => archiveDataPaths(ctx, labelledPaths(ctx.container) ?? USUAL_PATHS),
  /** Consistent backups: the pre-copy runs before the window; in it only the stop; the catch-up of changed files runs after it. */
  prepareSnapshot: (ctx) => archiveSnapshot(ctx, labelledPaths(ctx.container) ?? USUAL_PATHS),
  plan: (engine, container) => planDataPaths(engine, container, labelledPaths(container) ?? USUAL_PATHS, 'stopped'),
  checkRestore: async (ctx) => {
    await checkRestorable(ctx, labelledPaths(ctx.container) ?? USUAL_PATHS);
  },
  restore: (ctx) => restoreDataPaths(ctx, labelledPaths(ctx.container) ?? USUAL_PATHS),
  artifactFingerprint: ({ open }) => fingerprintTar(open()),
  liveFingerprint: ({ engine, container, entry }) => readBack({ engine, container }, recorded(DETAILS, entry).paths),
  /** A fresh volume at each recorded path, named by the paths label so a restore finds them. */
  throwaway: (entry) => {
    const { paths } = recorded(DETAILS, entry);
    return { env: { NEO4J_AUTH: 'none' }, volumes: paths, labels: { 'stackvault.paths': paths.join(',') } };
  },
  /** Restores into a throwaway container and counts the files that came back. */
  deepVerify: (ctx) =>
    ctx.inThrowaway(neo4jDriver.throwaway!(ctx.entry), async (container) => {
      const { paths, tarFiles } = recorded(DETAILS, ctx.entry);
      const files = Number(await execChecked(ctx.engine, container.id, ['sh', '-c', 'find "$@" -type f | wc -l', 'sh', ...paths], 'count files'));
      const expected = ctx.entry.archive?.files ?? tarFiles;
      if (expected !== undefined && files < expected) throw new Error(`${files} files came back, the archive has ${expected}`);
      return { files };
    }),
  ready: async (_engine, container) => container.running,
};
