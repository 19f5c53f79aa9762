import type { ContainerDetails } from '../docker/engine.js';
import { isServer, type ServerSigns } from './recognise.js';

/**
 * Datastores stackvault has no driver for. Their containers are app containers to discovery,
 * so the files driver copies their volumes while they are paused, which is a copy of the files
 * as a crash at that moment would leave them: not the store's own backup, and what a restore
 * checks is the files, not the store's content. They are recognised the way the supported
 * servers are (exact image name, the official image's environment, the server program), only
 * so that the output says so instead of a bare ✅.
 */
interface OtherStore extends ServerSigns {
  /** The store's name as its users know it. */
  name: string;
  /** What the store's makers offer for backups. */
  ownBackup: string;
}

const OTHER_STORES: readonly OtherStore[] = [
  { name: 'ClickHouse', images: ['clickhouse-server', 'clickhouse'], env: [], binaries: ['clickhouse-server'], ownBackup: 'its BACKUP … TO statement' },
  // The official image sets ELASTIC_CONTAINER=true.
  { name: 'Elasticsearch', images: ['elasticsearch'], env: ['ELASTIC_CONTAINER'], binaries: ['elasticsearch'], ownBackup: 'a snapshot repository (Elastic supports no other way)' },
  { name: 'OpenSearch', images: ['opensearch'], env: [], binaries: ['opensearch'], ownBackup: 'a snapshot repository' },
  // The official image sets MONGO_MAJOR and MONGO_VERSION.
  { name: 'MongoDB', images: ['mongo', 'mongodb-community-server', 'mongodb-enterprise-server'], env: ['MONGO_VERSION'], binaries: ['mongod'], ownBackup: 'mongodump' },
  { name: 'Meilisearch', images: ['meilisearch'], env: [], binaries: ['meilisearch'], ownBackup: 'its dumps' },
  { name: 'Qdrant', images: ['qdrant'], env: [], binaries: [], ownBackup: 'its snapshots' },
  { name: 'Weaviate', images: ['weaviate'], env: [], binaries: [], ownBackup: 'its backup API' },
  { name: 'InfluxDB', images: ['influxdb'], env: [], binaries: ['influxd'], ownBackup: 'influx backup' },
  { name: 'Cassandra', images: ['cassandra'], env: [], binaries: ['cassandra'], ownBackup: 'nodetool snapshot' },
];

/** The datastore without a driver that this container is, if it is one. */
export function otherStoreOf(container: Pick<ContainerDetails, 'name' | 'image' | 'labels' | 'env' | 'cmd'>): OtherStore | undefined {
  return OTHER_STORES.find((s) => isServer(container, s));
}

/** What the output and the manifest say about a datastore without a driver copied as files. */
export function otherStoreWarning(store: OtherStore, copiedWhileRunning: boolean): string {
  const how = copiedWhileRunning ? 'while it ran (stackvault.stop=false), which may not be a state it can start from' : 'while it was paused, as a crash at that moment would leave them';
  return `${store.name} is a datastore stackvault has no driver for: its files were copied ${how}, not with ${store.name}'s own backup, and a restore checks those files, not ${store.name}'s content. For a backup ${store.name} vouches for, also use ${store.ownBackup}.`;
}
