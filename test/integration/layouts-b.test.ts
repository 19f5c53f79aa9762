import { layoutRoundTrip } from '../support/layout-roundtrip.js';

// Real stacks, backed up and restored whole (test/layouts/README.md). Split over two files so they run side by side.
layoutRoundTrip('whisperengine', ['chromadb:chroma:ok', 'neo4j:neo4j:ok', 'postgres:postgres:ok', 'redis:redis:ok', 'whisperengine-bot:files:ok']);
layoutRoundTrip('librechat', ['api:files:ok', 'vectordb:postgres:ok']);
layoutRoundTrip('langfuse', ['postgres:postgres:ok', 'redis:redis:ok']);
layoutRoundTrip('mem0', ['mem0:files:ok', 'postgres:postgres:ok']);
