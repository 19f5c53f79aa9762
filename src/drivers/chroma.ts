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
  /** Starts a throwaway Chroma on the archive and lists its collections with their sizes. */
  deepVerify: (ctx) =>
    ctx.inThrowaway({ volumes: (ctx.entry.details?.paths as string[] | undefined) ?? ['/data'] }, async (container) => {
      const base = `http://${container.ipAddress}:8000/api/v2/tenants/default_tenant/databases/default_database`;
      const get = async <T>(path: string): Promise<T> => {
        const res = await fetch(base + path, { signal: AbortSignal.timeout(10_000) });
        if (!res.ok) throw new Error(`Chroma answered ${res.status} on ${path}`);
        return (await res.json()) as T;
      };
      const collections = await get<Array<{ id: string; name: string }>>('/collections');
      const records: Record<string, number> = {};
      for (const c of collections) records[c.name] = await get<number>(`/collections/${c.id}/count`);
      return { collections: collections.map((c) => c.name).sort(), records };
    }),
  ready: async (engine, container) => tcpAnswers(engine, container.id, 8000),
  backup: (ctx) => archiveDataPaths(ctx, ['/data', '/chroma/chroma']),
};
