import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { pipeline } from 'node:stream/promises';
import { foreignText, undefinedIfNotFound, type ContainerDetails, type DockerEngine } from '../docker/engine.js';
import { findTarEntry } from '../util/tar-build.js';
import { type ChromaPage, readChromaPage } from './chroma-page.js';
import { type Fingerprint, MultisetDigest } from './fingerprint.js';

/**
 * chroma-api-v2: embeddings hashed as the float32 values Chroma keeps, not as the JSON text of
 * the numbers (v1: a number printed another way by another Chroma, such as 0.1 for
 * 0.10000000149011612, read as different content; and about 8 KB of text per record to hash).
 */
export const CHROMA_FINGERPRINT_METHOD = 'chroma-api-v2';
const PAGE = 500;

interface Collection {
  id: string;
  name: string;
  metadata?: unknown;
}

/** JSON with object keys sorted, so equal content always reads the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/**
 * Chroma's content through its own HTTP API (v2): per tenant, database and collection, the
 * collection's metadata and a multiset of its records (id, embedding, document, metadata,
 * uri). Tenants are listed from the server's SQLite catalog, which the API cannot list.
 */
export async function chromaFingerprint(engine: DockerEngine, container: ContainerDetails, dataPath: string): Promise<Fingerprint> {
  if (!container.ipAddress) throw new Error(`${container.name} has no network address to reach Chroma's API on`);
  const base = `http://${container.ipAddress}:8000/api/v2`;
  // A server with token auth is read with its own token (sent to it only, never logged).
  const token = container.env.CHROMA_SERVER_AUTHN_CREDENTIALS || container.env.CHROMA_SERVER_AUTH_CREDENTIALS;
  const auth: Record<string, string> = token ? { authorization: `Bearer ${token}`, 'x-chroma-token': token } : {};
  const request = async (path: string, body?: unknown): Promise<Response> => {
    let res: Response;
    try {
      res = await fetch(base + path, {
        method: body ? 'POST' : 'GET',
        headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...auth },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(60_000),
      });
    } catch (err) {
      // fetch quotes a header value it refuses, and the token is one.
      const said = err instanceof Error ? err.message : String(err);
      const hidden = foreignText(engine, said, [base + path]);
      throw hidden === said ? err : new Error(hidden);
    }
    // The server's answer is foreign text: it may quote the token it refused.
    if (!res.ok) throw new Error(`Chroma answered ${res.status} on ${path}: ${foreignText(engine, (await res.text()).slice(0, 200), [base + path])}`);
    return res;
  };
  const call = async <T>(path: string): Promise<T> => (await (await request(path)).json()) as T;
  const parts: Record<string, string> = {};
  const tenants = await listTenants(engine, container.id, dataPath);
  parts.tenants = JSON.stringify(tenants);
  for (const tenant of tenants) {
    const t = `/tenants/${encodeURIComponent(tenant)}`;
    const databases = (await call<Array<{ name: string }>>(`${t}/databases`)).map((d) => d.name).sort();
    parts[`tenant ${tenant}`] = JSON.stringify(databases);
    for (const db of databases) {
      const d = `${t}/databases/${encodeURIComponent(db)}`;
      const collections: Collection[] = [];
      for (let offset = 0; ; offset += PAGE) {
        const page = await call<Collection[]>(`${d}/collections?limit=${PAGE}&offset=${offset}`);
        collections.push(...page);
        if (page.length < PAGE) break;
      }
      for (const c of collections) {
        const records = new MultisetDigest();
        for (let offset = 0; ; offset += PAGE) {
          const res = await request(`${d}/collections/${c.id}/get`, { limit: PAGE, offset, include: [...RECORD_FIELDS] });
          const page = await readChromaPage((res.body ?? []) as AsyncIterable<Uint8Array>, PAGE); // Node's web streams are async iterable
          const ids = recordFields(page, c.name);
          const field = (name: string, i: number) => page.arrays.get(name)?.[i] ?? null;
          for (const [i, id] of ids.entries()) records.add(recordDigest(id as string, field('embeddings', i), field('documents', i), field('metadatas', i), field('uris', i)));
          if (ids.length < PAGE) break;
        }
        const meta = createHash('sha256')
          .update(canonical(c.metadata ?? null))
          .digest('hex')
          .slice(0, 16);
        parts[`${tenant}/${db}/collection ${c.name}`] = `meta=${meta} ${records}`;
      }
    }
  }
  return { method: CHROMA_FINGERPRINT_METHOD, parts };
}

/**
 * A page's ids, once every field a record is made of is a list as long as they are, or null
 * (absent): an item past the ids would not be hashed, and a field of another shape would be
 * hashed as null, so a page that differs only there would look equal.
 */
export function recordFields(page: ChromaPage, collection: string): unknown[] {
  const ids = page.arrays.get('ids');
  if (!ids) throw new Error(`Chroma's answer for collection ${collection} has no list of ids`);
  for (const name of RECORD_FIELDS) {
    const list = page.arrays.get(name);
    if (list ? list.length !== ids.length : (page.values.get(name) ?? null) !== null) {
      throw new Error(`Chroma's answer for collection ${collection} has ${list ? `${list.length} ${name}` : `${name} that are not a list`} for ${ids.length} ids`);
    }
  }
  return ids;
}

const RECORD_FIELDS = ['embeddings', 'documents', 'metadatas', 'uris'] as const;

/**
 * One record: its id, document, metadata and uri as canonical JSON (with the embedding's
 * length), then the embedding as float32 bytes. An embedding that is not a list of numbers
 * goes into the JSON as it came.
 */
export function recordDigest(id: string, embedding: unknown, document: unknown, metadata: unknown, uri: unknown): Buffer {
  const numbers = embedding instanceof Float32Array || (Array.isArray(embedding) && embedding.every((x) => typeof x === 'number')) ? (embedding as ArrayLike<number>) : undefined;
  const hash = createHash('sha256').update(canonical([id, numbers ? numbers.length : (embedding ?? null), document, metadata, uri]));
  if (numbers) {
    // Little-endian whatever the host's byte order.
    const bytes = new DataView(new ArrayBuffer(numbers.length * 4));
    for (let i = 0; i < numbers.length; i++) bytes.setFloat32(i * 4, numbers[i]!, true);
    hash.update(new Uint8Array(bytes.buffer));
  }
  return hash.digest();
}

/** Tenant names from `chroma.sqlite3` (copied out with its WAL, opened on the host). */
async function listTenants(engine: DockerEngine, containerId: string, dataPath: string): Promise<string[]> {
  const work = await mkdtemp(join(tmpdir(), 'stackvault-chroma-'));
  try {
    for (const suffix of ['', '-wal']) {
      const archive = await engine.getArchive(containerId, `${dataPath}/chroma.sqlite3${suffix}`).catch(undefinedIfNotFound);
      if (!archive) {
        if (!suffix) return ['default_tenant'];
        continue;
      }
      const entry = await findTarEntry(archive, `chroma.sqlite3${suffix}`);
      await pipeline(entry.stream, createWriteStream(join(work, `chroma.sqlite3${suffix}`), { mode: 0o600 }));
    }
    const db = new DatabaseSync(join(work, 'chroma.sqlite3'));
    try {
      return db
        .prepare('SELECT id FROM tenants ORDER BY id')
        .all()
        .map((r) => String(r.id));
    } finally {
      db.close();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
