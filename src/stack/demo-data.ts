import { DEMO_PROJECT } from '../core/compose.js';
import { LABELS } from '../core/selection.js';
import type { DockerEngine } from '../docker/engine.js';
import { StackvaultError } from '../errors.js';
import { sleep } from '../util/time.js';
import { STACK_IMAGES } from './images.js';

/** The demo stack of compose/ (its services by name): what `demo` fills it with. */
/** Waits until every service of the demo stack runs (and is healthy where it has a healthcheck); ids by service. */
export async function waitHealthy(engine: DockerEngine, signal: AbortSignal): Promise<Record<string, string>> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    const list = (await engine.listContainers()).filter((c) => c.labels[LABELS.composeProject] === DEMO_PROJECT);
    const byService = Object.fromEntries(list.map((c) => [c.labels[LABELS.composeService]!, c.id]));
    const states = await Promise.all(list.map((c) => engine.inspect(c.id)));
    if (list.length === STACK_IMAGES.length && states.every((s) => s.running && (s.health === undefined || s.health === 'healthy'))) return byService;
    if (Date.now() > deadline) throw new StackvaultError(`The demo stack did not become healthy within 3 minutes: ${states.map((s) => `${s.name}=${s.health ?? s.state}`).join(', ')}.`);
    await sleep(1000, signal);
  }
}

/** Sample data in every store of the demo stack, written with each store's own client. */
export async function seedDemo(engine: DockerEngine, ids: Record<string, string>): Promise<void> {
  const run = async (service: string, cmd: string[]) => {
    const r = await engine.exec(ids[service]!, cmd);
    if (r.exitCode !== 0) throw new StackvaultError(`Seeding ${service} failed: ${r.stderr.trim().split('\n')[0]}`);
  };
  const pg = await engine.inspect(ids.postgres!);
  const pgUser = pg.env.POSTGRES_USER ?? 'postgres';
  await run('postgres', [
    'psql',
    '-U',
    pgUser,
    '-d',
    pg.env.POSTGRES_DB ?? pgUser,
    '-v',
    'ON_ERROR_STOP=1',
    '-qc',
    "CREATE TABLE IF NOT EXISTS messages(id serial PRIMARY KEY, author text, body text, at timestamptz DEFAULT now()); INSERT INTO messages(author, body) SELECT 'user' || g, 'hello from the demo #' || g FROM generate_series(1, 500) g;",
  ]);
  for (const cmd of [
    ['SET', 'bot:greeting', 'hello'],
    ['HSET', 'bot:user:1', 'name', 'Ada', 'lang', 'en'],
    ['RPUSH', 'bot:queue', 'a', 'b', 'c'],
    ['SET', 'bot:session', 'x', 'EX', '86400'],
  ]) {
    await run('redis', ['redis-cli', ...cmd]); // the demo stack sets REDISCLI_AUTH in the container
  }
  await run('app', ['sh', '-c', 'command -v sqlite3 >/dev/null && sqlite3 /app/data/notes.db "INSERT INTO notes(body) VALUES (\'demo note\')" || true']);
  await seedChroma(engine, ids.chroma!);
}

async function seedChroma(engine: DockerEngine, id: string): Promise<void> {
  const c = await engine.inspect(id);
  const port = c.ports?.['8000/tcp'];
  if (!port) return;
  const base = `http://127.0.0.1:${port}/api/v2/tenants/default_tenant/databases/default_database`;
  const post = async (path: string, body: unknown) => {
    const r = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!r.ok) throw new StackvaultError(`Seeding chroma failed: ${r.status} ${await r.text()}`);
    return r.json() as Promise<{ id: string }>;
  };
  const col = await post('/collections', { name: 'demo-memory', get_or_create: true });
  const ids = Array.from({ length: 20 }, (_, i) => `memory-${i}`);
  await post(`/collections/${col.id}/upsert`, {
    ids,
    embeddings: ids.map((_, i) => [Math.sin(i), Math.cos(i), i / 20]),
    documents: ids.map((m) => `remembered ${m}`),
    metadatas: ids.map((_, i) => ({ i })),
  });
}
