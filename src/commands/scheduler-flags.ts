import { Option } from 'commander';
import type { SharedFlag, SharedFlagValues } from './shared-flags.js';

/** What a scheduled job is told: install writes these into the crontab line, trigger and run take them. */
export interface JobFlags extends SharedFlagValues {
  type?: 'daily' | 'weekly' | 'monthly';
  ping?: string;
  offsite?: boolean;
}

export const JOB_SHARED_FLAGS: readonly SharedFlag[] = ['dir', 'host', 'metrics', 'project', 'encryptTo'];

/** The job's flags; install's words say what goes into the crontab line, trigger's what this one run does. */
export const jobOptions = (forInstall: boolean) => [
  new Option('--type <type>', forInstall ? 'backup type for a cron expression (named schedules set it)' : "backup type (default: the installed schedule's, else daily)").choices([
    'daily',
    'weekly',
    'monthly',
  ]),
  new Option('--ping <url>', forInstall ? 'GET <url>/start, <url> or <url>/fail around each run (healthchecks.io style)' : 'ping this URL as a scheduled run would (<url>/start, <url>, <url>/fail)'),
  new Option(
    '--offsite',
    forInstall
      ? 'store each scheduled backup in the restic repository too, and apply retention there (RESTIC_* variables are kept in the crontab line; the password must come from a file or command)'
      : 'store it in the restic repository too, and apply retention there, as a scheduled run with --offsite would',
  ),
];
