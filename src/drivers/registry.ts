import { chromaDriver } from './chroma.js';
import { filesDriver } from './files.js';
import { mariadbDriver } from './mariadb.js';
import { neo4jDriver } from './neo4j.js';
import { postgresDriver } from './postgres.js';
import { redisDriver } from './redis.js';
import { sqliteDriver } from './sqlite.js';
import type { Driver } from './types.js';

/** Every datastore stackvault knows. Adding one: its driver file, its test, and one line here. */
export const DRIVERS: readonly Driver[] = [postgresDriver, mariadbDriver, redisDriver, chromaDriver, neo4jDriver, sqliteDriver, filesDriver];
