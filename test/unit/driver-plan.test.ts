import { describe, expect, it } from 'vitest';
import { renderPlan } from '../../src/commands/create.js';
import { DRIVERS } from '../../src/drivers/registry.js';

/**
 * A dry run says, per service, how it is copied and whether it is stopped: a driver without a
 * `plan` made it print "undefined; stopped while copied" for an online MariaDB dump.
 */
describe('every datastore driver tells its plan', () => {
  it.each(DRIVERS.filter((d) => d.recognise).map((d) => d.name))('%s has a plan', (name) => {
    expect(DRIVERS.find((d) => d.name === name)!.plan).toBeTypeOf('function');
  });

  it('a plan without a method or an interruption says "not known", never undefined', () => {
    const text = renderPlan({ services: [{ service: 'db', driver: 'x', container: 'c', image: 'i' }], leftOut: [] });
    expect(text).not.toContain('undefined');
    expect(text).toContain('db (x, c): method not known; whether it is stopped is not known');
  });
});
