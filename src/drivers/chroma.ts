import { archiveDataPaths, restoreDataPaths } from './volume-archive.js';
import { tcpAnswers } from './exec.js';
import type { Driver } from './types.js';

/**
 * ChromaDB has no dump tool and copying /data while the server writes is not documented as
 * safe, so the container is stopped while its volume is archived.
 */
export const chromaDriver: Driver = {
  name: 'chroma',
  format: 'tar',
  imageNames: ['chroma', 'chromadb'],
  secrets: (c) => [c.env.CHROMA_SERVER_AUTHN_CREDENTIALS, c.env.CHROMA_SERVER_AUTH_CREDENTIALS].filter((s): s is string => Boolean(s)),
  restore: restoreDataPaths,
  ready: async (engine, container) => tcpAnswers(engine, container.id, 8000),
  backup: (ctx) => archiveDataPaths(ctx, ['/data', '/chroma/chroma']),
};
