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

/**
 * Commands are modules (src/commands/all.ts): the runner declares every one of them at start,
 * so their files load only light modules up front and the core inside `run`. This follows the
 * static imports from the entry point and fails when one reaches the core, a driver, Docker or
 * a package other than commander, which would make every `--help` and cron status slower.
 */
describe('start-up loads only what declaring the commands needs', () => {
  const staticImports = (file: string): string[] => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    // `import type` and `import('…')` are not loaded at start.
    return [...text.matchAll(/^import (?!type )[^;]*? from '([^']+)';/gms)].map((m) => m[1]!);
  };
  const reached = (): { files: Set<string>; packages: Set<string> } => {
    const files = new Set<string>();
    const packages = new Set<string>();
    const visit = (file: string) => {
      if (files.has(file)) return;
      files.add(file);
      for (const spec of staticImports(file)) {
        if (spec.startsWith('node:')) continue;
        if (!spec.startsWith('.')) packages.add(spec);
        else visit(join(file, '..', spec).replace(/\.js$/, '.ts'));
      }
    };
    visit('cli.ts');
    return { files, packages };
  };

  it('reaches every command module, and no core, driver or Docker module but the codec names', () => {
    const { files } = reached();
    expect(files).toContain('commands/all.ts');
    expect(files).toContain('commands/create.ts');
    expect([...files].filter((f) => /^(core|drivers|docker|offsite|stack)\//.test(f) && f !== 'core/compression.ts')).toEqual([]);
  });

  it('loads no package but commander', () => {
    expect([...reached().packages]).toEqual(['commander']);
  });
});
