import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DRIVERS } from '../../src/drivers/registry.js';

/**
 * A datastore's whole behaviour lives in its driver file: core and the commands know drivers
 * only through the Driver contract and the registry. These fail when a file under src/core or
 * src/commands names a driver (as a string) or imports a driver's own module.
 */
const ROOT = join(import.meta.dirname, '..', '..', 'src');
const SHARED_DRIVER_MODULES = ['registry', 'types', 'recognise', 'fingerprint'];

const sources = (dir: string) =>
  readdirSync(join(ROOT, dir))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => ({ file: `${dir}/${f}`, text: readFileSync(join(ROOT, dir, f), 'utf8') }));

describe('core and commands know no driver by name', () => {
  const files = [...sources('core'), ...sources('commands')];

  it.each(DRIVERS.map((d) => d.name))('no string names the %s driver', (name) => {
    const literal = new RegExp(`['"\`]${name}['"\`]`);
    expect(files.filter((f) => literal.test(f.text)).map((f) => f.file)).toEqual([]);
  });

  it('only the registry and the shared contract modules of drivers/ are imported', () => {
    const imports = files.flatMap((f) => [...f.text.matchAll(/from '\.\.\/drivers\/([\w-]+)\.js'/g)].map((m) => `${f.file} -> ${m[1]}`));
    expect(imports.filter((i) => !SHARED_DRIVER_MODULES.includes(i.split(' -> ')[1]!))).toEqual([]);
  });

  it('the check itself sees a driver name where there is one', () => {
    expect(/['"`]postgres['"`]/.test(readFileSync(join(ROOT, 'drivers', 'postgres.ts'), 'utf8'))).toBe(true);
  });
});

describe('every exit code comes from the one table', () => {
  const all = readdirSync(ROOT, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => ({ file: f, text: readFileSync(join(ROOT, f), 'utf8') }));

  it('no error, exit or exitCode carries a bare number', () => {
    const bare = /new StackvaultError\((?:[^()]|\([^()]*\))*?,\s*\d+\s*[,)]|process\.exit\(\d+\)|process\.exitCode\s*=\s*\d+/;
    expect(all.filter((f) => bare.test(f.text)).map((f) => f.file)).toEqual([]);
  });
});
