import { Option } from 'commander';
import type { SharedFlag, SharedFlagValues } from './shared-flags.js';

/** What a scheduled job is told: install writes these into the crontab line, trigger and run take them. */
export interface JobFlags extends SharedFlagValues {
  type?: 'daily' | 'weekly' | 'monthly';
  ping?: string;
  offsite?: boolean;
}

export const JOB_SHARED_FLAGS: readonly SharedFlag[] = ['dir', 'host', 'metrics', 'project', 'encryptTo'];

export const jobOptions = () => [
  new Option('--type <type>', 'backup type for a cron expression (named schedules set it)').choices(['daily', 'weekly', 'monthly']),
  new Option('--ping <url>', 'GET <url>/start, <url> or <url>/fail around each run (healthchecks.io style)'),
  new Option(
    '--offsite',
    'store each scheduled backup in the restic repository too, and apply retention there (RESTIC_* variables are kept in the crontab line; the password must come from a file or command)',
  ),
];
