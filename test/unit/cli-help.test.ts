import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/commands/all.js';
import { buildProgram } from '../../src/program.js';
import { ALWAYS_POSSIBLE, EXIT_CODES, ExitCode } from '../../src/errors.js';

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

/** The help of a command as `./bot.sh <path> --help` prints it (with the texts added after it). */
function helpOf(path: string): string {
  let cmd = buildProgram();
  for (const name of path.split(' ')) cmd = cmd.commands.find((c) => c.name() === name)!;
  let out = '';
  cmd.configureOutput({ writeOut: (text) => (out += text) });
  cmd.outputHelp();
  return out;
}

/** The codes of the `Exit codes:` section of a help text, and its lines. */
function exitSection(help: string): { codes: number[]; lines: string[] } {
  const section = help.split('\nExit codes:\n')[1] ?? '';
  const lines = section.split('\n').filter((l) => /^ {2}\d/.test(l));
  return { codes: lines.map((l) => Number(l.trim().split(/\s+/)[0])), lines };
}

/** README "Exit codes": code -> meaning, from its table. */
function readmeExitCodes(): Map<number, string> {
  const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
  const section = readme.split('\n### Exit codes\n')[1]!.split('\n#')[0]!;
  const rows = [...section.matchAll(/^\| (\d+) \| (.+) \|$/gm)];
  return new Map(rows.map((m) => [Number(m[1]), m[2]!]));
}

describe('exit codes in --help, errors.ts and the README', () => {
  const all = Object.values(ExitCode).sort((a, b) => a - b);
  const visible = COMMANDS.filter((c) => !c.hidden);

  it('errors.ts says what each exit code means, once', () => {
    expect(EXIT_CODES.map((e) => e.code).sort((a, b) => a - b)).toEqual(all);
  });

  it("the README's table has a row for each code, and no other, beginning with the meaning --help gives", () => {
    const readme = readmeExitCodes();
    expect([...readme.keys()].sort((a, b) => a - b)).toEqual(all);
    for (const e of EXIT_CODES) expect(readme.get(e.code)!.toLowerCase().startsWith(e.title.toLowerCase()), `README row ${e.code}: ${readme.get(e.code)}`).toBe(true);
  });

  it.each(visible.map((c) => [c.path, c] as const))('%s: --help lists examples and the exit codes it can return, each as errors.ts says it', (path, command) => {
    const help = helpOf(path);
    expect(help).toMatch(/\nExamples:\n {2}\$ \.\/bot\.sh /);
    const { codes, lines } = exitSection(help);
    expect(codes).toEqual([...new Set(command.exitCodes)].sort((a, b) => a - b));
    for (const line of lines)
      expect(
        EXIT_CODES.some((e) => line === `  ${String(e.code).padEnd(5)}${e.title}${e.detail ? ` (${e.detail})` : ''}`),
        line,
      ).toBe(true);
  });

  // What can be read off a command's declaration is held to it: the rest is the command's own word.
  it.each(COMMANDS.map((c) => [c.path, c] as const))('%s: declares what every command can return, and what its flags make possible', (_path, command) => {
    const codes = new Set<number>(command.exitCodes);
    for (const c of ALWAYS_POSSIBLE) expect(codes.has(c), `exit ${c}`).toBe(true);
    for (const c of codes) expect(all, `exit ${c}`).toContain(c);
    const shared = command.shared ?? [];
    const own = (command.options?.() ?? []).map((o) => o.long);
    // checkDirFlag refuses a directory no file system can hold before any command runs.
    if (shared.includes('dir')) expect(codes.has(ExitCode.storage), '--dir: exit 7').toBe(true);
    if (shared.includes('yes')) expect(codes.has(ExitCode.aborted), '--yes: exit 9 without it').toBe(true);
    // The scheduled job says every outcome as ok, partial or failed (exit 0, 3, 1), as its state file and pings do.
    const scheduledJob = command.path === 'scheduler trigger' || command.path === 'scheduler run';
    if (own.includes('--remote') || (own.includes('--offsite') && !scheduledJob)) expect(codes.has(ExitCode.offsite), '--remote/--offsite: exit 10').toBe(true);
    if (scheduledJob) expect([...codes].filter((c) => ![...ALWAYS_POSSIBLE, ExitCode.partial, ExitCode.storage].includes(c as never))).toEqual([]);
    if (command.arguments?.some((a) => a.name === '<id>'))
      expect(
        [ExitCode.notFound, ExitCode.integrity].every((c) => codes.has(c)),
        '<id>: exit 4 and 5 (unknown, not a usable backup)',
      ).toBe(true);
  });
});
