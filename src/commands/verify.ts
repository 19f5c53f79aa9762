import { verifyBackup } from '../core/verify.js';
import { integrityError, StackvaultError } from '../errors.js';
import { formatBytes } from '../util/format.js';

interface VerifyFlags {
  dir: string;
  json?: boolean;
  deep?: boolean;
}

export async function verifyCommand(id: string, flags: VerifyFlags): Promise<void> {
  if (flags.deep) throw new StackvaultError('verify --deep (restoring into throwaway containers) is not available in this version yet; plain verify checks checksums and that every artifact opens.');
  const result = await verifyBackup(flags.dir, id);
  const out = flags.json ? process.stderr : process.stdout;
  for (const s of result.services) {
    out.write(s.ok
      ? `✅ ${s.service}: checksum ok, ${formatBytes(s.check!.bytes)} -> ${formatBytes(s.check!.rawBytes)} opens cleanly${s.check!.tarEntries !== undefined ? ` (${s.check!.tarEntries} archive entries)` : ''}\n`
      : `❌ ${s.service}: ${s.error}\n`);
  }
  if (flags.json) process.stdout.write(`${JSON.stringify({ id: result.backup.id, services: result.services }, null, 2)}\n`);
  const bad = result.services.filter((s) => !s.ok);
  if (bad.length) throw integrityError(`Backup ${result.backup.id} failed verification: ${bad.map((s) => s.service).join(', ')}.`);
  out.write(`Backup ${result.backup.id}: all ${result.services.length} artifacts verified.\n`);
}
