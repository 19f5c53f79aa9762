import { expect } from 'vitest';
import { layoutRoundTrip } from '../support/layout-roundtrip.js';

// Real stacks, backed up and restored whole (test/layouts/README.md). Split over files so they run side by side.

// A superuser with capitals (n8nAdmin) and no postgres role; the worker and the main instance share n8n_storage.
layoutRoundTrip('n8n', ['n8n-worker:files:ok', 'postgres:postgres:ok', 'redis:redis:ok'], (manifest) => {
  expect(manifest.leftOut?.map((l) => l.service).sort()).toEqual(['n8n', 'n8n-runner', 'n8n-worker-runner']);
});

// The documents live in volumes under /usr/src/paperless: the webserver failed whole ("inside the
// system directory /usr") before data paths on a mount there were taken.
layoutRoundTrip('paperless', ['broker:redis:ok', 'db:postgres:ok', 'webserver:files:ok'], (manifest) => {
  const web = manifest.services.find((s) => s.name === 'webserver')!;
  expect(web.details?.paths).toEqual(['/usr/src/paperless/consume', '/usr/src/paperless/data', '/usr/src/paperless/export', '/usr/src/paperless/media']);
});
