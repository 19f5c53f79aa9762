import { ALWAYS_POSSIBLE, ExitCode } from '../errors.js';
import type { Manifest } from '../core/manifest.js';
import { defineCommand } from './command.js';
import { listCommand } from './list.js';
import type { SharedFlagValues } from './shared-flags.js';

/**
 * `demo`: bring up compose/ (official images where they can be had, the project's local images
 * where no registry answers), fill every store with sample data, back it up, list it.
 */
export const demoCommand = defineCommand<SharedFlagValues, Manifest>({
  path: 'demo',
  exitCodes: [...ALWAYS_POSSIBLE, ExitCode.notFound, ExitCode.dockerUnreachable, ExitCode.storage, ExitCode.locked],
  description: 'bring up the demo stack in compose/, fill it with sample data, back it up and list it',
  shared: ['dir'],
  examples: ['./bot.sh demo', 'BACKUP_DIR=/tmp/demo-backups ./bot.sh demo'],
  async run({ flags, io }) {
    const [{ DEFAULT_COMPRESSION }, { createBackup }, { compose, composeCommand, DEMO_PROJECT }, { chooseImages }, { seedDemo, waitHealthy }, { commandContext }, { plainProgress }] =
      await Promise.all([
        import('../core/compression.js'),
        import('../core/create.js'),
        import('../core/compose.js'),
        import('../stack/images.js'),
        import('../stack/demo-data.js'),
        import('./context.js'),
        import('./progress-renderers.js'),
      ]);
    const { engine, drivers, signal } = commandContext();
    await engine.version();
    const env = await chooseImages(io.say);
    io.say(`Starting the demo stack (Compose project ${DEMO_PROJECT})...`);
    await compose(DEMO_PROJECT, ['up', '-d'], env);
    const containers = await waitHealthy(engine, signal);
    io.say('Filling the datastores with sample data...');
    await seedDemo(engine, containers);
    io.say('Backing up...');
    const { manifest } = await createBackup(
      { dir: flags.dir, type: 'manual', comment: 'demo', project: DEMO_PROJECT, parallel: 4, compress: DEFAULT_COMPRESSION, prefix: 'stackvault' },
      { engine, drivers, signal, progress: plainProgress(io.say) },
    );
    io.say('');
    const listing = await listCommand.run({ args: [], flags: { dir: flags.dir }, io });
    await listCommand.render?.(listing.data!, io, { dir: flags.dir });
    io.say(`
Next:
  restore it:     ./bot.sh backup restore ${manifest.id}
  verify it:      ./bot.sh backup verify ${manifest.id}
  tear down:      ${(await composeCommand()).join(' ')} -f compose/docker-compose.yml -p ${DEMO_PROJECT} down -v`);
    return { data: manifest, backupId: manifest.id };
  },
});
