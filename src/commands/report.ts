import { rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { readCatalog } from '../core/catalog.js';
import { renderReport } from '../core/report.js';
import { schedulerStatus } from '../core/scheduler.js';

/** `backup report`: the directory's history as one self-contained HTML file (default <dir>/report.html). */
export async function reportCommand(flags: { dir: string; out?: string }): Promise<void> {
  const catalog = await readCatalog(flags.dir);
  const scheduler = await schedulerStatus(flags.dir).catch(() => undefined);
  const file = resolve(flags.out ?? join(catalog.dir, 'report.html'));
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, renderReport({ dir: catalog.dir, backups: catalog.backups, scheduler, now: new Date() }), { mode: 0o600 });
  await rename(tmp, file);
  process.stdout.write(`Report of ${catalog.backups.length} backups written to ${file} (open it in any browser; it needs no network).\n`);
}
