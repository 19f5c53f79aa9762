import { DEFAULT_COMPRESSION } from '../core/artifact.js';
import { createBackup } from '../core/create.js';
import { compose, composeCommand, DEMO_PROJECT } from '../core/compose.js';
import { chooseImages } from '../stack/images.js';
import { seedDemo, waitHealthy } from '../stack/demo-data.js';
import { commandContext } from './context.js';
import { listCommand } from './list.js';
import { plainProgress } from './progress-renderers.js';

const say = (line: string) => process.stdout.write(`${line}\n`);

/**
 * `demo`: bring up compose/ (official images where they can be had, the project's local images
 * where no registry answers), fill every store with sample data, back it up, list it.
 */
export async function demoCommand(flags: { dir: string }): Promise<void> {
  const { engine, drivers, signal } = commandContext();
  await engine.version();
  const env = await chooseImages(say);
  say(`Starting the demo stack (Compose project ${DEMO_PROJECT})...`);
  await compose(DEMO_PROJECT, ['up', '-d'], env);
  const containers = await waitHealthy(engine, signal);
  say('Filling the datastores with sample data...');
  await seedDemo(engine, containers);
  say('Backing up...');
  const { manifest } = await createBackup(
    { dir: flags.dir, type: 'manual', comment: 'demo', project: DEMO_PROJECT, parallel: 4, compress: DEFAULT_COMPRESSION, prefix: 'stackvault' },
    { engine, drivers, signal, progress: plainProgress(say) },
  );
  say('');
  await listCommand({ dir: flags.dir });
  say(`
Next:
  restore it:     ./bot.sh backup restore ${manifest.id}
  verify it:      ./bot.sh backup verify ${manifest.id}
  tear down:      ${await teardownHint()}`);
}

async function teardownHint(): Promise<string> {
  return `${(await composeCommand()).join(' ')} -f compose/docker-compose.yml -p ${DEMO_PROJECT} down -v`;
}
