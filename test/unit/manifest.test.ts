import { describe, expect, it } from 'vitest';
import { isoInstant, manifestProblem, parseManifest } from '../../src/core/manifest.js';
import { writtenManifest } from '../support/manifests.js';

const service = (over: Record<string, unknown> = {}) => ({
  name: 'pg',
  container: 'bot-pg-1',
  containerId: 'c0ffee',
  image: 'postgres:17',
  driver: 'postgres',
  status: 'ok',
  artifact: 'pg.sql.gz',
  sha256: 'a'.repeat(64),
  bytes: 10,
  rawBytes: 40,
  durationMs: 1200,
  ...over,
});
const good = (): Record<string, unknown> => writtenManifest('sv_backup_20261121_020000', [service()], { completedAt: '2026-11-21T02:00:09.000Z' });
/** "Now" for the tables: a day after good()'s backup. */
const failed = service({ name: 'redis', status: 'failed', error: 'boom', artifact: undefined, sha256: undefined, bytes: undefined, rawBytes: undefined });
const deep = (n: number) => {
  let v: unknown = [];
  for (let i = 0; i < n; i++) v = [v];
  return v;
};

describe('manifest reader', () => {
  it('accepts a valid manifest', () => expect(manifestProblem(good())).toBeUndefined());

  it.each([
    ['a partial backup (one service failed)', { status: 'partial', services: [service(), failed] }],
    ['two backups of one second (_2)', { id: 'sv_backup_20261121_020000_2' }],
    ['a restore point', { id: 'restore-point_backup_20261121_020000', type: 'restore-point' }],
    ['createdAt without milliseconds', { createdAt: '2026-11-21T02:00:00Z' }],
    ['createdAt within the clock skew of now', { id: 'sv_backup_20261122_003000', createdAt: '2026-11-22T00:30:00.000Z' }],
    // Made by a clock that ran ahead, or read by one set back: the catalog sets it apart, whole.
    ['createdAt years ahead of this clock', { id: 'zz_backup_20991231_000000', createdAt: '2099-12-31T00:00:00Z' }],
    ['unknown extra keys, a little nested', { future: { a: [1, { b: 2 }] } }],
    [
      'every optional record',
      {
        verifications: [{ at: '2026-11-21T03:00:00.000Z', deep: true, ok: true, services: { pg: { ok: true, facts: { rows: 3 } } } }],
        drills: [{ at: '2026-11-21T04:00:00.000Z', ok: true, durationMs: 9, services: { pg: { ok: true, check: 'equal' } } }],
        consistency: { at: '2026-11-21T02:00:01.000Z', pausedMs: 120, paused: ['bot-app-1'] },
        offsite: { at: '2026-11-21T02:01:00.000Z', ok: true, snapshot: 'abcd1234' },
        leftOut: [{ container: 'web', reason: 'no data' }],
        engines: { a: { url: 'unix:///var/run/docker.sock', version: '28', apiVersion: '1.41' } },
      },
    ],
  ])('accepts %s', (_what, over) => expect(manifestProblem({ ...good(), ...over })).toBeUndefined());

  // Each of these is what a crafted or corrupted manifest held; each was once taken for a backup
  // (the first ones as the newest successful one, which retention spares and restore calls latest).
  it.each([
    ['status ok over a failed service', { services: [service(), failed] }, /status 'ok' contradicts its services/],
    ['status partial with every service ok', { status: 'partial' }, /status 'partial' contradicts/],
    ['no service at all', { services: [] }, /services is empty/],
    ['only failed services', { status: 'partial', services: [failed] }, /no service succeeded/],
    ['a status that is a number', { status: 5 }, /status is not 'ok' or 'partial'/],
    ["a date that is not the id's", { createdAt: '2026-11-21T02:00:01.000Z' }, /createdAt does not match the time in the id/],
    ['a date in local time', { createdAt: '2026-11-21T03:00:00+01:00' }, /createdAt is not a date/],
    ['a free-form date', { createdAt: '21 Nov 2026 02:00:00 GMT' }, /createdAt is not a date/],
    ['a date with trailing text', { createdAt: '2026-11-21T02:00:00.000Z junk' }, /createdAt is not a date/],
    ['a date that does not exist', { id: 'sv_backup_20260230_020000', createdAt: '2026-02-30T02:00:00Z' }, /createdAt is not a date/],
    ['an id that is not a backup name', { id: 'evil\u001b[2J\u001b]0;pwned\u0007' }, /id is not a backup name/],
    ['an id with a path', { id: '../sv_backup_20261121_020000' }, /id is not a backup name/],
    ['an unknown type', { type: 'hourly\u001b[31m' }, /type is not a backup type/],
    ['no completedAt', { completedAt: undefined }, /completedAt/],
    ['no tool', { tool: 'stackvault' }, /tool/],
    ['no docker', { docker: undefined }, /docker/],
    ['no host', { host: 5 }, /host/],
    ['a verification whose time is a number', { verifications: [{ at: 5, ok: true, deep: false, services: {} }] }, /verifications/],
    ['drills that are text', { drills: 'x' }, /drills/],
    ['a consistency window without its time', { consistency: { pausedMs: 1, paused: [] } }, /consistency/],
    ['an offsite record with a bad date', { offsite: { at: 'soon', ok: true } }, /offsite/],
    ['bytes as text', { services: [service({ bytes: '5' })] }, /bytes/],
    ['bytes of a failed service as text', { status: 'partial', services: [service(), { ...failed, bytes: '5' }] }, /services\[1\]\.bytes/],
    ['negative rawBytes', { services: [service({ rawBytes: -1 })] }, /rawBytes/],
    // Finite, but forty of them summed are Infinity ("Infinity TB" in list and stats).
    ['bytes of 1e308', { services: [service({ bytes: 1e308 })] }, /services\[0\]\.bytes missing or not a whole number/],
    ['fractional rawBytes', { services: [service({ rawBytes: 1.5 })] }, /rawBytes is not a whole number of bytes/],
    ['durationMs missing', { services: [service({ durationMs: undefined })] }, /durationMs/],
    ['downtimeMs as text', { services: [service({ downtimeMs: 'long' })] }, /downtimeMs/],
    ['one service name twice', { services: [service(), service()] }, /name is empty or used twice/],
    ['warnings that are not text', { services: [service({ warnings: [1] })] }, /warnings/],
    ['an extra key nested 200 000 deep', { x: deep(200_000) }, /nested deeper than 64/],
  ])('refuses %s', (_what, over, message) => {
    expect(manifestProblem({ ...good(), ...over })).toMatch(message);
  });

  it.each([
    ['2026-11-21T02:00:00Z', Date.UTC(2026, 10, 21, 2)],
    ['2026-11-21T02:00:00.123Z', Date.UTC(2026, 10, 21, 2, 0, 0, 123)],
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
    ['2026-02-29T00:00:00Z', undefined],
    ['2026-11-21T24:00:00Z', undefined],
    ['2026-11-21T02:00:00.1Z', undefined],
    ['2026-11-21 02:00:00Z', undefined],
    ['+02026-11-21T02:00:00Z', undefined],
    ['9 Jan 2000', undefined],
    [20261121, undefined],
  ])('isoInstant(%j) = %j', (text, ms) => expect(isoInstant(text)).toBe(ms));

  it('a manifest nested 200 000 deep is refused by the reader, not a stack overflow', () => {
    // What the finding planted: 400 KB of brackets under an unknown key (JSON.parse reads it; printing it overflowed).
    const text = JSON.stringify(good()).replace(/}$/, `,"x":${'['.repeat(200_000)}${']'.repeat(200_000)}}`);
    expect(() => parseManifest(text, 'm.json')).toThrow(/nested deeper/);
  });

  it.each([
    ['not JSON', '{', /not valid JSON/],
    ['an array', '[]', /not an object/],
    ['newer schema', JSON.stringify({ ...good(), schemaVersion: 99 }), /schemaVersion 99, newer/],
    ['artifact with a path', JSON.stringify({ ...good(), services: [service({ artifact: '../../etc/passwd' })] }), /artifact is not a plain file name/],
    ['absolute artifact', JSON.stringify({ ...good(), services: [service({ artifact: '/etc/passwd' })] }), /artifact/],
    ['bad checksum', JSON.stringify({ ...good(), services: [service({ sha256: 'zz' })] }), /sha256/],
    ['unknown status', JSON.stringify({ ...good(), services: [service({ status: 'maybe' })] }), /status is 'maybe'/],
    ['bad date', JSON.stringify({ ...good(), createdAt: 'yesterday' }), /createdAt/],
  ])('rejects %s', (_what, text, message) => {
    expect(() => parseManifest(text, 'm.json')).toThrow(message);
  });

  // Property: whatever bytes a manifest holds, the reader either returns a manifest or throws
  // a StackvaultError with exit code 5; it never crashes with anything else.
  it('never fails in another way on random mutations', () => {
    const base = JSON.stringify(good());
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 3000; i++) {
      const chars = [...base];
      for (let k = 0; k <= rand(4); k++) chars.splice(rand(chars.length), rand(3), String.fromCharCode(32 + rand(95)));
      try {
        const m = parseManifest(chars.join(''), 'm.json');
        expect(manifestProblem(m)).toBeUndefined();
      } catch (err) {
        expect((err as { exitCode?: number }).exitCode).toBe(5);
      }
    }
  });
});
