import { ALWAYS_POSSIBLE, ExitCode } from '../errors.js';
import { Option } from 'commander';
import type { Operation } from '../core/oplog.js';
import { defineCommand } from './command.js';
import { wholeNumber } from './parse.js';
import { shown } from '../util/terminal.js';
import type { SharedFlagValues } from './shared-flags.js';

export const logCommand = defineCommand<SharedFlagValues & { lines: string }, Operation[] | { dir: string; operations: Operation[] }>({
  path: 'backup log',
  exitCodes: [...ALWAYS_POSSIBLE, ExitCode.storage],
  description: 'show the operations log: who created, restored, verified or deleted what, and when',
  shared: ['dir', 'json'],
  options: () => [new Option('-n, --lines <n>', 'how many recent lines').default('20')],
  examples: ['./bot.sh backup log', './bot.sh backup log -n 100 --json'],
  async run({ flags, io }) {
    const [{ readCatalog }, { readOperations }] = await Promise.all([import('../core/catalog.js'), import('../core/oplog.js')]);
    const catalog = await readCatalog(flags.dir);
    const n = wholeNumber(flags.lines, '--lines')!;
    const operations = (await readOperations(catalog.dir)).slice(-n);
    // --json prints the operations alone; people also learn where they were read.
    return { data: io.json ? operations : { dir: catalog.dir, operations } };
  },
  render(data, io) {
    const { dir, operations } = data as { dir: string; operations: Operation[] };
    if (operations.length === 0) io.say(`No operations recorded in ${dir} yet.`);
    // The log is a file anyone who can write the directory can edit: nothing from it goes out raw.
    for (const o of operations) io.say(`${shown(o.at)}  ${shown(o.user)}  ${shown(o.command)}  ${shown(o.backupId || '-')}  ${shown(o.result)}  ${(o.durationMs / 1000).toFixed(1)}s`);
  },
});
