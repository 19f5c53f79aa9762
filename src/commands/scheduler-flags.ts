import { Option } from 'commander';
import type { SharedFlag, SharedFlagValues } from './shared-flags.js';

/** What a scheduled job is told: install writes these into the crontab line, trigger and run take them. */
export interface JobFlags extends SharedFlagValues {
  type?: 'daily' | 'weekly' | 'monthly';
  ping?: string;
  pingFile?: string;
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
  new Option(
    '--ping <url>',
    forInstall
      ? "GET <url>/start, <url> or <url>/fail around each run (healthchecks.io style); the URL holds the check's key, so it is kept in <dir>/.scheduler-ping-url (mode 600), never in the crontab line"
      : 'ping this URL as a scheduled run would (<url>/start, <url>, <url>/fail); warns: the URL is then on the command line, which every local user can see, so prefer --ping-file',
  ).conflicts('pingFile'),
  new Option(
    '--ping-file <path>',
    forInstall ? 'like --ping, with the URL read from this file (yours, mode 600) at each run; the line names the file, not the URL' : 'ping the URL this file holds, as a scheduled run does',
  ),
  new Option(
    '--offsite',
    forInstall
      ? 'store each scheduled backup in the restic repository too, and apply retention there (RESTIC_* variables are kept in the crontab line; the password must come from a file or command)'
      : 'store it in the restic repository too, and apply retention there, as a scheduled run with --offsite would',
  ),
];
