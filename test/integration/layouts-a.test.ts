import { layoutRoundTrip } from '../support/layout-roundtrip.js';

// Real stacks, backed up and restored whole (test/layouts/README.md). Split over two files so they run side by side.
layoutRoundTrip('dify', ['api:files:ok', 'db_postgres:postgres:ok', 'pgvector:postgres:ok', 'plugin_daemon:files:ok', 'redis:redis:ok']);
layoutRoundTrip('cognee', ['cognee:files:ok', 'neo4j:neo4j:ok', 'postgres:postgres:ok', 'redis:redis:ok']);
layoutRoundTrip('immich', ['database:postgres:ok', 'immich-machine-learning:files:ok', 'immich-server:files:ok', 'redis:redis:ok']);
