import { execa } from 'execa';
import { access, chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/artifacts.js';
import { bot, REPO_ROOT } from '../support/cli.js';
import { newProjectName, startRedis } from '../support/containers.js';
import { cronRuns } from '../support/cron-sim.js';
import { IMAGES } from '../support/images.js';

/**
 * `scheduler install/status/uninstall` through the CLI against a fake `crontab` first on PATH
 * (the real crontab is never read or written here): it keeps the table in a file and refuses a
 * line without five fields, as crontab does. Its directory has a `%` in its name, so the PATH
 * the line keeps has one too. What cron would run is worked out by test/support/cron-sim.ts.
 */
const FAKE_CRONTAB = `#!/bin/bash
F="$FAKE_CRONTAB"
case "$1" in
  -l) if [ -f "$F" ]; then cat "$F"; else echo "no crontab for $(id -un)" >&2; exit 1; fi ;;
  -) cat > "$F.new"
     n=0; while IFS= read -r l; do n=$((n+1)); case "$l" in ''|'#'*) continue;; esac
       if [[ "$l" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then continue; fi
       if [[ "$l" =~ ^@(hourly|daily|weekly|monthly|yearly|annually|midnight)[[:space:]]+[^[:space:]] ]]; then continue; fi
       if ! [[ "$l" =~ ^[0-9*,/a-zA-Z-]+[[:space:]]+[0-9*,/a-zA-Z-]+[[:space:]]+[0-9*,/a-zA-Z-]+[[:space:]]+[0-9*,/a-zA-Z-]+[[:space:]]+[0-9*,/a-zA-Z-]+[[:space:]]+[^[:space:]] ]]; then
         echo "\\"-\\":$n: bad minute" >&2; echo "errors in crontab file, can't install." >&2; rm -f "$F.new"; exit 1; fi
     done < "$F.new"; mv "$F.new" "$F" ;;
  *) echo "fake crontab: unsupported $*" >&2; exit 2 ;;
esac
`;

const MINE = ['# my jobs', '', '0 1 * * * /usr/local/bin/mine', '', '# end'];

describe('scheduler: the crontab line (fake crontab)', () => {
  let root: string;
  let fakebin: string;
  let table: string;
  let printer: string;
  const containers: string[] = [];
  const env = () => ({ PATH: `${fakebin}:${process.env.PATH}`, FAKE_CRONTAB: table });
  const tab = async () => readFile(table, 'utf8');

  beforeAll(async () => {
    root = await tempDir('sched-tab');
    fakebin = join(root, 'fake bin 100%');
    await mkdir(fakebin);
    await writeFile(join(fakebin, 'crontab'), FAKE_CRONTAB, { mode: 0o755 });
    table = join(root, 'crontab');
    printer = join(root, 'argv-printer.sh');
    await writeFile(printer, '#!/bin/sh\nprintf "%s\\0" "PATH=$PATH" "$@"\n', { mode: 0o755 });
  });

  afterAll(async () => {
    for (const c of containers) await execa('docker', ['rm', '-f', c], { reject: false });
  });

  /** What cron runs for our line, with `./bot.sh` replaced by the argv printer, run by sh; returns what reached it. */
  async function runAsCron(log: string): Promise<string[]> {
    const line = (await tab()).split('\n').find((l) => l.includes('# stackvault-scheduler'))!;
    const runs = cronRuns(line)!;
    expect(runs.stdin, 'cron cut the command at a %').toBeUndefined();
    expect(runs.command.split('./bot.sh ')).toHaveLength(2);
    const r = await execa('sh', ['-c', runs.command.replace('./bot.sh ', `'${printer}' `)], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    return (await readFile(log, 'utf8')).split('\0').slice(0, -1);
  }

  it('% in --dir, --project, --ping and PATH: cron runs the job with every value byte for byte, the ping URL from its file (HUNT-LABELS 2)', async () => {
    await writeFile(table, `${MINE.join('\n')}\n`);
    const dir = join(root, "pct%dir it's \\%");
    const ping = 'http://127.0.0.1:9/ping?key=a%2Fb%%';
    const project = 'p%41x';
    const install = await bot(['scheduler', 'install', 'daily', '--dir', dir, '--project', project, '--ping', ping], { env: env() });
    expect(install.exitCode, String(install.stderr)).toBe(0);
    const got = await runAsCron(join(dir, 'scheduler.log'));
    expect(got[0]!.replace(/^PATH=/, '').split(':')).toContain(fakebin);
    expect(got.slice(1)).toEqual(['scheduler', 'run', '--type', 'daily', '--dir', dir, '--project', project, '--ping-file', join(dir, '.scheduler-ping-url')]);
    expect(await readFile(join(dir, '.scheduler-ping-url'), 'utf8')).toBe(`${ping}\n`);
    // The user's lines, blank ones included, are kept (HUNT-LABELS 17).
    expect((await tab()).split('\n').slice(0, MINE.length)).toEqual(MINE);

    const status = await bot(['scheduler', 'status', '--dir', dir], { env: env() });
    expect(String(status.stdout)).toContain(`Log:         ${dir}/scheduler.log`);
    expect(String(status.stdout)).not.toMatch(/overdue|older stackvault|backs up to/);
    // Asked about another directory: its runs are not the schedule's, and status says where they are.
    const elsewhere = await bot(['scheduler', 'status', '--dir', join(root, 'elsewhere')], { env: env() });
    expect(String(elsewhere.stdout)).toContain(`warning: the installed schedule backs up to ${dir}, so the runs shown here are not its own`);
  });

  it.each([
    ['--dir', (v: string) => ['--dir', join(root, `nl${v}`)]],
    ['--project', (v: string) => ['--project', `x${v}`]],
    ['--ping', (v: string) => ['--ping', `https://hc.example/x${v}`]],
    ['--host', (v: string) => ['--host', `local=unix:///var/run/docker.sock${v}`]],
    ['PATH', () => []],
  ])('a control character in %s is refused: exit 2, one sentence, nothing written (HUNT-LABELS 3)', async (name, args) => {
    const before = `${MINE.join('\n')}\n`;
    await writeFile(table, before);
    for (const c of ['\n* * * * * touch /tmp/svt-PWNED #', '\r', '\x1b[2J']) {
      const dir = join(root, `refused-${Math.random().toString(36).slice(2)}`);
      const pathEnv = name === 'PATH' ? { PATH: `${env().PATH}:/x${c}` } : {};
      const given = args(c);
      const r = await bot(['scheduler', 'install', 'daily', '--dir', dir, ...given], { env: { ...env(), ...pathEnv } });
      expect(r.exitCode, String(r.stderr)).toBe(2);
      expect(String(r.stderr)).toContain(`${name} holds a control character (\\x`);
      expect(String(r.stderr).trim().split('\n')).toHaveLength(1);
      expect(await tab()).toBe(before);
      await expect(access(name === '--dir' ? given[1]! : dir)).rejects.toThrow(); // no backup directory made either
    }
  });

  it('--ping and --host are checked at install', async () => {
    await writeFile(table, `${MINE.join('\n')}\n`);
    for (const args of [
      ['--ping', 'hc-ping.com/UUID'],
      ['--ping', 'https://'],
      ['--host', 'bad name=unix:///var/run/docker.sock'],
      ['--host', 'x=ftp://h'],
    ]) {
      const r = await bot(['scheduler', 'install', 'daily', '--dir', join(root, 'checked'), ...args], { env: env() });
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(2);
    }
    expect(await tab()).toBe(`${MINE.join('\n')}\n`);
  });

  it('no password goes into the crontab: an engine address or a restic repository holding one is refused at install (secrets hunt 2, 3)', async () => {
    await writeFile(table, `${MINE.join('\n')}\n`);
    const pw = join(root, 'restic-pw');
    await writeFile(pw, 'repo-password\n');
    for (const [args, extra, says] of [
      [['--host', 'prod=ssh://user:Ssh-Pw-1@127.0.0.1:2222'], {}, /holds a password/],
      [[], { DOCKER_HOST: 'tcp://user:Tcp-Pw-2@127.0.0.1:1' }, /holds a password/],
      [['--offsite'], { RESTIC_REPOSITORY: 'rest:http://ruser:Rest@Pw-5566@127.0.0.1:18765/', RESTIC_PASSWORD_FILE: pw }, /RESTIC_REPOSITORY holds a password/],
    ] as const) {
      const r = await bot(['scheduler', 'install', 'daily', '--dir', join(root, 'secret'), ...args], { env: { ...env(), ...extra } });
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(String(r.stderr)).toMatch(says);
      expect(`${r.stdout}${r.stderr}`).not.toMatch(/Pw-[0-9]/);
    }
    expect(await tab()).toBe(`${MINE.join('\n')}\n`);
  });

  it('uninstall removes an entry an older version spread over several lines, and only it; status says it cannot run (HUNT-LABELS 3)', async () => {
    // What the version before this fix wrote for --dir $'/tmp/nl\n* * * * * touch /tmp/svt-PWNED #'.
    const older = [
      `0 2 * * * umask 077 && cd '${REPO_ROOT}' && PATH='/usr/bin:/bin' ./bot.sh scheduler run --type daily --dir '/tmp/nl`,
      "* * * * * touch /tmp/svt-PWNED #' --project 'x' >> '/tmp/nl",
      "* * * * * touch /tmp/svt-PWNED #/scheduler.log' 2>&1 # stackvault-scheduler",
    ];
    await writeFile(table, `${[...MINE.slice(0, 3), ...older, ...MINE.slice(3)].join('\n')}\n`);
    const status = await bot(['scheduler', 'status', '--dir', join(root, 'any')], { env: env() });
    expect(String(status.stdout)).toMatch(/warning: the installed entry spans 3 crontab lines .*install the schedule again/);
    const r = await bot(['scheduler', 'uninstall'], { env: env() });
    expect(r.exitCode).toBe(0);
    expect(await tab()).toBe(`${MINE.join('\n')}\n`);
  });

  it('a schedule that never ran is overdue two intervals after its install, in status and its --json (HUNT-LABELS 10)', async () => {
    await writeFile(table, '');
    const dir = join(root, "never 'ran'");
    expect((await bot(['scheduler', 'install', 'daily', '--dir', dir], { env: env() })).exitCode).toBe(0);
    const fresh = await bot(['scheduler', 'status', '--dir', dir, '--json'], { env: env() });
    expect(JSON.parse(String(fresh.stdout))).toMatchObject({ installed: true, overdue: false, log: `${dir}/scheduler.log`, dir });
    // Installed three days ago, as far as the line says; no run since.
    const threeDaysAgo = new Date(Date.now() - 3 * 86_400_000).toISOString();
    await writeFile(table, (await tab()).replace(/installed \S+$/m, `installed ${threeDaysAgo}`));
    const late = await bot(['scheduler', 'status', '--dir', dir], { env: env() });
    expect(String(late.stdout)).toMatch(/Last run: +never/);
    expect(String(late.stdout)).toMatch(/warning: the schedule is overdue: it has not run since it was installed .*, more than two intervals ago/);
    const json = JSON.parse(String((await bot(['scheduler', 'status', '--dir', dir, '--json'], { env: env() })).stdout));
    expect(json).toMatchObject({ overdue: true, installedAt: threeDaysAgo });
  });

  it('--project that no container carries is a warning at install, not a refusal (HUNT-LABELS 17)', async () => {
    await writeFile(table, '');
    const project = newProjectName('schedproj');
    const missing = await bot(['scheduler', 'install', 'daily', '--dir', join(root, 'proj'), '--project', project], { env: env() });
    expect(missing.exitCode).toBe(0);
    expect(String(missing.stdout)).toContain(`warning: no container of Compose project '${project}' exists now`);
    expect(await tab()).toContain(`--project '${project}'`);
    // A created, never started container of the project is enough (the stack may be down).
    containers.push(project);
    await execa('docker', ['create', '--name', project, '--label', `com.docker.compose.project=${project}`, IMAGES.redis]);
    const present = await bot(['scheduler', 'install', 'daily', '--dir', join(root, 'proj'), '--project', project, '--json'], { env: env() });
    expect(present.exitCode).toBe(0);
    expect(JSON.parse(String(present.stdout)).warnings).toEqual([]);
  });

  it('scripts/backup_scheduler.sh and bot.sh called by a relative path ignore CDPATH (HUNT-LABELS 16)', async () => {
    const decoy = join(root, 'decoy');
    await mkdir(join(decoy, 'scripts'), { recursive: true });
    await mkdir(join(decoy, basename(REPO_ROOT), 'scripts', 'lib'), { recursive: true });
    for (const d of [decoy, join(decoy, basename(REPO_ROOT))]) {
      await writeFile(join(d, 'bot.sh'), '#!/bin/sh\necho DECOY\n');
      await chmod(join(d, 'bot.sh'), 0o755);
    }
    const viaScript = await execa('scripts/backup_scheduler.sh', ['--help'], { cwd: REPO_ROOT, env: { ...env(), CDPATH: decoy }, reject: false });
    expect(viaScript.exitCode, viaScript.stderr).toBe(0);
    expect(viaScript.stdout).toContain('uninstall');
    const viaBot = await execa(join(basename(REPO_ROOT), 'bot.sh'), ['scheduler', '--help'], { cwd: dirname(REPO_ROOT), env: { ...env(), CDPATH: decoy }, reject: false });
    expect(viaBot.exitCode, viaBot.stderr).toBe(0);
    expect(viaBot.stdout).toContain('uninstall');
  });
  describe('the ping URL holds a key: never in the crontab line nor any argv (secrets hunt 2, gap 1)', () => {
    const key = `Key-${Math.random().toString(36).slice(2, 10)}-0a1b2c3d`;
    const ping = `https://hc-ping.com/${key}`;
    const said = (r: { stdout?: unknown; stderr?: unknown }) => `${String(r.stdout)}${String(r.stderr)}`;

    it('install keeps it in a 0600 file of the backup directory, the line names the file, status shows the host only, uninstall removes the file', async () => {
      await writeFile(table, `${MINE.join('\n')}\n`);
      const dir = join(root, 'pinged');
      const file = join(dir, '.scheduler-ping-url');
      const install = await bot(['scheduler', 'install', 'daily', '--dir', dir, '--ping', ping], { env: env() });
      expect(install.exitCode, String(install.stderr)).toBe(0);
      expect(said(install)).not.toContain(key);
      expect(await tab()).not.toContain(key);
      expect(await tab()).toContain(`--ping-file '${file}'`);
      expect(await readFile(file, 'utf8')).toBe(`${ping}\n`);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const argv = await runAsCron(join(dir, 'scheduler.log'));
      expect(argv.slice(-2)).toEqual(['--ping-file', file]);
      expect(argv.join(' ')).not.toContain(key);

      const status = await bot(['scheduler', 'status', '--dir', dir], { env: env() });
      expect(String(status.stdout)).toContain(`Pings:       https://hc-ping.com/… (URL read from ${file} at each run)`);
      expect(said(status)).not.toContain(key);
      const json = await bot(['scheduler', 'status', '--dir', dir, '--json'], { env: env() });
      expect(JSON.parse(String(json.stdout)).ping).toEqual({ file, to: 'https://hc-ping.com/…' });
      expect(said(json)).not.toContain(key);

      // Installed again without --ping: the key is not left behind.
      expect((await bot(['scheduler', 'install', 'weekly', '--dir', dir], { env: env() })).exitCode).toBe(0);
      await expect(access(file)).rejects.toThrow();
      expect(await tab()).not.toContain('--ping');
      expect((await bot(['scheduler', 'install', 'daily', '--dir', dir, '--ping', ping], { env: env() })).exitCode).toBe(0);
      const removed = await bot(['scheduler', 'uninstall'], { env: env() });
      expect(String(removed.stdout)).toContain(`Removed the stackvault crontab entry and its ping file ${file};`);
      await expect(access(file)).rejects.toThrow();
      expect(await tab()).toBe(`${MINE.join('\n')}\n`);
    });

    it("an older version's line with the URL in it: status says so without the key", async () => {
      await writeFile(
        table,
        `0 2 * * * umask 077 && cd '${REPO_ROOT}' && PATH='/usr/bin:/bin' ./bot.sh scheduler run --type daily --dir '${root}/old' --ping '${ping}' >> '${root}/old/scheduler.log' 2>&1 # stackvault-scheduler\n`,
      );
      const status = await bot(['scheduler', 'status', '--dir', join(root, 'old')], { env: env() });
      expect(String(status.stdout)).toContain('Pings:       https://hc-ping.com/…');
      expect(String(status.stdout)).toContain('warning: the installed line holds the ping URL, and the key in it, which every local user can see in the process list');
      expect(said(status)).not.toContain(key);
      expect(said(await bot(['scheduler', 'status', '--dir', join(root, 'old'), '--json'], { env: env() }))).not.toContain(key);
      expect((await bot(['scheduler', 'uninstall'], { env: env() })).exitCode).toBe(0);
    });

    it("--ping-file of the user's own: checked at install, named in the line, left alone by uninstall", async () => {
      await writeFile(table, `${MINE.join('\n')}\n`);
      const dir = join(root, 'own-file');
      const own = join(root, 'my hc url');
      const install = async (...args: string[]) => bot(['scheduler', 'install', 'daily', '--dir', dir, ...args], { env: env() });
      // Refused, nothing written: missing, empty, not a URL (its content is not quoted), both flags.
      for (const [content, says] of [
        [undefined, /--ping-file: the ping file .* does not exist\./],
        ['\n', /--ping-file: the ping file .* is empty\./],
        [`hc-ping.com/${key}\n`, /--ping-file: the ping file .* holds no URL to ping: it is not an http\(s\) URL with a host/],
        [`${ping}\n${ping}\n`, /holds more than one line/],
      ] as const) {
        await rm(own, { force: true });
        if (content !== undefined) await writeFile(own, content, { mode: 0o600 });
        const r = await install('--ping-file', own);
        expect(r.exitCode, said(r)).toBe(2);
        expect(String(r.stderr)).toMatch(says);
        expect(said(r)).not.toContain(key);
      }
      const both = await install('--ping', ping, '--ping-file', own);
      expect(both.exitCode).toBe(2);
      expect(await tab()).toBe(`${MINE.join('\n')}\n`);

      await writeFile(own, `${ping}\n`, { mode: 0o644 });
      await chmod(own, 0o644);
      const ok = await install('--ping-file', own);
      expect(ok.exitCode, said(ok)).toBe(0);
      expect(String(ok.stdout)).toContain(`warning: the ping file ${own} can be read by other users (mode 644)`);
      expect(await tab()).toContain(`--ping-file '${own}'`);
      expect(await tab()).not.toContain(key);
      expect(String((await bot(['scheduler', 'status', '--dir', dir], { env: env() })).stdout)).toContain(`Pings:       https://hc-ping.com/… (URL read from ${own} at each run)`);
      expect(String((await bot(['scheduler', 'uninstall'], { env: env() })).stdout)).not.toContain('ping file');
      expect(await readFile(own, 'utf8')).toBe(`${ping}\n`); // the user's file stays
    });

    it('a scheduled run reads the file: the pings arrive, the key is in no process argv; a broken file is one warning, status shows it, and the backup runs', async () => {
      await writeFile(table, '');
      const project = newProjectName('pingfile');
      const redis = await startRedis({ project });
      const hits: string[] = [];
      const server = createServer((req, res) => {
        hits.push(req.url ?? '');
        res.end('ok');
      }).listen(0, '127.0.0.1');
      try {
        await new Promise((r) => server.once('listening', r));
        const port = (server.address() as { port: number }).port;
        const url = `http://127.0.0.1:${port}/${key}`;
        const dir = join(root, 'runs');
        const log = join(dir, 'scheduler.log');
        expect((await bot(['scheduler', 'install', 'daily', '--dir', dir, '--project', project, '--ping', url], { env: env() })).exitCode).toBe(0);
        const line = (await tab()).split('\n').find((l) => l.includes('# stackvault-scheduler'))!;
        const command = cronRuns(line)!.command;

        // What cron runs, as cron runs it, while every process's argv on the host is sampled.
        const seen = new Set<string>();
        let sampling = true;
        const sampler = (async () => {
          while (sampling) {
            for (const l of (await execa('ps', ['-eo', 'args'], { reject: false })).stdout.split('\n')) if (l.includes(key) || l.includes('scheduler run')) seen.add(l);
            await new Promise((r) => setTimeout(r, 20));
          }
        })();
        const run = await execa('sh', ['-c', command], { reject: false, env: { ...process.env, ...env() } });
        sampling = false;
        await sampler;
        expect(run.exitCode, await readFile(log, 'utf8')).toBe(0);
        expect(
          [...seen].some((l) => l.includes('scheduler run --type daily')),
          'the sampler must see the run, or it proves nothing',
        ).toBe(true);
        expect([...seen].filter((l) => l.includes(key))).toEqual([]);
        expect(hits).toEqual([`/${key}/start`, `/${key}`]);
        expect(await readFile(log, 'utf8')).toMatch(/scheduled daily backup ok \(stackvault_backup_/);

        // A broken file: one warning in the log, no pings, the backup still made; status says why.
        for (const [content, says] of [
          ['', 'is empty'],
          ['not a url\n', 'holds no URL to ping'],
        ]) {
          await writeFile(join(dir, '.scheduler-ping-url'), content, { mode: 0o600 });
          const before = (await readdir(dir)).filter((n) => n.startsWith('stackvault_backup_')).length;
          const logBefore = (await readFile(log, 'utf8')).length;
          hits.length = 0;
          const again = await execa('sh', ['-c', command], { reject: false, env: { ...process.env, ...env() } });
          expect(again.exitCode).toBe(0);
          const added = (await readFile(log, 'utf8')).slice(logBefore);
          expect(added.match(/warning: /g), added).toHaveLength(1);
          expect(added).toContain(`warning: the ping file ${join(dir, '.scheduler-ping-url')} ${says}`);
          expect(added).toContain('so this run sends no pings; the backup runs all the same.');
          expect(added).toMatch(/scheduled daily backup ok/);
          expect(hits).toEqual([]);
          expect((await readdir(dir)).filter((n) => n.startsWith('stackvault_backup_')).length).toBe(before + 1);
          const status = await bot(['scheduler', 'status', '--dir', dir], { env: env() });
          expect(String(status.stdout)).toMatch(new RegExp(`warning: the ping file ${join(dir, '.scheduler-ping-url')} ${says}.*, so the scheduled runs send no pings`));
        }

        // --ping on the command line still works, and says what it costs.
        hits.length = 0;
        const trigger = await bot(['scheduler', 'trigger', '--type', 'daily', '--dir', dir, '--project', project, '--ping', url], { env: env() });
        expect(trigger.exitCode, said(trigger)).toBe(0);
        expect(String(trigger.stdout)).toContain("warning: --ping puts the URL, and the check's key in it, on this run's command line");
        expect(hits).toEqual([`/${key}/start`, `/${key}`]);

        // No file stackvault wrote holds the key but the ping file (the operations log masks --ping).
        for (const name of await readdir(dir)) {
          if (name === '.scheduler-ping-url' || !(await stat(join(dir, name))).isFile()) continue;
          expect(await readFile(join(dir, name), 'utf8'), name).not.toContain(key);
        }
      } finally {
        server.close();
        await redis.stop();
      }
    });
  });
});
