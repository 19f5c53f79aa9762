#!/usr/bin/env node
// Benchmark of stackvault on this machine (issue 11). It starts a stack of the project's local
// images (PostgreSQL, Redis, Chroma, the Neo4j stand-in, a SQLite app with a live writer) as its
// own Compose-like project, fills it to --size, then, --runs times, alternating:
//   baseline   the old manual procedure, one store after another (pg_dumpall > f; gzip -6 f;
//              BGSAVE + docker cp of the RDB; Chroma and Neo4j stopped, tar czf of the volume,
//              started; SQLite through the backup API)
//   gzip       backup create --compress gzip
//   default    backup create (no --compress flag: whatever the default codec is)
//   floor      each store's raw copy alone, uncompressed, to a byte counter; then all of
//              them at once (the floor of any tool that copies every store on this machine)
//   restore    backup restore of the default-codec backup, then the manual sequential restore of
//              the baseline's files, then backup verify --deep
// and prints medians, ratios, sizes, peak RSS, downtime, the targets of issue 11 (met / not met,
// never asserted) and a one-line summary last; --out FILE writes everything as JSON.
//
//   npm run bench -- [--size 200m|1g|4g] [--runs 3] [--out bench.json] [--no-restore]
//
// Needs the Docker engine and the local images (scripts/test.sh sets both up), root (volumes are
// read on the host, as an admin would), and a build (npm run bench builds first).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, hostname, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { baseline, dirBytes, floor, floorTogether, manualRestore, sqliteBackupTool, stackvault } from './bench/procedures.mjs';
import { children, docker, now, run, state } from './bench/proc.mjs';
import { rssAcrossSizes } from './bench/rss-across-sizes.mjs';
import { SERVICES, Stack } from './bench/stack.mjs';

const USAGE = `usage: node scripts/bench.mjs [--size 200m|1g|4g] [--runs N] [--out FILE] [--no-restore] [--rss-against FILE] [--workdir DIR] [--cli dist/cli.js]
       node scripts/bench.mjs --report FILE [--rss-against FILE]   (prints a saved run's tables again; starts nothing)`;

function parseArgs(argv) {
  const o = { size: 1e9, sizeText: '1g', runs: 3, out: undefined, restore: true, rssAgainst: undefined, workdir: undefined, cli: resolve(import.meta.dirname, '..', 'dist', 'cli.js') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a === '--size') {
      o.sizeText = value();
      const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(o.sizeText);
      if (!m) throw new Error(`--size ${o.sizeText}: give a size such as 200m, 1g or 4g\n${USAGE}`);
      o.size = Number(m[1]) * { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 }[m[2].toLowerCase()];
      if (o.size < 20e6) throw new Error('--size: at least 20m');
    } else if (a === '--runs') {
      o.runs = Number(value());
      if (!Number.isInteger(o.runs) || o.runs < 1) throw new Error(`--runs: a whole number of at least 1\n${USAGE}`);
    } else if (a === '--out') o.out = resolve(value());
    else if (a === '--no-restore') o.restore = false;
    else if (a === '--rss-against') o.rssAgainst = readRun(value(), a);
    else if (a === '--report') o.report = readRun(value(), a);
    else if (a === '--workdir') o.workdir = resolve(value());
    else if (a === '--cli') o.cli = resolve(value());
    else if (a === '-h' || a === '--help') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  return o;
}

/** Another run's results (its --out file), read before this run starts so a wrong name costs nothing. */
function readRun(file, flag) {
  let run;
  try {
    run = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${flag} ${file}: not a benchmark's --out file (${err.message})`);
  }
  if (!run?.medians || !Array.isArray(run.runs) || !run.options) throw new Error(`${flag} ${file}: not a benchmark's --out file (no runs, medians or options)`);
  return run;
}

const log = (s = '') => console.log(s);
const MB = (b) => b / 1e6;
const sec = (ms) => ms / 1000;
const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && !Number.isNaN(x)).sort((a, b) => a - b);
  if (!v.length) return undefined;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
/** The median over runs of a number picked from each run. */
const med = (runs, pick) => median(runs.map((r) => pick(r)));
const fmt = (x, digits = 1) => (x === undefined || Number.isNaN(x) ? '–' : x.toFixed(digits));
const ratio = (a, b) => (a === undefined || !b ? undefined : a / b);

async function machine() {
  const dockerVersion = await docker('version', '--format', '{{.Server.Version}} (API {{.Server.APIVersion}})').catch((e) => `unknown (${e.message})`);
  const info = await docker('info', '--format', '{{.Driver}}, cgroup v{{.CgroupVersion}}').catch(() => '');
  const commit = await run('git', ['rev-parse', '--short', 'HEAD'], { cwd: import.meta.dirname }).catch(() => '?');
  const c = cpus();
  return {
    host: hostname(),
    cores: c.length,
    cpu: c[0]?.model ?? '?',
    ramGiB: +(totalmem() / 2 ** 30).toFixed(1),
    kernel: release(),
    docker: `${dockerVersion}${info ? `, ${info}` : ''}`,
    node: process.version,
    stackvaultCommit: commit.trim(),
    loadAtStart: loadavg().map((x) => +x.toFixed(2)),
  };
}

/** Pulls what the report needs out of a manifest. */
function fromManifest(m, ms, rss, dir, expected = SERVICES) {
  const bad = m.services.filter((s) => s.status !== 'ok');
  if (m.status !== 'ok' || bad.length) throw new Error(`backup ${m.id} is ${m.status}: ${bad.map((s) => `${s.name}: ${s.status} ${s.error ?? ''}`).join('; ')}`);
  const missing = expected.filter((s) => !m.services.some((x) => x.name === s));
  if (missing.length) throw new Error(`backup ${m.id} lacks ${missing.join(', ')} (found: ${m.services.map((s) => s.name).join(', ')})`);
  const services = Object.fromEntries(
    m.services.map((s) => [s.name, { durationMs: s.durationMs, downtimeMs: s.downtimeMs, bytes: s.bytes, rawBytes: s.rawBytes, compression: s.compression, warnings: s.warnings }]),
  );
  return {
    id: m.id,
    ms,
    bytes: dirBytes(join(dir, m.id)),
    artifactBytes: m.services.reduce((n, s) => n + s.bytes, 0),
    rawBytes: m.services.reduce((n, s) => n + s.rawBytes, 0),
    compression: [...new Set(m.services.map((s) => s.compression))].join('+'),
    rss,
    services,
    ...(m.consistency ? { consistency: m.consistency } : {}),
    warnings: m.services.flatMap((s) => (s.warnings ?? []).map((w) => `${s.name}: ${w}`)),
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.report) {
    const saved = opts.report;
    report(saved, { ...opts, sizeText: saved.options.size, restore: saved.options.restore });
    log(saved.summary);
    return;
  }
  const prefix = `svbench-${process.pid}`;
  const work = opts.workdir ?? join(tmpdir(), prefix);
  const stack = new Stack(prefix);
  const results = { issue: 11, startedAt: new Date().toISOString(), options: { size: opts.sizeText, sizeBytes: opts.size, runs: opts.runs, restore: opts.restore }, project: prefix };

  let cleaned;
  const cleanup = () =>
    (cleaned ??= (async () => {
      const errors = await stack.remove();
      rmSync(work, { recursive: true, force: true });
      if (errors.length) console.error(`cleanup: ${errors.join('\n')}`);
    })());
  const onSignal = (sig) => {
    if (state.aborting) return;
    state.aborting = true;
    console.error(`\n${sig}: stopping; waiting for running commands (stackvault restarts what it stopped), then removing ${prefix}-*`);
    // Ctrl-C in a terminal reaches the children too; a signal sent to this process alone is passed on.
    const waits = [...children].map(
      (c) =>
        new Promise((r) => {
          if (c.exitCode !== null || c.signalCode !== null) return r();
          c.once('close', r);
          c.kill('SIGINT');
        }),
    );
    Promise.race([Promise.all(waits), new Promise((r) => setTimeout(r, 60_000))])
      .then(cleanup)
      .finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    mkdirSync(work, { recursive: true, mode: 0o700 });
    results.machine = await machine();
    const m = results.machine;
    log(`stackvault benchmark: --size ${opts.sizeText} --runs ${opts.runs}, project ${prefix}, work dir ${work}`);
    log(`machine: ${m.cores} cores (${m.cpu}), ${m.ramGiB} GiB RAM, kernel ${m.kernel}, Docker ${m.docker}, Node ${m.node}, stackvault ${m.stackvaultCommit}, load ${m.loadAtStart.join(' ')}`);
    const sqliteTool = await sqliteBackupTool();
    results.baselineSqliteTool = sqliteTool.name;

    log('\nstarting the stack...');
    const [startMs] = await timedAsync(() => stack.startAll());
    log(`  ${SERVICES.length} containers ready in ${fmt(sec(startMs))} s`);
    log(`seeding to about ${opts.sizeText} raw (bulk work inside the containers, all stores at once)...`);
    const [seedMs, seedSeconds] = await timedAsync(() => stack.seed(opts.size, (s) => log(s)));
    results.seed = { seconds: sec(seedMs), perStore: seedSeconds, plan: stack.plan, counts: stack.expected };
    log(
      `  seeded in ${fmt(sec(seedMs))} s: ${Object.entries(stack.expected)
        .map(([k, v]) => `${k} ${v.toLocaleString('en')}`)
        .join(', ')}`,
    );

    const runs = [];
    results.runs = runs;
    for (let i = 1; i <= opts.runs; i++) {
      log(`\nrun ${i}/${opts.runs}`);
      const dir = join(work, `run-${i}`);
      const backups = join(dir, 'stackvault');
      mkdirSync(backups, { recursive: true });
      const r = { run: i };
      runs.push(r);

      await stack.waitReady();
      r.baseline = await baseline(stack, join(dir, 'baseline'), sqliteTool);
      log(`  baseline            ${fmt(sec(r.baseline.ms))} s, ${fmt(MB(r.baseline.bytes))} MB (${stepLine(r.baseline.steps)})`);

      for (const [key, flags] of [
        ['gzip', ['--compress', 'gzip']],
        ['default', []],
        // Issue 14: one point for every store; the window (writers paused) is what is measured.
        ['consistent', ['--consistent']],
        // The window without stores that must be stopped (issue 14: a tenth of the 2 s).
        ['consistentOnline', ['--consistent', '--only', 'postgres,redis,app']],
      ]) {
        await stack.waitReady();
        const { ms, json, rss } = await stackvault(opts.cli, ['backup', 'create', '--json', '--project', prefix, '--dir', backups, ...flags]);
        const only = flags.includes('--only') ? flags[flags.indexOf('--only') + 1].split(',') : undefined;
        r[key] = fromManifest(json, ms, rss, backups, only);
        const label =
          { gzip: 'create --compress gzip', consistent: 'create --consistent', consistentOnline: 'create --consistent --only postgres,redis,app' }[key] ?? `create (default: ${r[key].compression})`;
        log(
          `  ${label.padEnd(19)} ${fmt(sec(ms))} s, ${fmt(MB(r[key].bytes))} MB (raw ${fmt(MB(r[key].rawBytes))}), RSS ${fmt(rss.rootHwmMB, 0)}/${fmt(rss.treeMB, 0)} MB (${Object.entries(
            r[key].services,
          )
            .map(([n, s]) => `${n} ${fmt(sec(s.durationMs))} s${s.downtimeMs !== undefined ? ` down ${fmt(sec(s.downtimeMs))}` : ''}`)
            .join(', ')})`,
        );
        if (r[key].consistency)
          log(
            `    window: writers paused ${fmt(sec(r[key].consistency.pausedMs), 2)} s (${r[key].consistency.paused.join(', ') || 'none'})${r[key].consistency.copiedInWindow?.length ? `; copied whole inside it: ${r[key].consistency.copiedInWindow.join(', ')}` : ''}`,
          );
        for (const w of r[key].warnings) log(`    warning: ${w}`);
      }

      await stack.waitReady();
      r.floor = await floor(stack);
      log(`  floor               slowest ${r.floor.slowest} ${fmt(sec(r.floor.maxMs))} s, sum ${fmt(sec(r.floor.sumMs))} s (${stepLine(r.floor.steps)})`);
      r.floorTogether = await floorTogether(stack);
      log(`  floor, all at once  ${fmt(sec(r.floorTogether.ms))} s`);

      if (opts.restore) {
        await stack.waitReady();
        const id = r.default.id;
        const restore = await stackvault(opts.cli, ['backup', 'restore', id, '--dir', backups, '--yes', '--json']);
        r.restore = { ms: restore.ms, rss: restore.rss, ...restoreFacts(restore.json, backups) };
        log(
          `  restore (stackvault) ${fmt(sec(r.restore.ms))} s (restore point ${fmt(sec(r.restore.restorePointMs))} s; ${downLine(r.restore.durationMs)}), RSS ${fmt(restore.rss.rootHwmMB, 0)}/${fmt(restore.rss.treeMB, 0)} MB${r.restore.downtimeMs ? ` (down: ${downLine(r.restore.downtimeMs)})` : ''}`,
        );
        await stack.waitReady();
        await stack.checkCounts(`backup restore ${id}`);

        r.manualRestore = await manualRestore(stack, join(dir, 'baseline'));
        await stack.checkCounts('the manual restore');
        log(`  restore (manual)    ${fmt(sec(r.manualRestore.ms))} s (${stepLine(r.manualRestore.steps)})`);

        await stack.waitReady();
        const verify = await stackvault(opts.cli, ['backup', 'verify', id, '--dir', backups, '--deep', '--json']);
        const notOk = Object.entries(verify.json.services).filter(([, v]) => !v.ok);
        if (notOk.length) throw new Error(`verify --deep failed: ${notOk.map(([n, v]) => `${n}: ${v.error}`).join('; ')}`);
        r.verify = { ms: verify.ms, rss: verify.rss };
        log(`  verify --deep       ${fmt(sec(verify.ms))} s, RSS ${fmt(verify.rss.rootHwmMB, 0)}/${fmt(verify.rss.treeMB, 0)} MB`);
      }
      rmSync(dir, { recursive: true, force: true });
    }

    results.finishedAt = new Date().toISOString();
    results.machine.loadAtEnd = loadavg().map((x) => Number(x.toFixed(2)));
    report(results, opts);
    if (opts.out) {
      writeFileSync(opts.out, `${JSON.stringify(results, null, 2)}\n`);
      log(`(JSON written to ${opts.out})`);
    }
    log(results.summary);
  } catch (e) {
    // Keep what was measured: a failure in the last run should not lose the others.
    if (opts.out && results.runs?.length) {
      results.failed = e.message;
      writeFileSync(opts.out, `${JSON.stringify(results, null, 2)}\n`);
      console.error(`(partial results written to ${opts.out})`);
    }
    throw e;
  } finally {
    if (!state.aborting) await cleanup();
  }
}

async function timedAsync(fn) {
  const t0 = now();
  const result = await fn();
  return [now() - t0, result];
}

const stepLine = (steps) =>
  Object.entries(steps)
    .map(([n, s]) => `${n} ${fmt(sec(s.ms))}`)
    .join(', ');
const downLine = (d) =>
  Object.entries(d)
    .map(([n, ms]) => `${n} ${fmt(sec(ms))} s`)
    .join(', ');

/** Per-service downtime and durations from `backup restore --json`, and how long its restore point took (from that backup's manifest). */
function restoreFacts(json, backups) {
  const failed = json.services.filter((s) => s.status !== 'restored');
  if (failed.length) throw new Error(`backup restore did not restore ${failed.map((s) => `${s.service} (${s.status}: ${s.error})`).join(', ')}`);
  const downtimeMs = {};
  const durationMs = {};
  for (const s of json.services) {
    durationMs[s.service] = s.durationMs;
    if (s.downtimeMs !== undefined) downtimeMs[s.service] = s.downtimeMs;
  }
  let restorePointMs;
  try {
    const m = JSON.parse(readFileSync(join(backups, json.restorePointId, 'manifest.json'), 'utf8'));
    restorePointMs = Date.parse(m.completedAt) - Date.parse(m.createdAt);
  } catch {
    // no figure
  }
  return { downtimeMs, durationMs, restorePointId: json.restorePointId, restorePointMs, checks: Object.fromEntries(json.services.map((s) => [s.service, s.check])) };
}

function report(results, opts) {
  const runs = results.runs;
  const rawMB = MB(med(runs, (r) => r.default.rawBytes));
  const row = (label, ms, bytes, rss, vsBase, vsFloor) =>
    `${label.padEnd(30)} ${fmt(sec(ms)).padStart(8)} ${fmt(ms ? rawMB / sec(ms) : undefined).padStart(7)} ${fmt(bytes === undefined ? undefined : MB(bytes)).padStart(9)} ${(rss ? `${fmt(rss[0], 0)} / ${fmt(rss[1], 0)}` : '–').padStart(11)} ${(vsBase === undefined ? '–' : `${fmt(vsBase, 2)}x`).padStart(8)}${vsFloor === null ? '' : ` ${(vsFloor === undefined ? '–' : `${fmt(vsFloor, 2)}x`).padStart(8)}`}`;

  const base = med(runs, (r) => r.baseline.ms);
  const floorMax = med(runs, (r) => r.floor.maxMs);
  const floorSum = med(runs, (r) => r.floor.sumMs);
  // Runs saved before this row existed have none.
  const floorAll = runs.every((r) => r.floorTogether) ? med(runs, (r) => r.floorTogether.ms) : undefined;
  const v = (key) => ({
    ms: med(runs, (r) => r[key].ms),
    bytes: med(runs, (r) => r[key].bytes),
    rss: [med(runs, (r) => r[key].rss.rootHwmMB), med(runs, (r) => r[key].rss.treeMB)],
    rssMax: Math.max(...runs.map((r) => r[key].rss.treeMB)),
  });
  const gz = v('gzip');
  const def = v('default');
  const defCodec = runs[0].default.compression;
  const med2 = {
    rawMB,
    baseline: { ms: base, bytes: med(runs, (r) => r.baseline.bytes) },
    gzip: gz,
    default: { ...def, compression: defCodec },
    floor: { maxMs: floorMax, sumMs: floorSum, slowest: runs.map((r) => r.floor.slowest), ...(floorAll === undefined ? {} : { allAtOnceMs: floorAll }) },
  };
  results.medians = med2;

  log(`\n=== stackvault benchmark, ${opts.sizeText} (${fmt(rawMB, 0)} MB raw), medians of ${runs.length} run${runs.length > 1 ? 's' : ''} ===`);
  log(`MB/s = the stack's raw size (${fmt(rawMB, 0)} MB, stackvault's rawBytes) / wall time. RSS = peak of the node process / of its whole process tree (MB).`);
  log(`${'backup'.padEnd(30)} ${'wall s'.padStart(8)} ${'MB/s'.padStart(7)} ${'disk MB'.padStart(9)} ${'RSS MB'.padStart(11)} ${'/base'.padStart(8)} ${'/floor'.padStart(8)}`);
  log(row('baseline (manual, sequential)', base, med2.baseline.bytes, undefined, 1, ratio(base, floorMax)));
  log(row('create --compress gzip', gz.ms, gz.bytes, gz.rss, ratio(gz.ms, base), ratio(gz.ms, floorMax)));
  log(row(`create (default: ${defCodec})`, def.ms, def.bytes, def.rss, ratio(def.ms, base), ratio(def.ms, floorMax)));
  const cons = v('consistent');
  const pausedMs = med(runs, (r) => r.consistent.consistency?.pausedMs);
  med2.consistent = { ...cons, pausedMs };
  log(row('create --consistent', cons.ms, cons.bytes, cons.rss, ratio(cons.ms, base), ratio(cons.ms, floorMax)));
  log(`  --consistent: writers paused ${fmt(sec(pausedMs), 2)} s (median), the one window in which every store fixed its point`);
  const onlinePausedMs = med(runs, (r) => r.consistentOnline.consistency?.pausedMs);
  med2.consistentOnline = { ...v('consistentOnline'), pausedMs: onlinePausedMs };
  log(`  --consistent --only postgres,redis,app (no store that is stopped): writers paused ${fmt(sec(onlinePausedMs), 2)} s (median)`);
  log(row(`floor: slowest store (${mode(med2.floor.slowest)})`, floorMax, undefined, undefined, ratio(floorMax, base), 1));
  log(row('floor: sum of stores', floorSum, undefined, undefined, ratio(floorSum, base), ratio(floorSum, floorMax)));
  if (floorAll !== undefined) log(row('floor: all stores at once', floorAll, undefined, undefined, ratio(floorAll, base), ratio(floorAll, floorMax)));

  // Where the time goes, per store.
  log("\nper store (s; raw MB from the default-codec manifest; create = the service's own duration while all run at once)");
  log(
    `${'store'.padEnd(9)} ${'raw MB'.padStart(8)} ${'baseline'.padStart(9)} ${'gzip'.padStart(7)} ${'gzip MB'.padStart(8)} ${'default'.padStart(8)} ${'def MB'.padStart(8)} ${'floor'.padStart(7)} ${'floor MB/s'.padStart(10)}`,
  );
  for (const s of SERVICES) {
    const fl = med(runs, (r) => r.floor.steps[s].ms);
    log(
      `${s.padEnd(9)} ${fmt(MB(med(runs, (r) => r.default.services[s].rawBytes))).padStart(8)} ${fmt(sec(med(runs, (r) => r.baseline.steps[s].ms))).padStart(9)} ${fmt(sec(med(runs, (r) => r.gzip.services[s].durationMs))).padStart(7)} ${fmt(MB(med(runs, (r) => r.gzip.services[s].bytes))).padStart(8)} ${fmt(sec(med(runs, (r) => r.default.services[s].durationMs))).padStart(8)} ${fmt(MB(med(runs, (r) => r.default.services[s].bytes))).padStart(8)} ${fmt(sec(fl)).padStart(7)} ${fmt(MB(med(runs, (r) => r.floor.steps[s].bytes)) / sec(fl)).padStart(10)}`,
    );
  }
  log(
    `  baseline details: pg_dumpall ${fmt(sec(med(runs, (r) => r.baseline.steps.postgres.dumpMs)))} s + gzip -6 ${fmt(sec(med(runs, (r) => r.baseline.steps.postgres.gzipMs)))} s; redis BGSAVE ${fmt(sec(med(runs, (r) => r.baseline.steps.redis.bgsaveMs)))} s + docker cp ${fmt(sec(med(runs, (r) => r.baseline.steps.redis.copyMs)))} s; SQLite by ${results.baselineSqliteTool}`,
  );
  log(
    `  floor details: redis = BGSAVE ${fmt(sec(med(runs, (r) => r.floor.steps.redis.bgsaveMs)))} s + RDB copy ${fmt(sec(med(runs, (r) => r.floor.steps.redis.copyMs)))} s; chroma/neo4j copied stopped (copy only counted); app = hot docker cp of /app/data`,
  );

  // Downtime.
  const down = (pick) => Object.fromEntries(SERVICES.map((s) => [s, med(runs, (r) => pick(r)?.[s])]));
  const plain = down((r) => ({ chroma: r.floor.steps.chroma.stopCopyStartMs, neo4j: r.floor.steps.neo4j.stopCopyStartMs }));
  const rows = [
    ['baseline: stop, tar czf, start', down((r) => r.baseline.downtimeMs)],
    ['plain stop, copy (no gzip), start', plain],
    ['create --compress gzip', down((r) => svcDown(r.gzip))],
    [`create (default: ${defCodec})`, down((r) => svcDown(r.default))],
  ];
  if (opts.restore) rows.push(['restore (stackvault)', down((r) => r.restore.downtimeMs)], ['restore (manual)', down((r) => r.manualRestore.downtimeMs)]);
  log('\ndowntime per service, s (stop or pause until it runs again; app = paused by stackvault, stopped for restores)');
  log(`${''.padEnd(34)} ${SERVICES.map((s) => s.padStart(9)).join('')}`);
  for (const [label, d] of rows) log(`${label.padEnd(34)} ${SERVICES.map((s) => fmt(d[s] === undefined ? undefined : sec(d[s]), 2).padStart(9)).join('')}`);
  med2.downtime = Object.fromEntries(rows.map(([l, d]) => [l, d]));

  let rs;
  if (opts.restore) {
    rs = {
      ms: med(runs, (r) => r.restore.ms),
      manualMs: med(runs, (r) => r.manualRestore.ms),
      verifyMs: med(runs, (r) => r.verify.ms),
      rss: [med(runs, (r) => r.restore.rss.rootHwmMB), med(runs, (r) => r.restore.rss.treeMB)],
      verifyRss: [med(runs, (r) => r.verify.rss.rootHwmMB), med(runs, (r) => r.verify.rss.treeMB)],
    };
    med2.restore = rs;
    log(`\n${'restore / verify'.padEnd(30)} ${'wall s'.padStart(8)} ${'MB/s'.padStart(7)} ${''.padStart(9)} ${'RSS MB'.padStart(11)} ${'/manual'.padStart(8)}`);
    log(row('restore (stackvault)', rs.ms, undefined, rs.rss, ratio(rs.ms, rs.manualMs), null));
    log(row('restore (manual, sequential)', rs.manualMs, undefined, undefined, 1, null));
    log(row('verify --deep', rs.verifyMs, undefined, rs.verifyRss, ratio(rs.verifyMs, rs.manualMs), null));
    log(
      `  stackvault's restore: restore point ${fmt(sec(med(runs, (r) => r.restore.restorePointMs)))} s of it; per service ${downLine(Object.fromEntries(SERVICES.map((s) => [s, med(runs, (r) => r.restore.durationMs[s])])))}`,
    );
    log(`  stackvault's restore includes its restore point (a backup of the same services) and the content check; the manual one checks nothing.`);
  }

  // Targets (issue 11): printed, never asserted.
  const peaks = runs.flatMap((r) => [
    ['create --compress gzip', r.gzip.rss.treeMB],
    ['create', r.default.rss.treeMB],
    ...(opts.restore
      ? [
          ['restore', r.restore.rss.treeMB],
          ['verify --deep', r.verify.rss.treeMB],
        ]
      : []),
  ]);
  const [peakCmd, peakRss] = peaks.sort((a, b) => b[1] - a[1])[0];
  const baseDown = plain;
  const targets = [
    ['create --compress gzip <= 0.6x baseline', ratio(gz.ms, base), (x) => x <= 0.6, (x) => `${fmt(x, 2)}x`],
    [
      'create (default) <= 1.3x floor (slowest store)',
      ratio(def.ms, floorMax),
      (x) => x <= 1.3,
      (x) => `${fmt(x, 2)}x${floorAll === undefined ? '' : `; the raw copies alone, all at once, take ${fmt(ratio(floorAll, floorMax), 2)}x`}`,
    ],
    ['create (default) output <= baseline output', ratio(def.bytes, med2.baseline.bytes), (x) => x <= 1, (x) => `${fmt(x, 2)}x: ${fmt(MB(def.bytes), 0)} vs ${fmt(MB(med2.baseline.bytes), 0)} MB`],
    ['peak RSS <= 120 MB (process tree, any command, any run)', peakRss, (x) => x <= 120, (x) => `${fmt(x, 0)} MB (${peakCmd})`],
    ['create --consistent: writers paused <= 2 s (issue 14, at 1 GB)', sec(pausedMs), (x) => x <= 2, (x) => `${fmt(x, 2)} s`],
    ['create --consistent without Chroma/Neo4j: writers paused <= 0.2 s (issue 14)', sec(onlinePausedMs), (x) => x <= 0.2, (x) => `${fmt(x, 2)} s`],
    ...(opts.restore ? [['restore <= 0.7x sequential restore', ratio(rs.ms, rs.manualMs), (x) => x <= 0.7, (x) => `${fmt(x, 2)}x`]] : []),
    ...['chroma', 'neo4j'].flatMap((s) =>
      ['gzip', 'default'].map((k) => {
        const d = down((r) => svcDown(r[k]))[s];
        return [`${s} downtime (${k}) <= 10% of plain stop-and-copy`, ratio(d, baseDown[s]), (x) => x <= 0.1, (x) => `${fmt(100 * x, 0)}% (${fmt(sec(d), 2)} of ${fmt(sec(baseDown[s]), 2)} s)`];
      }),
    ),
  ];
  if (opts.rssAgainst) {
    // Another run (its --out) at another size: is the peak flat as the data grows?
    const other = opts.rssAgainst;
    const { changes, worst } = rssAcrossSizes(med2, other.medians);
    const pct = (x) => `${x >= 0 ? '+' : ''}${fmt(100 * x, 0)}%`;
    targets.push([`peak RSS within 10% of the ${other.options?.size ?? '?'} run's`, worst, (x) => x <= 0.1, () => changes.map((c) => `${c.command} ${pct(c.change)}`).join(', ')]);
  }
  log('\ntargets (issue 11)');
  results.targets = targets.map(([name, value, ok, show]) => {
    const met = value !== undefined && ok(value);
    log(`  ${met ? 'met    ' : 'NOT met'}  ${name.padEnd(50)} ${value === undefined ? '–' : show(value)}`);
    return { name, value, met };
  });

  const m = results.machine;
  log(
    `\nmachine: ${m.cores} cores (${m.cpu}), ${m.ramGiB} GiB RAM, kernel ${m.kernel}, Docker ${m.docker}, Node ${m.node}; stackvault ${m.stackvaultCommit}; load average at start ${m.loadAtStart.join(' ')}, at end ${m.loadAtEnd?.join(' ') ?? '–'}`,
  );
  log(
    `seeding: ${fmt(results.seed.seconds)} s (${Object.entries(results.seed.perStore)
      .map(([k, s]) => `${k} ${fmt(s)} s`)
      .join(', ')})`,
  );
  const met = results.targets.filter((t) => t.met).length;
  results.summary = `summary: ${opts.sizeText} (${fmt(rawMB, 0)} MB raw), median of ${runs.length}: baseline ${fmt(sec(base))} s, create gzip ${fmt(sec(gz.ms))} s (${fmt(ratio(gz.ms, base), 2)}x), create (default: ${defCodec}) ${fmt(sec(def.ms))} s (${fmt(ratio(def.ms, floorMax), 2)}x floor ${fmt(sec(floorMax))} s), ${
    opts.restore ? `restore ${fmt(sec(rs.ms))} s vs manual ${fmt(sec(rs.manualMs))} s (${fmt(ratio(rs.ms, rs.manualMs), 2)}x), verify --deep ${fmt(sec(rs.verifyMs))} s, ` : ''
  }peak RSS ${fmt(peakRss, 0)} MB (${peakCmd}); targets met ${met}/${results.targets.length}`;
}

const svcDown = (b) => Object.fromEntries(Object.entries(b.services).map(([n, s]) => [n, s.downtimeMs]));
const mode = (xs) => {
  const c = new Map();
  for (const x of xs) c.set(x, (c.get(x) ?? 0) + 1);
  return [...c].sort((a, b) => b[1] - a[1])[0][0];
};

main().catch((e) => {
  if (state.aborting) return;
  console.error(`\nbenchmark FAILED: ${e.stack ?? e.message}`);
  process.exitCode = 1;
});
