import Docker from 'dockerode';
import { IMAGES } from './images.js';

/**
 * Integration tests need the real engine and the local images. Without them the run FAILS
 * with a sentence saying how to fix it; nothing is skipped.
 */
export default async function setup(): Promise<void> {
  process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
  const docker = new Docker();
  try {
    await docker.ping();
  } catch (err) {
    throw new Error(`Integration tests need a running Docker engine and none answers (${(err as Error).message}). Run scripts/test.sh, which installs and starts one.`);
  }
  const missing: string[] = [];
  for (const image of Object.values(IMAGES)) {
    try {
      await docker.getImage(image).inspect();
    } catch {
      missing.push(image);
    }
  }
  if (missing.length > 0) {
    throw new Error(`Integration tests need local images that are missing: ${missing.join(', ')}. Run scripts/build-images.sh.`);
  }
}
