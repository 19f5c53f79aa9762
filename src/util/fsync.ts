import { open } from 'node:fs/promises';

/** fsync for a file or a directory (a directory's fsync makes a rename inside it durable). */
export async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
