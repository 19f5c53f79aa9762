import { errorMessage, ExitCode, StackvaultError } from '../errors.js';
import { checkArtifact, type ArtifactCheck } from './artifact-check.js';
import { readCatalog, resolveBackup } from './catalog.js';
import type { Manifest } from './manifest.js';

export interface ServiceVerification {
  service: string;
  ok: boolean;
  error?: string;
  check?: ArtifactCheck;
}

export interface VerifyResult {
  backup: Manifest;
  services: ServiceVerification[];
}

/**
 * Re-hashes every artifact against the manifest and checks that it opens (decompression,
 * complete tar without unsafe entries, complete SQL dump). Every service is checked even
 * after a failure, so one run names everything that is wrong.
 */
export async function verifyBackup(dir: string, id: string): Promise<VerifyResult> {
  const backup = resolveBackup(await readCatalog(dir), id);
  const services: ServiceVerification[] = [];
  for (const entry of backup.manifest.services.filter((s) => s.status === 'ok')) {
    try {
      services.push({ service: entry.name, ok: true, check: await checkArtifact(backup.path, entry) });
    } catch (err) {
      if (!(err instanceof StackvaultError) || err.exitCode !== ExitCode.integrity) throw err;
      services.push({ service: entry.name, ok: false, error: errorMessage(err) });
    }
  }
  return { backup: backup.manifest, services };
}
