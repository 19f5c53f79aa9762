import { describe, expect, it } from 'vitest';
import { usageErrorOf } from '../support/usage-error.js';
import { booleanLabel, nearestLabelKey, unknownLabelWarnings, USER_LABEL_KEYS } from '../../src/docker/labels.js';
import { LABELS, isOneOff, selectDriver } from '../../src/core/selection.js';
import { PATHS_LABEL, STOP_LABEL } from '../../src/drivers/volume-archive.js';
import { SQLITE_PATHS_LABEL } from '../../src/drivers/sqlite.js';
import { HELPER_OWNER_LABELS, THROWAWAY_LABELS } from '../../src/docker/helper-owner.js';
import { DRIVERS } from '../../src/drivers/registry.js';

const labelled = (labels: Record<string, string>, image = 'busybox') => ({ id: 'x', name: 'web-1', image, labels, state: 'running', env: {}, cmd: [] });

const usage = usageErrorOf;

describe('boolean labels (docker-compose v1 writes True/False for YAML booleans)', () => {
  it.each([
    ['true', true],
    ['True', true],
    [' TRUE ', true],
    ['false', false],
    ['False', false],
    ['\tfalse\n', false],
  ])('%j reads as %s', (value, expected) => {
    expect(booleanLabel(labelled({ 'stackvault.exclude': value }), 'stackvault.exclude')).toBe(expected);
  });

  it('an absent label is undefined', () => expect(booleanLabel(labelled({}), 'stackvault.stop')).toBeUndefined());

  it.each(['yes', 'no', '1', '0', '', ' ', 'maybe', 'truee'])('%j is refused with one sentence naming the container, the label and the values it takes (exit 2)', (value) => {
    const err = usage(() => booleanLabel(labelled({ 'stackvault.stop': value }), 'stackvault.stop'));
    expect(err.message).toContain('web-1');
    expect(err.message).toContain('stackvault.stop');
    expect(err.message).toMatch(/true or false/);
    expect(err.message.split(/[.:] [A-Z]/)).toHaveLength(1);
  });

  it.each([
    [{ 'stackvault.exclude': 'True' }, undefined],
    [{ 'stackvault.exclude': ' true' }, undefined],
    [{ 'stackvault.exclude': 'FALSE' }, 'redis'],
    [{ 'stackvault.exclude': 'true', 'stackvault.stop': 'whatever' }, undefined],
  ])('selectDriver on a redis labelled %j -> %s', (labels, driver) => {
    expect(selectDriver(labelled(labels, 'redis:7'), DRIVERS)?.name).toBe(driver);
  });

  it.each<Record<string, string>>([{ 'stackvault.exclude': 'yes' }, { 'stackvault.stop': '1' }, { 'stackvault.consistent': 'on' }, { 'stackvault.writer': 'y' }])(
    'selectDriver refuses %j instead of a default',
    (labels) => {
      usage(() => selectDriver(labelled(labels, 'redis:7'), DRIVERS));
    },
  );
});

describe('unknown stackvault.* label keys', () => {
  it.each([
    ['stackvault.exlude', 'stackvault.exclude'],
    ['stackvault.Exclude', 'stackvault.exclude'],
    ['stackvault.excluded', 'stackvault.exclude'],
    ['stackvault.sqlite.path', 'stackvault.sqlite.paths'],
    ['stackvault.drivers', 'stackvault.driver'],
    ['stackvault.consistant', 'stackvault.consistent'],
    ['stackvault.stopped', 'stackvault.stop'],
    ['Stackvault.writer', 'stackvault.writer'],
  ])('%s: warned, with did you mean %s', (key, nearest) => {
    expect(nearestLabelKey(key)).toBe(nearest);
    const warnings = unknownLabelWarnings(labelled({ [key]: 'true' }));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('web-1');
    expect(warnings[0]).toContain(key);
    expect(warnings[0]).toContain(`did you mean ${nearest}?`);
  });

  it('every key stackvault reads or writes itself is known, and other prefixes are none of its business', () => {
    const own = [...Object.values(LABELS), STOP_LABEL, PATHS_LABEL, SQLITE_PATHS_LABEL, ...Object.values(HELPER_OWNER_LABELS), ...Object.values(THROWAWAY_LABELS), 'stackvault.build-hash'];
    const labels = Object.fromEntries([...own, ...USER_LABEL_KEYS, 'com.example.stackvault.x', 'stackvaultx'].map((k) => [k, 'x']));
    expect(unknownLabelWarnings(labelled(labels))).toEqual([]);
  });
});

describe('Compose one-offs', () => {
  it.each([
    ['True', true],
    ['true', true],
    ['False', false],
    [undefined, false],
  ])('com.docker.compose.oneoff=%s -> %s', (value, oneOff) => {
    expect(isOneOff(labelled(value === undefined ? {} : { 'com.docker.compose.oneoff': value }))).toBe(oneOff);
  });
});
