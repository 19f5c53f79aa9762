import { describe, expect, it } from 'vitest';
import { type LeftoverAction, leftoverAction, type StoppedMarker } from '../../src/core/stopped-markers.js';

const base: StoppedMarker = { containerId: 'c1', container: 'neo4j', service: 'neo4j', since: '2026-12-06T10:00:00.000Z', pid: 4242, kind: 'stopped' };
const T0 = '2026-12-06T09:00:00.000000001Z';
const LATER = '2026-12-06T10:05:00.000000001Z';

describe('what the next run does with a killed run marker', () => {
  const rows: Array<[string, Partial<StoppedMarker>, { running: boolean; paused: boolean; startedAt?: string } | undefined, LeftoverAction]> = [
    ['container gone', { purpose: 'backup', startedAt: T0 }, undefined, 'clear'],
    ['stopped for a backup, untouched since', { purpose: 'backup', startedAt: T0 }, { running: false, paused: false, startedAt: T0 }, 'start'],
    ['stopped for a restart (update), untouched since', { purpose: 'restart', startedAt: T0 }, { running: false, paused: false, startedAt: T0 }, 'start'],
    ['stopped for a restore: its data may be half replaced', { purpose: 'restore', startedAt: T0 }, { running: false, paused: false, startedAt: T0 }, 'name'],
    ['an older marker that does not say why', {}, { running: false, paused: false, startedAt: T0 }, 'name'],
    ['running again', { purpose: 'backup', startedAt: T0 }, { running: true, paused: false, startedAt: LATER }, 'clear'],
    ['started by someone since and stopped again: theirs', { purpose: 'backup', startedAt: T0 }, { running: false, paused: false, startedAt: LATER }, 'clear'],
    ['an older marker without the start time, started since: still named', {}, { running: false, paused: false, startedAt: LATER }, 'name'],
    ['paused, still paused', { kind: 'paused' }, { running: true, paused: true, startedAt: T0 }, 'unpause'],
    ['paused, unpaused since', { kind: 'paused' }, { running: true, paused: false, startedAt: T0 }, 'clear'],
    ['paused, then stopped by someone', { kind: 'paused' }, { running: false, paused: false, startedAt: T0 }, 'clear'],
  ];
  it.each(rows)('%s', (_, marker, state, action) => {
    expect(leftoverAction({ ...base, ...marker }, state)).toBe(action);
  });
});
