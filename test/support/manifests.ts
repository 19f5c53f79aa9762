/**
 * A manifest with every field stackvault writes, dated by its id (the id's second, UTC), for
 * tests that plant backups on disk: the catalog refuses anything less as not written by it.
 */
export function writtenManifest(id: string, services: Array<Record<string, unknown>>, over: Record<string, unknown> = {}): Record<string, unknown> {
  const m = /_(\d{4})(\d\d)(\d\d)_(\d\d)(\d\d)(\d\d)(?:_\d+)?$/.exec(id);
  // An id that is not one (a hostile record) gets a date all the same: the id is what is under test.
  const at = m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.000Z` : '2026-06-01T00:00:00.000Z';
  return {
    schemaVersion: 1,
    id,
    createdAt: at,
    completedAt: at,
    type: 'daily',
    comment: '',
    status: 'ok',
    tool: { name: 'stackvault', version: '1.0.0' },
    docker: { version: '28.0.0', apiVersion: '1.41' },
    host: 'test-host',
    services,
    ...over,
  };
}

/** A service entry as stackvault writes one for a container, with its artifact's facts. */
export function writtenService(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'app', container: 'bot-app-1', containerId: 'c0ffee', image: 'app:1', driver: 'redis', status: 'ok', durationMs: 1, ...over };
}
