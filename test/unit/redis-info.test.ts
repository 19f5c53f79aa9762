import { describe, expect, it } from 'vitest';
import { expiringKeyCount, keyCount, keyCountProblem, parseInfo, rdbOnDisk, redisPassword, type SaveState, saveIsNewer, saveState } from '../../src/drivers/redis-info.js';

const INFO = `# Persistence\r\nloading:0\r\nrdb_changes_since_last_save:0\r\nrdb_bgsave_in_progress:0\r\nrdb_last_save_time:1700000000\r\nrdb_last_bgsave_status:ok\r\nrdb_saves:3\r\n\r\n# Keyspace\r\ndb0:keys=8,expires=2,avg_ttl=0\r\ndb3:keys=1,expires=0,avg_ttl=0\r\n`;

describe('redis INFO', () => {
  it('parses fields and counts keys over every db', () => {
    const info = parseInfo(INFO);
    expect(info.rdb_last_save_time).toBe('1700000000');
    expect(keyCount(info)).toBe(9);
    expect(expiringKeyCount(info)).toBe(2);
    expect(expiringKeyCount(parseInfo('db0:keys=5,expires=1,avg_ttl=0,subexpiry=2\r\ndb1:keys=1,expires=1,avg_ttl=0'))).toBe(4);
  });

  it.each([
    ['the same keys', { keys: 9, expiring: 2 }, { keys: 9, expiring: 2 }, undefined],
    ['keys that expired since are not loaded', { keys: 9, expiring: 2 }, { keys: 7, expiring: 0 }, undefined],
    ['a key without an expiry missing', { keys: 9, expiring: 2 }, { keys: 8, expiring: 2 }, 'the RDB loads 6 keys without an expiry, the backup saw 7'],
    ['more keys than the backup saw', { keys: 9, expiring: 2 }, { keys: 10, expiring: 3 }, 'the RDB loads 10 keys, the backup saw 9'],
    ['an old manifest without the count of expiring keys: fewer may have expired', { keys: 9 }, { keys: 8, expiring: 1 }, undefined],
    ['a key with an expiry and fields that expire (counted twice) gone since', { keys: 9, expiring: 4 }, { keys: 8, expiring: 2 }, undefined],
    ['an old manifest: more is still wrong', { keys: 9 }, { keys: 10, expiring: 0 }, 'the RDB loads 10 keys, the backup saw 9'],
  ])('loaded keys against the backup: %s', (_what, atBackup, loaded, problem) => {
    expect(keyCountProblem(atBackup, loaded)).toBe(problem);
  });

  it.each([
    ['same counter, same time', { inProgress: false, lastStatusOk: true, lastSaveTime: 100, saves: 3 }, { inProgress: false, lastStatusOk: true, lastSaveTime: 100, saves: 3 }, false],
    ['counter moved on', { inProgress: false, lastStatusOk: true, lastSaveTime: 100, saves: 3 }, { inProgress: false, lastStatusOk: true, lastSaveTime: 100, saves: 4 }, true],
    ['still running', { inProgress: false, lastStatusOk: true, lastSaveTime: 100, saves: 3 }, { inProgress: true, lastStatusOk: true, lastSaveTime: 100, saves: 3 }, false],
    ['no counter: newer time', { inProgress: false, lastStatusOk: true, lastSaveTime: 100 }, { inProgress: false, lastStatusOk: true, lastSaveTime: 101 }, true],
    ['no counter: same second', { inProgress: false, lastStatusOk: true, lastSaveTime: 100 }, { inProgress: false, lastStatusOk: true, lastSaveTime: 100 }, false],
  ])('%s -> %s', (_w, before, now, expected) => {
    expect(saveIsNewer(before, now)).toBe(expected);
  });

  it('reads a failed save status', () => {
    expect(saveState(parseInfo('rdb_bgsave_in_progress:0\nrdb_last_bgsave_status:err\nrdb_last_save_time:5')).lastStatusOk).toBe(false);
  });

  it.each([
    [['redis-server', '--requirepass', 's3cret'], {}, 's3cret'],
    [['redis-server', '--requirepass=s3cret'], {}, 's3cret'],
    [['redis-server'], { REDIS_PASSWORD: 'envpw' }, 'envpw'],
    [['redis-server'], { REDISCLI_AUTH: 'cli' }, 'cli'],
    [['redis-server', '--appendonly', 'yes'], {}, undefined],
  ])('password from %j %j', (cmd, env, pw) => {
    expect(redisPassword(cmd, env as Record<string, string>)).toBe(pw);
  });
});

describe('whose RDB is on disk after a consistent point (saves are counted as they start, one at a time)', () => {
  const at = (saves: number | undefined, inProgress: boolean): SaveState => ({ saves, inProgress, lastStatusOk: true, lastSaveTime: 0 });
  it.each([
    ['ours still runs', at(5, true), at(5, true), 'wait'],
    ['ours ended', at(5, true), at(5, false), 'ours'],
    ['ours had ended already when asked', at(5, false), at(5, false), 'ours'],
    ['ours ended and the next one runs: nothing renamed yet', at(5, true), at(6, true), 'ours'],
    ['the next one ended: it renamed its RDB over ours', at(5, true), at(6, false), 'replaced'],
    ['two more started: one of them ended', at(5, true), at(7, true), 'replaced'],
    ['Redis < 7 (no count): running', at(undefined, true), at(undefined, true), 'wait'],
    ['Redis < 7 (no count): none running', at(undefined, true), at(undefined, false), 'ours'],
  ] as const)('%s', (_what, atStart, now, expected) => {
    expect(rdbOnDisk(atStart, now)).toBe(expected);
  });
});
