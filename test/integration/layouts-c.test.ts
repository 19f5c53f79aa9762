import { expect } from 'vitest';
import { layoutRoundTrip } from '../support/layout-roundtrip.js';

// Real stacks, backed up and restored whole (test/layouts/README.md). Split over files so they run side by side.

// ClickHouse has no driver: its volumes are copied as files while it is paused, and the user is
// told so under its ✅ line and in the manifest, not left to take it for a dump by its own tool.
// The round trip restores it, and ClickHouse's own client reads back every row.
layoutRoundTrip('plausible', ['plausible:files:ok', 'plausible_db:postgres:ok', 'plausible_events_db:files:ok'], (manifest, told) => {
  const events = manifest.services.find((s) => s.name === 'plausible_events_db')!;
  const said = 'ClickHouse is a datastore stackvault has no driver for: its files were copied while it was paused';
  expect(events.warnings).toEqual([expect.stringContaining(said)]);
  expect(told).toContain(`warning: plausible_events_db: ${said}`);
  expect(events.details?.paths).toEqual(['/var/lib/clickhouse', '/var/log/clickhouse-server']);
  // Only the store without a driver gets it.
  expect(manifest.services.filter((s) => s.warnings?.length).map((s) => s.name)).toEqual(['plausible_events_db']);
  expect(manifest.status).toBe('ok');
});

// MariaDB with MYSQL_* variables; app and cron share one volume, backed up once.
layoutRoundTrip('nextcloud', ['app:files:ok', 'db:mariadb:ok', 'redis:redis:ok'], (manifest) => {
  expect(manifest.leftOut?.map((l) => `${l.service}: ${l.reason}`)).toEqual([expect.stringMatching(/^cron: no data mounts \(\/var\/www\/html: shared with .*app_1, backed up there\)$/)]);
});
