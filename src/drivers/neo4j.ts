import { archiveDataPaths, restoreDataPaths } from './volume-archive.js';
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
  ready: async (_engine, container) => container.running,
  backup: (ctx) => archiveDataPaths(ctx, ['/data']),
};
