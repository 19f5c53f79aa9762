import { archiveDataPaths, restoreDataPaths } from './volume-archive.js';
import { execChecked } from './exec.js';
import type { Driver } from './types.js';

/**
 * Neo4j Community has no online backup and `neo4j-admin database dump` needs the database
 * stopped; stopping neo4j inside the official container ends the container. So: stop the
 * container and archive its /data volume.
 */
export const neo4jDriver: Driver = {
  name: 'neo4j',
  format: 'tar',
  imageNames: ['neo4j'],
  secrets: (c) => {
    const auth = c.env.NEO4J_AUTH;
    if (!auth || auth === 'none') return [];
    const password = auth.includes('/') ? auth.slice(auth.indexOf('/') + 1) : auth;
    return [auth, password];
  },
  restore: restoreDataPaths,
  /** Restores into a throwaway container and counts the files that came back. */
  deepVerify: (ctx) =>
    ctx.inThrowaway({ env: { NEO4J_AUTH: 'none' }, volumes: (ctx.entry.details?.paths as string[] | undefined) ?? ['/data'] }, async (container) => {
      const paths = (ctx.entry.details?.paths as string[] | undefined) ?? ['/data'];
      const files = Number(await execChecked(ctx.engine, container.id, ['sh', '-c', 'find "$@" -type f | wc -l', 'sh', ...paths], 'count files'));
      const expected = ctx.entry.details?.tarFiles as number | undefined;
      if (expected !== undefined && files < expected) throw new Error(`${files} files came back, the archive has ${expected}`);
      return { files };
    }),
  ready: async (_engine, container) => container.running,
  backup: (ctx) => archiveDataPaths(ctx, ['/data']),
};
