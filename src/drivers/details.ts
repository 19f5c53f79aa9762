import type { ServiceEntry } from '../core/manifest.js';
import type { Schema } from '../util/schema.js';

/**
 * A service's `details` as its driver recorded them, typed by the driver's schema. The core
 * checks every selected service's details against it before a restore or verify changes
 * anything, so a driver reading them here gets what its schema says (or a SchemaError).
 */
export function recorded<T>(schema: Schema<T>, entry: Pick<ServiceEntry, 'details'>): T {
  return schema.parse(entry.details ?? {}, 'details');
}
