import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/program.js';
import { ExitCode } from '../../src/errors.js';

/** Help text and the command tree are a contract; this is pure (no Docker). */
function _helpOf(path: string[]): string {
  const program = buildProgram();
  let cmd = program;
  for (const name of path) cmd = cmd.commands.find((c) => c.name() === name)!;
  return `${cmd.helpInformation()}\n${(cmd as unknown as { _afterHelpText?: string })._afterHelpText}`;
}

describe('command tree', () => {
  it('backup lists every verb', () => {
    const names = buildProgram()
      .commands.find((c) => c.name() === 'backup')!
      .commands.map((c) => c.name());
    expect(names).toEqual(expect.arrayContaining(['create', 'list', 'restore', 'verify', 'cleanup', 'stats']));
  });
  it('scheduler lists every verb', () => {
    const visible = buildProgram()
      .commands.find((c) => c.name() === 'scheduler')!
      .commands.filter((c) => !(c as unknown as { _hidden: boolean })._hidden)
      .map((c) => c.name());
    expect(visible).toEqual(['install', 'uninstall', 'status', 'trigger']);
  });
  it('exit codes are distinct', () => {
    const values = Object.values(ExitCode);
    expect(new Set(values).size).toBe(values.length);
  });
});
