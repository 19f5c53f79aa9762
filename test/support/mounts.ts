import { execa } from 'execa';

/** A real small or read-only filesystem for fault tests (tests run as root). */
export async function mountTmpfs(dir: string, options: string): Promise<void> {
  const r = await execa('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { reject: false });
  if (r.exitCode !== 0) throw new Error(`fault tests need to mount a tmpfs (run as root): ${r.stderr}`);
}
