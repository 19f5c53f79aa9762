import { verifyBackup } from '../core/verify.js';
import { integrityError } from '../errors.js';
import { formatBytes } from '../util/format.js';
import { commandContext } from './context.js';
import { checkRepository, withFetchedCopy } from '../core/offsite.js';
import { requireOffsite, shownRepository } from '../offsite/restic.js';
import { interruptSignal } from '../util/interrupt.js';
import { plainProgress } from './progress-renderers.js';

interface VerifyFlags {
  host?: string[];
  dir: string;
  identity?: string;
  json?: boolean;
  deep?: boolean;
  remote?: boolean;
  readDataSubset?: string;
}

export async function verifyCommand(id: string, flags: VerifyFlags): Promise<{ backupId: string }> {
  if (!flags.remote) return verifyIn(flags.dir, id, flags);
  // --remote: restic's own check of the repository, then ours of the backup fetched from it.
  requireOffsite();
  const out = flags.json ? process.stderr : process.stdout;
  const subset = flags.readDataSubset ?? '10%';
  out.write(`restic check --read-data-subset=${subset} of ${shownRepository()} ...\n`);
  out.write(`✅ repository: ${await checkRepository(subset, interruptSignal)}\n`);
  return withFetchedCopy(flags.dir, id, (scratch, wanted) => verifyIn(scratch, wanted, flags, ' (fetched from the restic repository)'), interruptSignal);
}

async function verifyIn(dir: string, id: string, flags: VerifyFlags, where = ''): Promise<{ backupId: string }> {
  const out = flags.json ? process.stderr : process.stdout;
  const deep = flags.deep ? { ...commandContext(flags.host), progress: plainProgress((l) => out.write(`${l}\n`)) } : undefined;
  const result = await verifyBackup(dir, id, deep, flags.identity, commandContext().drivers);
  for (const s of result.services) {
    if (!s.ok) {
      out.write(`❌ ${s.service}: ${s.error}\n`);
      continue;
    }
    const opened = `checksum ok, ${formatBytes(s.check!.bytes)} -> ${formatBytes(s.check!.rawBytes)} opens cleanly${s.check!.tarEntries !== undefined ? ` (${s.check!.tarEntries} archive entries)` : ''}`;
    out.write(`✅ ${s.service}: ${opened}${s.facts ? `; restored copy holds ${JSON.stringify(s.facts)}` : ''}\n`);
  }
  if (flags.json) process.stdout.write(`${JSON.stringify({ id: result.backup.id, deep: result.deep, services: result.services }, null, 2)}\n`);
  const bad = result.services.filter((s) => !s.ok);
  if (bad.length) throw integrityError(`Backup ${result.backup.id}${where} failed ${result.deep ? 'deep ' : ''}verification: ${bad.map((s) => s.service).join(', ')}.`);
  out.write(`Backup ${result.backup.id}${where}: all ${result.services.length} artifacts verified${result.deep ? ' and restored into throwaway containers' : ''}.\n`);
  return { backupId: result.backup.id };
}
