import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { controlCharacterIn, cronCommand, cronEscape, cronQuote, shellWords } from '../../src/core/cron.js';
import {
  CRON_MARKER,
  checkPingUrl,
  crontabWithoutOurs,
  installedJob,
  isOverdue,
  type JobLine,
  jobLine,
  lineValueProblem,
  ourEntry,
  projectMissing,
  repositoryHoldsPassword,
} from '../../src/core/scheduler.js';
import { cronRuns } from '../support/cron-sim.js';

/** Values that have broken or could break a crontab line: %, quotes, backslashes, shell syntax. */
const HOSTILE = ['pct%dir', 'a%2Fb%%c', "it's", "'", '\\', 'back\\%slash', 'end\\', '%', '\\\\%', '$(touch PWNED)', '`id`', '"dq"', 'sp ace', '#hash', '-dash', 'ü%ñ'];

const base = (over: Partial<JobLine> = {}): JobLine => ({
  expr: '0 2 * * *',
  type: 'daily',
  repoRoot: '/srv/stackvault',
  env: [['PATH', '/usr/bin:/bin']],
  dir: '/backups',
  log: '/backups/scheduler.log',
  installedAt: new Date('2026-11-21T10:00:00.000Z'),
  ...over,
});

describe("cron's rule for the command part (test/support/cron-sim.ts and src agree)", () => {
  it.each([
    ['plain', { command: 'plain' }],
    ['a%b', { command: 'a', stdin: 'b' }],
    ['a%b%c', { command: 'a', stdin: 'b\nc' }],
    ['a\\%b', { command: 'a%b' }],
    ['a\\\\%b', { command: 'a\\\\', stdin: 'b' }], // \\% : the first backslash escapes the second, the % ends
    ['a\\nb', { command: 'a\\nb' }],
    ['end\\', { command: 'end\\' }],
  ])('%j', (part, expected) => {
    expect(cronCommand(part)).toEqual(expected);
    expect(cronRuns(`* * * * * ${part}`)).toEqual({ schedule: '* * * * *', ...expected });
  });

  it.each(HOSTILE)('cronQuote(%j) is one shell word that cron passes through unchanged', (value) => {
    const command = `x ${cronQuote(value)} y`;
    expect(cronRuns(`* * * * * ${cronEscape(command)}`)).toEqual({ schedule: '* * * * *', command });
    expect(shellWords(command)).toEqual(['x', value, 'y']);
  });

  it('cronEscape refuses what cron cannot pass through', () => {
    expect(() => cronEscape("'a\\%b'")).toThrow(/backslash/);
  });
});

describe('the crontab line: every value reaches the job byte for byte (finding 2)', () => {
  const root = mkdtempSync(join(tmpdir(), 'fix-sched-line-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it.each(HOSTILE)('with %j in the repository path, the directory, the project, the ping file, the hosts, PATH and DOCKER_HOST', (value) => {
    // A repository whose bot.sh prints its arguments and environment, NUL-separated.
    const repo = join(root, `repo ${value.replaceAll('/', '_')} ${Math.random().toString(36).slice(2)}`);
    const dir = join(repo, `dir ${value.replaceAll('/', '_')}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(repo, 'bot.sh'), '#!/bin/sh\nprintf "%s\\0" "PATH=$PATH" "DOCKER_HOST=$DOCKER_HOST" "$@"\n');
    chmodSync(join(repo, 'bot.sh'), 0o755);
    const log = join(dir, 'scheduler.log');
    const job = base({
      repoRoot: repo,
      env: [
        ['PATH', `/usr/bin:/bin:/opt/${value}`],
        ['DOCKER_HOST', `unix:///run/${value}.sock`],
      ],
      dir,
      log,
      project: `p${value}`,
      pingFile: `/p/${value}/ping-url`,
      encryptTo: [`age1${value}`],
      hosts: [`a=ssh://u@h/${value}`],
      metrics: `/m/${value}.prom`,
    });
    const runs = cronRuns(jobLine(job));
    expect(runs?.stdin).toBeUndefined();
    execFileSync('sh', ['-c', runs!.command], { env: {} });
    expect(readFileSync(log, 'utf8').split('\0').slice(0, -1)).toEqual([
      `PATH=/usr/bin:/bin:/opt/${value}`,
      `DOCKER_HOST=unix:///run/${value}.sock`,
      ...['scheduler', 'run', '--type', 'daily', '--dir', dir, '--project', `p${value}`, '--encrypt-to', `age1${value}`],
      ...['--ping-file', `/p/${value}/ping-url`, '--host', `a=ssh://u@h/${value}`, '--metrics', `/m/${value}.prom`],
    ]);
  });

  it('ends with the marker and the install time, which status reads back with the log path and the directory', () => {
    const line = jobLine(base({ dir: "/b/a b 'c' %d", log: "/b/a b 'c' %d/scheduler.log", pingFile: "/b/a b 'c' %d/.scheduler-ping-url" }));
    expect(line).toMatch(new RegExp(`${CRON_MARKER} installed 2026-11-21T10:00:00.000Z$`));
    expect(installedJob([line])).toEqual({
      expr: '0 2 * * *',
      type: 'daily',
      dir: "/b/a b 'c' %d",
      log: "/b/a b 'c' %d/scheduler.log",
      installedAt: '2026-11-21T10:00:00.000Z',
      pingFile: "/b/a b 'c' %d/.scheduler-ping-url",
    });
  });
});

describe('control characters are refused (finding 3)', () => {
  const bad = ['\n', '\r', '\t', '\x00', '\x1b', '\x7f'];

  it.each(bad)('controlCharacterIn finds %j', (c) => {
    expect(controlCharacterIn(`a${c}b`)).toBe(`\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  });

  it.each(['plain', 'ü', '%', "'", ' ', '\u0085'])('and lets %j through', (v) => {
    expect(controlCharacterIn(v)).toBeUndefined();
  });

  const fields: Array<[string, (v: string) => Partial<JobLine>]> = [
    ['--dir', (v) => ({ dir: `/b${v}x` })],
    ['--project', (v) => ({ project: `p${v}x` })],
    ['--ping-file', (v) => ({ pingFile: `/p${v}x` })],
    ['--host', (v) => ({ hosts: [`a=unix:///s${v}`] })],
    ['--encrypt-to', (v) => ({ encryptTo: [`age1${v}`] })],
    ['--metrics', (v) => ({ metrics: `/m${v}` })],
    ['the repository path', (v) => ({ repoRoot: `/r${v}` })],
    ['PATH', (v) => ({ env: [['PATH', `/bin${v}* * * * * touch /tmp/PWNED #`]] })],
    ['RESTIC_REPOSITORY', (v) => ({ env: [['RESTIC_REPOSITORY', `sftp:x${v}`]] })],
  ];
  it.each(fields.flatMap(([name, f]) => bad.map((c) => [name, c, f] as const)))('%s with %j: one sentence, exit 2, no line', (name, c, f) => {
    let error: unknown;
    try {
      jobLine(base(f(c)));
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ exitCode: 2 });
    const text = (error as Error).message;
    expect(text.startsWith(`${name} holds a control character (\\x`)).toBe(true);
    expect(text.split(/\.(\s|$)/).filter((s) => s.trim()).length, text).toBe(1);
    expect(controlCharacterIn(text)).toBeUndefined();
    expect(lineValueProblem(name, `x${c}`)).toBe(text);
  });

  it.each([
    ['https://hc-ping.com/UUID', true],
    ['http://127.0.0.1:8080/hc?key=a%2Fb', true],
    ['HTTPS://hc.example/x', true],
    ['ftp://hc.example/x', false],
    ['hc-ping.com/UUID', false],
    ['https://', false],
    ['http://', false],
    ['javascript:alert(1)', false],
    ['', false],
  ])('--ping %j is accepted: %s', (url, ok) => {
    if (ok) expect(() => checkPingUrl(url)).not.toThrow();
    else expect(() => checkPingUrl(url)).toThrow(expect.objectContaining({ exitCode: 2 }));
  });

  it('a refused --ping is not quoted back: its path is the check’s key', () => {
    expect(() => checkPingUrl('hc-ping.com/Key-0a1b2c3d')).toThrow(/^--ping is not usable: it is not an http\(s\) URL with a host/);
    expect(() => checkPingUrl('hc-ping.com/Key-0a1b2c3d')).not.toThrow(/Key-0a1b2c3d/);
  });

  it('an older line with the URL in it: status learns where it pings, never the key', () => {
    const older = `0 2 * * * umask 077 && cd '/repo' && PATH='/usr/bin' ./bot.sh scheduler run --type daily --dir '/b' --ping 'https://hc-ping.com/Key-0a1b2c3d' >> '/b/scheduler.log' 2>&1 ${CRON_MARKER}`;
    expect(installedJob([older])).toMatchObject({ dir: '/b', pingInLine: 'https://hc-ping.com/…' });
    expect(JSON.stringify(installedJob([older]))).not.toContain('Key-0a1b2c3d');
  });
});

describe('our entry in the crontab (uninstall, reinstall, status)', () => {
  const repo = "0 2 * * * umask 077 && cd '/repo' && PATH='/usr/bin' ./bot.sh scheduler run --type daily";
  /** The entry the version before this fix wrote for --dir DIR (values single-quoted, nothing else), as crontab lines. */
  const olderEntry = (dir: string) => {
    const shq = (v: string) => `'${v.replaceAll("'", "'\\''")}'`;
    return `${repo} --dir ${shq(dir)} >> ${shq(`${dir}/scheduler.log`)} 2>&1 ${CRON_MARKER}`.split('\n');
  };
  // HUNT-LABELS finding 3: --dir $'/b/nl\n* * * * * touch /tmp/PWNED #'
  const injected = olderEntry('/b/nl\n* * * * * touch /tmp/PWNED #');
  // A value whose lines look like the start and the end of an entry, to fool a search backwards from the marker.
  const decoy = olderEntry(`/b/x\n* * * * * touch /tmp/PWNED2 #\n0 2 * * * umask 077 && cd '/y' 2>&1 ${CRON_MARKER}\n0 3 * * * umask 077 && cd '/z`);
  const mine = ['# my jobs', '', '0 1 * * * /usr/local/bin/mine', '', "30 4 * * * cd '/unbalanced && echo ok"];

  it.each([
    ['an entry of one line', [...mine.slice(0, 3), ...olderEntry("/b/it's"), ...mine.slice(3)]],
    ['an entry this version wrote', [...mine.slice(0, 3), jobLine(base({ dir: "/b/%'\\", pingFile: "/b/%'\\/.scheduler-ping-url" })), ...mine.slice(3)]],
    ['an entry an older version spread over three lines', [...mine.slice(0, 3), ...injected, ...mine.slice(3)]],
    ['a spread entry whose value looks like an entry start', [...mine.slice(0, 3), ...decoy, ...mine.slice(3)]],
    ['an entry of an unknown older form (the marked line alone)', [...mine.slice(0, 3), `@daily /opt/other ${CRON_MARKER}`, ...mine.slice(3)]],
    ['an entry at the very top', [`${repo} --dir '/b' 2>&1 ${CRON_MARKER}`, ...mine]],
  ])('removing %s keeps every other line, blank ones included (finding 17)', (_what, lines) => {
    expect(crontabWithoutOurs(lines.join('\n'))).toEqual(mine);
  });

  it('an empty crontab has no lines', () => {
    expect(crontabWithoutOurs('')).toEqual([]);
    expect(ourEntry('')).toBeUndefined();
  });

  it.each([
    ['spread over lines', injected, /spans 3 crontab lines/],
    ['spread over lines, with a decoy', decoy, /spans 7 crontab lines/],
    ['cut at a %', [`${repo} --dir '/b/pct%dir' >> '/b/pct%dir/scheduler.log' 2>&1 ${CRON_MARKER}`], /ends the installed command at a % sign/],
  ])('status says when cron cannot run an entry an older version wrote: %s', (_what, entry, problem) => {
    expect(ourEntry([...mine, ...entry].join('\n'))).toEqual(entry);
    expect(installedJob(entry).problem).toMatch(problem);
  });

  it('reads a line of an older version (no install time) as before', () => {
    const line = `${repo} --dir '/b/it'\\''s' >> '/b/it'\\''s/scheduler.log' 2>&1 ${CRON_MARKER}`;
    expect(installedJob([line])).toEqual({ expr: '0 2 * * *', type: 'daily', dir: "/b/it's", log: "/b/it's/scheduler.log" });
  });
});

describe('overdue (finding 10)', () => {
  const at = (s: string) => `${s}.000Z`;
  it.each([
    // expr, now, last run, installed, overdue
    ['0 2 * * *', '2026-11-23T10:00:00', undefined, '2026-11-21T10:00:00', false], // 48 h: within two days and ten minutes
    ['0 2 * * *', '2026-11-23T10:11:00', undefined, '2026-11-21T10:00:00', true], // never ran since the install
    ['0 2 * * *', '2026-11-23T10:11:00', '2026-11-22T02:00:00', '2026-11-21T10:00:00', false],
    ['0 2 * * *', '2026-11-25T02:11:00', '2026-11-23T02:00:00', '2026-11-21T10:00:00', true], // ran, then stopped
    ['0 2 * * *', '2026-11-23T10:11:00', '2026-01-01T02:00:00', '2026-11-21T10:00:00', true], // ran long ago, reinstalled, never since
    ['0 2 * * *', '2026-11-22T10:00:00', '2026-01-01T02:00:00', '2026-11-21T10:00:00', false], // reinstalled yesterday
    ['0 2 * * *', '2026-11-30T00:00:00', undefined, undefined, false], // an older version's line, never run: nothing to go by
    ['0 2 * * 0', '2026-11-30T00:00:00', undefined, '2026-11-21T10:00:00', false], // weekly: two weeks
    ['0 2 * * 0', '2026-12-05T10:11:00', undefined, '2026-11-21T10:00:00', true],
    ['* * * * *', '2026-11-21T10:12:01', undefined, '2026-11-21T10:00:00', true],
  ])('%s at %s, last run %s, installed %s: %s', (expr, now, last, installed, overdue) => {
    expect(isOverdue(expr, new Date(at(now)), last && at(last), installed && at(installed))).toBe(overdue);
  });
});

describe('--project that names no container (finding 17)', () => {
  const c = (project?: string): { labels: Record<string, string> } => ({ labels: project ? { 'com.docker.compose.project': project } : {} });
  it.each([
    [[c('shop'), c('blog')], 'shop', false],
    [[c('shop'), c()], 'shpo', true],
    [[], 'shop', true],
    [[c('Shop')], 'shop', true],
  ])('%j with --project %s warns: %s', (containers, project, warns) => {
    const w = projectMissing(containers, project);
    expect(w !== undefined).toBe(warns);
    if (w) expect(w).toContain(`'${project}'`);
  });
});

describe('a restic repository address with a password never goes into the crontab', () => {
  it.each([
    ['rest:http://ruser:RestPw-5566@127.0.0.1:18765/', true],
    ['rest:https://ruser:Rest@Pw-5566@backup.example/bot', true],
    ['s3:https://key:secret@s3.example/bucket', true],
    ['rest:https://ruser@backup.example/bot', false], // a user, no password
    ['rest:http://127.0.0.1:18765/', false],
    ['rest:http://host:8000/repo@2024', false], // an @ in the path is no user info
    ['/srv/restic-repo', false],
    ['sftp:user@host:/srv/restic', false],
    [undefined, false],
  ] as const)('%s: %s', (repository, holds) => {
    expect(repositoryHoldsPassword(repository)).toBe(holds);
  });
});
