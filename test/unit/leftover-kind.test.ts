import { describe, expect, it } from 'vitest';
import { leftoverKind } from '../../src/core/leftover-helpers.js';

const here = { host: 'host-a', pidNamespace: 'm1/pid:[4026531836]' };
const dead = (pid: number) => pid !== 200; // pid 200 is alive; every other is gone
const owner = (pid: string, host = here.host, pidns: string | undefined = here.pidNamespace) => ({
  'stackvault.helper-pid': pid,
  'stackvault.helper-host': host,
  ...(pidns === undefined ? {} : { 'stackvault.helper-pidns': pidns }),
});

describe('leftoverKind: only what a dead run of this host started', () => {
  it.each([
    ['a helper of a dead run', { 'stackvault.helper': 'true', 'stackvault.helper-for': 'c1', ...owner('100') }, 'helper'],
    ['a verification throwaway of a dead run', { 'stackvault.throwaway-for': '/backups', ...owner('100') }, 'throwaway', 'stackvault-verify-redis-0a1b2c3d'],
    [
      'a drill copy of a dead run',
      { 'stackvault.drill-for': 'stackvault_backup_1', 'com.docker.compose.project': 'stackvault-drill-ab', ...owner('100') },
      'throwaway',
      'stackvault-drill-ab12cd-redis',
    ],
    ['a container run from an image committed of a throwaway (the labels came along, the name did not)', { 'stackvault.throwaway-for': '/backups', ...owner('100') }, undefined, 'my_postgres'],
    ['the same, of a drill copy', { 'stackvault.drill-for': 'stackvault_backup_1', ...owner('100') }, undefined, 'practical_turing'],
    ['a helper of a run still alive', { 'stackvault.helper': 'true', 'stackvault.helper-for': 'c1', ...owner('200') }, undefined],
    ['a throwaway of this very run', { 'stackvault.throwaway-for': '/b', ...owner('300') }, undefined],
    ['a throwaway of another host', { 'stackvault.throwaway-for': '/b', ...owner('100', 'host-b') }, undefined],
    ['a throwaway of a run named alike in another pid namespace (a container)', { 'stackvault.throwaway-for': '/b', ...owner('100', here.host, 'm1/pid:[4026532999]') }, undefined],
    ['a throwaway of a machine named alike', { 'stackvault.throwaway-for': '/b', ...owner('100', here.host, 'm2/pid:[4026531836]') }, undefined],
    ['a throwaway of a dead run of an older version (no pid namespace)', { 'stackvault.throwaway-for': '/b', ...owner('100', here.host, undefined) }, 'throwaway'],
    ['a throwaway of an older version (no owner)', { 'stackvault.throwaway-for': '/b' }, undefined],
    ['a helper without the container it served', { 'stackvault.helper': 'true', ...owner('100') }, undefined],
    ['an owner label on something else (a user copied it)', { ...owner('100') }, undefined],
    ['a pid that is no number', { 'stackvault.throwaway-for': '/b', ...owner('12x') }, undefined],
    ['pid 0', { 'stackvault.throwaway-for': '/b', ...owner('0') }, undefined],
    ['a negative pid', { 'stackvault.throwaway-for': '/b', ...owner('-1') }, undefined],
    ['a production container', { 'com.docker.compose.project': 'bot' }, undefined],
  ] as Array<[string, Record<string, string>, string | undefined, string?]>)('%s', (_, labels, kind, name = 'stackvault-verify-x-00') => {
    expect(leftoverKind({ labels: { ...labels }, name }, here, (pid) => !dead(pid), 300)).toBe(kind);
  });
});
