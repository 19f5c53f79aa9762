import type { ServiceEntry } from './manifest.js';

/** What a long-running core function reports; renderers decide how it looks. */
export interface ProgressSink {
  /** `activity` says what happens, e.g. "backing up (postgres)". */
  serviceStarted(service: string, activity: string): void;
  serviceBytes(service: string, rawBytes: number): void;
  serviceDone(entry: ServiceEntry): void;
  warn(message: string): void;
  info(message: string): void;
}
