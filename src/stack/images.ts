import { execa } from 'execa';
import { join } from 'node:path';
import { REPO_ROOT } from '../core/compose.js';
import { StackvaultError } from '../errors.js';

/** Official image per service, the project's local build, and the variable that picks one. */
export const STACK_IMAGES = [
  { service: 'postgres', official: 'postgres:17', local: 'stackvault-local/postgres:17', env: 'STACKVAULT_POSTGRES_IMAGE' },
  { service: 'redis', official: 'redis:7', local: 'stackvault-local/redis:7', env: 'STACKVAULT_REDIS_IMAGE' },
  { service: 'chroma', official: 'chromadb/chroma', local: 'stackvault-local/chroma:1', env: 'STACKVAULT_CHROMA_IMAGE' },
  { service: 'neo4j', official: 'neo4j:5', local: 'stackvault-local/neo4j:5-standin', env: 'STACKVAULT_NEO4J_IMAGE' },
  { service: 'app', official: undefined, local: 'stackvault-local/app:1', env: 'STACKVAULT_APP_IMAGE' },
  { service: 'worker', official: undefined, local: 'stackvault-local/appstub:1', env: 'STACKVAULT_WORKER_IMAGE' },
] as const;

/**
 * Picks each service's image for compose/: an explicit STACKVAULT_*_IMAGE wins, then the
 * official image when it is present or can be pulled, else the project's local build (built
 * here when missing). Returns the environment for compose.
 */
export async function chooseImages(say: (line: string) => void): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  const missingLocal: string[] = [];
  for (const img of STACK_IMAGES) {
    if (process.env[img.env]) {
      env[img.env] = process.env[img.env]!;
      continue;
    }
    if (img.official && ((await imageExists(img.official)) || (await tryPull(img.official)))) {
      env[img.env] = img.official;
      continue;
    }
    env[img.env] = img.local;
    if (!(await imageExists(img.local))) missingLocal.push(img.service);
  }
  if (missingLocal.length) {
    say(`No image registry answers: building local images for ${missingLocal.join(', ')} (scripts/build-images.sh).`);
    const r = await execa(join(REPO_ROOT, 'scripts', 'build-images.sh'), missingLocal, { stdio: 'inherit', reject: false });
    if (r.exitCode !== 0) throw new StackvaultError('Building the local images failed (see above).');
  }
  const local = STACK_IMAGES.filter((i) => env[i.env] === i.local && i.official).map((i) => i.service);
  if (local.length) say(`Using the project's local images for ${local.join(', ')} (no registry reachable).`);
  return env;
}

const imageExists = async (ref: string) => (await execa('docker', ['image', 'inspect', ref], { reject: false })).exitCode === 0;
const tryPull = async (ref: string) => (await execa('docker', ['pull', '-q', ref], { reject: false, timeout: 30_000 })).exitCode === 0;
