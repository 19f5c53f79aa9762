import { ALWAYS_POSSIBLE } from '../errors.js';
import { defineCommand } from './command.js';

type Verb = 'start' | 'stop' | 'restart' | 'status' | 'logs';

/** `start|stop|restart|status|logs`: compose/ through `docker compose` or `docker-compose`. */
const stackVerb = (verb: Verb, text: string) =>
  defineCommand<Record<string, never>, undefined>({
    path: verb,
    exitCodes: [...ALWAYS_POSSIBLE],
    description: `${text} (Compose project $STACKVAULT_PROJECT, default stackvault-demo)`,
    arguments: verb === 'restart' || verb === 'logs' ? [{ name: '[service]', description: 'one service' }] : [],
    examples: [`./bot.sh ${verb}`, ...(verb === 'restart' || verb === 'logs' ? [`./bot.sh ${verb} postgres`] : []), ...(verb === 'start' ? ['STACKVAULT_PROJECT=mystack ./bot.sh start'] : [])],
    async run({ args: [service], io }) {
      const [{ compose, stackProject }, { chooseImages }] = await Promise.all([import('../core/compose.js'), import('../stack/images.js')]);
      const project = stackProject();
      const one = service ? [service] : [];
      const args = { start: ['up', '-d'], stop: ['stop'], restart: ['restart', ...one], status: ['ps'], logs: ['logs', '--tail', '100', ...one] }[verb];
      await compose(project, args, verb === 'start' ? await chooseImages(io.say) : {}, true);
      return {};
    },
  });

export const stackCommands = [
  stackVerb('start', 'start the stack in compose/ (docker compose up -d)'),
  stackVerb('stop', 'stop the stack'),
  stackVerb('restart', 'restart the stack, or one service'),
  stackVerb('status', "show the stack's containers"),
  stackVerb('logs', 'show the last 100 log lines, of all services or one'),
];
