import { describe, expect, it } from 'vitest';
import { type MountFacts, planMounts } from '../../src/drivers/mount-plan.js';

const project = { configFiles: ['/srv/app/docker-compose.yml'], gitTrees: ['/srv/other'] };
const m = (over: Partial<MountFacts>): MountFacts => ({ type: 'volume', source: '/var/lib/docker/volumes/x/_data', destination: '/data', rw: true, ...over });

describe('what of a container belongs in a backup', () => {
  it.each([
    ['named volume', m({ name: 'app_uploads' }), 'data', 'named volume app_uploads'],
    ['anonymous volume', m({ name: 'a'.repeat(64) }), 'data', 'anonymous volume'],
    ['bind mount of data under the project', m({ type: 'bind', source: '/srv/app/volumes/db/data', destination: '/var/lib/postgresql/data' }), 'data', 'bind mount of /srv/app/volumes/db/data'],
    ['bind of the project directory itself', m({ type: 'bind', source: '/srv/app', destination: '/app' }), 'source-tree', 'docker-compose.yml'],
    ['bind of a directory above the compose file', m({ type: 'bind', source: '/srv', destination: '/srv' }), 'source-tree', 'source tree'],
    ['bind of a git checkout', m({ type: 'bind', source: '/srv/other', destination: '/code' }), 'source-tree', '.git'],
    ['read-only bind', m({ type: 'bind', source: '/srv/app/config', destination: '/config', rw: false }), 'skipped', 'read-only'],
    ['read-only volume', m({ rw: false }), 'skipped', 'read-only'],
    ['docker socket', m({ type: 'bind', source: '/var/run/docker.sock', destination: '/var/run/docker.sock' }), 'skipped', 'socket'],
    ['a file under /etc', m({ type: 'bind', source: '/srv/app/nginx.conf', destination: '/etc/nginx/nginx.conf' }), 'skipped', '/etc'],
    ['a .env file mounted read-write', m({ type: 'bind', source: '/srv/app/.env', destination: '/app/.env' }), 'skipped', 'configuration file'],
    ['a yaml config mounted read-write', m({ type: 'bind', source: '/srv/x/config.yaml', destination: '/config.yaml' }), 'skipped', 'configuration file'],
    ['tmpfs', m({ type: 'tmpfs', source: '', destination: '/run/cache' }), 'skipped', 'tmpfs'],
    ['a sibling directory that only shares a prefix', m({ type: 'bind', source: '/srv/ap', destination: '/x' }), 'data', 'bind mount'],
  ])('%s', (_what, mount, role, why) => {
    const [planned] = planMounts([mount], project);
    expect(planned!.role).toBe(role);
    expect(planned!.why).toContain(why);
  });

  it('lists mounts in a stable order', () => {
    expect(planMounts([m({ destination: '/b' }), m({ destination: '/a' })], project).map((p) => p.destination)).toEqual(['/a', '/b']);
  });
});
