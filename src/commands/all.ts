import type { CommandModule } from './command.js';
import { cleanupCommand } from './cleanup.js';
import { createCommand } from './create.js';
import { deleteCommand } from './delete.js';
import { demoCommand } from './demo.js';
import { drillCommand } from './drill.js';
import { listCommand } from './list.js';
import { logCommand } from './log.js';
import { pruneCommand } from './prune.js';
import { reportCommand } from './report.js';
import { restoreCommand } from './restore.js';
import { schedulerInstallCommand } from './scheduler-install.js';
import { schedulerRunCommand, schedulerTriggerCommand } from './scheduler-run.js';
import { schedulerStatusCommand } from './scheduler-status.js';
import { schedulerUninstallCommand } from './scheduler-uninstall.js';
import { stackCommands } from './stack.js';
import { statsCommand } from './stats.js';
import { updateCommand } from './update.js';
import { verifyCommand } from './verify.js';

/**
 * Every command, in the order `--help` lists them (restic's cmd_*.go, one file each). A new
 * command is one file and one line here.
 */
export const COMMANDS = [
  createCommand,
  listCommand,
  restoreCommand,
  reportCommand,
  drillCommand,
  verifyCommand,
  cleanupCommand,
  pruneCommand,
  deleteCommand,
  logCommand,
  statsCommand,
  schedulerInstallCommand,
  schedulerUninstallCommand,
  schedulerStatusCommand,
  schedulerTriggerCommand,
  schedulerRunCommand,
  demoCommand,
  ...stackCommands,
  updateCommand,
  // Each module types its own flags; the runner hands over what commander parsed for it.
] as unknown as readonly CommandModule<Record<string, unknown>, unknown>[];
