import { Option } from 'commander';
import type { ServiceVerification } from '../core/verify.js';
import { integrityError, ALWAYS_POSSIBLE, ExitCode } from '../errors.js';
import { formatBytes } from '../util/format.js';
import { shown } from '../util/terminal.js';
import { type CommandIO, defineCommand, type Outcome } from './command.js';
import type { SharedFlagValues } from './shared-flags.js';

interface VerifyFlags extends SharedFlagValues {
  deep?: boolean;
  remote?: boolean;
  readDataSubset?: string;
}

interface Verification {
  id: string;
  deep: boolean;
  services: ServiceVerification[];
  notRecorded?: string;
}

export const verifyCommand = defineCommand<VerifyFlags, Verification>({
  path: 'backup verify',
  exitCodes: [...ALWAYS_POSSIBLE, ExitCode.notFound, ExitCode.integrity, ExitCode.dockerUnreachable, ExitCode.storage, ExitCode.locked, ExitCode.offsite],
  description: 're-hash every artifact and check it opens; --deep restores into throwaway containers',
  arguments: [{ name: '<id>', description: 'backup directory name, its timestamp part, or "latest"' }],
  shared: ['dir', 'host', 'identity', 'json'],
  options: () => [
    new Option('--deep', 'restore each artifact into a throwaway container and check the data'),
    new Option('--remote', 'check the restic repository (restic check), then verify the backup as stored there (fetched into a scratch directory, every checksum checked)'),
    new Option('--read-data-subset <spec>', "with --remote: how much of the repository's data restic reads back (restic's syntax: 10%, 1/5, 500M)").default('10%'),
  ],
  examples: ['./bot.sh backup verify latest', './bot.sh backup verify latest --deep', './bot.sh backup verify latest --remote --read-data-subset 100%'],
  logged: true,
  async run({ args: [id], flags, io }) {
    if (!flags.remote) return verifyIn(flags.dir, id!, flags, io);
    // --remote: restic's own check of the repository, then ours of the backup fetched from it.
    const [{ checkRepository, withFetchedCopy }, { requireOffsite, shownRepository }, { interruptSignal }] = await Promise.all([
      import('../core/offsite.js'),
      import('../offsite/restic.js'),
      import('../util/interrupt.js'),
    ]);
    requireOffsite();
    const subset = flags.readDataSubset ?? '10%';
    io.say(`restic check --read-data-subset=${subset} of ${shownRepository()} ...`);
    io.say(`✅ repository: ${await checkRepository(subset, interruptSignal)}`);
    return withFetchedCopy(flags.dir, id!, (scratch, wanted) => verifyIn(scratch, wanted, flags, io, ' (fetched from the restic repository)'), interruptSignal);
  },
});

/** Facts of a restored copy as a line: one row count per table of 20,000 tables made a line of 349 KB (--json has them all). */
const FACTS_SHOWN = 300;
const shortFacts = (json: string) => (json.length <= FACTS_SHOWN ? json : `${json.slice(0, FACTS_SHOWN)}... (${json.length - FACTS_SHOWN} characters more: --json prints all)`);

async function verifyIn(dir: string, id: string, flags: VerifyFlags, io: CommandIO, where = ''): Promise<Outcome<Verification>> {
  const [{ verifyBackup }, { commandContext }, { plainProgress }] = await Promise.all([import('../core/verify.js'), import('./context.js'), import('./progress-renderers.js')]);
  // Without --deep no engine is needed, so none is reached (nor are --host values read).
  const deep = flags.deep ? { ...commandContext(flags.host), progress: plainProgress(io.say) } : undefined;
  const result = await verifyBackup(dir, id, deep, flags.identity, (await import('../drivers/registry.js')).DRIVERS);
  for (const s of result.services) {
    if (!s.ok) {
      io.say(`❌ ${shown(s.service)}: ${shown(s.error)}`);
      continue;
    }
    const opened = `checksum ok, ${formatBytes(s.check!.bytes)} -> ${formatBytes(s.check!.rawBytes)} opens cleanly${s.check!.tarEntries !== undefined ? ` (${s.check!.tarEntries} archive entries)` : ''}`;
    io.say(`✅ ${shown(s.service)}: ${opened}${s.facts ? `; restored copy holds ${shown(shortFacts(JSON.stringify(s.facts)))}` : ''}`);
  }
  if (result.notRecorded) io.say(`⚠️  The result was not recorded in the manifest: ${shown(result.notRecorded)}`);
  const data = { id: result.backup.id, deep: result.deep, services: result.services, ...(result.notRecorded ? { notRecorded: result.notRecorded } : {}) };
  const bad = result.services.filter((s) => !s.ok);
  if (bad.length) {
    const error = integrityError(`Backup ${result.backup.id}${where} failed ${result.deep ? 'deep ' : ''}verification: ${bad.map((s) => s.service).join(', ')}.`);
    return { data, backupId: result.backup.id, error };
  }
  io.say(`Backup ${shown(result.backup.id)}${where}: all ${result.services.length} artifacts verified${result.deep ? ' and restored into throwaway containers' : ''}.`);
  return { data, backupId: result.backup.id };
}
