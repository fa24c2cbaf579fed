/**
 * `npm run bench [-- --quick] [-- --no-mitm] [-- --cpu-prof]`: authsome against a direct connection
 * (and mitmproxy when `mitmdump` is on PATH), all on loopback, in one run. See docs/performance.md.
 *
 *   --quick     ~1 minute: fewer and shorter rounds, 4 new hosts instead of 8
 *   --no-mitm   skip the mitmproxy column even when mitmdump is installed
 *   --cpu-prof[=https:16]  run the daemon under `node --cpu-prof`, load one scheme and concurrency
 *                          through it, print its hot spots (bench/results/profile-<scheme>-c<N>.txt)
 *   --focus[=https:16]     only direct vs authsome (+ references) at one scheme and concurrency
 *   --focus=bodies         only the 10 MiB download/upload phase (MiB/s, proxy CPU per MiB, RSS at c=8)
 */
import { execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { installCleanup, spawnTracked } from './children.js';
import { alternate, client, medianRatio } from './clients.js';
import { REPO } from './daemon.js';
import { cpuPerRequest, request, runLoad, type RunStats } from './load.js';
import { mitmdumpPath, startMitm, type Mitm } from './mitm.js';
import { baseColumns, firstRequest, jitWarm, matrix, sanity, sse, type Cfg } from './phases.js';
import { auditCost, bodies, held, runTrue } from './phases-resources.js';
import { format, targets, type Result } from './print.js';
import { formatSummary, summarizeProfile } from './profile-summary.js';
import { f0, f2, f3, table } from './report.js';
import { HTTP_HOST, log, MAIN_HOST, RESULTS, setup, type Bench } from './setup.js';

installCleanup();

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const NO_MITM = argv.includes('--no-mitm');
const valued = (name: string): string | undefined => {
  const a = argv.find((x) => x === name || x.startsWith(`${name}=`));
  return a === undefined ? undefined : a === name ? 'https:16' : a.slice(name.length + 1);
};
const CPU_PROF = valued('--cpu-prof');
const FOCUS = valued('--focus');
const unknown = argv.filter(
  (a) => !['--quick', '--no-mitm'].includes(a) && !/^--(cpu-prof|focus)(=|$)/.test(a),
);
const badValue = (v: string | undefined): boolean => v !== undefined && !/^https?:\d+$/.test(v);
if (unknown.length > 0 || badValue(CPU_PROF) || (FOCUS !== 'bodies' && badValue(FOCUS))) {
  console.error(
    `bench: bad option in "${argv.join(' ')}"; use --quick, --no-mitm, --cpu-prof[=https:16], --focus[=https:16|bodies]`,
  );
  process.exit(2);
}

/** Run lengths: --quick is about a minute, the full run under five (on an idle 2-core machine). */
const CFG: Cfg = QUICK
  ? {
      rounds: 2,
      warmMs: 200,
      durMs: 600,
      bodyMs: 1200,
      rssMs: 1500,
      auditRounds: 3,
      auditMs: 600,
      auditC1: false,
      runSamples: 5,
      extrasEverywhere: false,
      newHosts: 4,
      held: 1000,
      profMs: 6000,
    }
  : {
      rounds: 3,
      warmMs: 400,
      durMs: 1500,
      bodyMs: 3000,
      rssMs: 3000,
      auditRounds: 5,
      auditMs: 1000,
      auditC1: true,
      runSamples: 11,
      extrasEverywhere: true,
      newHosts: 8,
      held: 1000,
      profMs: 15000,
    };
const PROFILES = join(RESULTS, 'profiles');

function gitInfo(): { commit: string; dirtySrc: boolean } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: REPO,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain', '--', 'src'], {
        cwd: REPO,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim() !== '';
    return { commit, dirtySrc: dirty };
  } catch {
    return { commit: 'unknown', dirtySrc: false };
  }
}

/** The daemon under --cpu-prof, load through it (HTTPS c=16 by default), then its hot spots. */
async function cpuProfile(b: Bench, what: string): Promise<void> {
  const [scheme, c] = what.split(':') as ['http' | 'https', string];
  await sanity(b);
  await jitWarm(b, 1000);
  log(`bench: profiling the daemon under ${scheme} c=${c} for ${CFG.profMs / 1000} s`);
  const { d, spec } = client(b, scheme, 'authsome', scheme === 'https' ? MAIN_HOST : HTTP_HOST, '/json');
  const from = Number(process.hrtime.bigint() / 1000n);
  const s = await runLoad({
    concurrency: Number(c),
    warmupMs: 0,
    durationMs: CFG.profMs,
    once: () => request(d, spec),
  });
  const to = Number(process.hrtime.bigint() / 1000n);
  await d.close();
  const before = new Set(readdirSync(PROFILES));
  await b.daemon.stop();
  const file = readdirSync(PROFILES).find((f) => f.endsWith('.cpuprofile') && !before.has(f));
  if (!file) throw new Error(`no .cpuprofile appeared in ${PROFILES}`);
  const summary = summarizeProfile(join(PROFILES, file), 30, [from, to]);
  const text = `${scheme.toUpperCase()} c=${c} through authsome: ${f0(s.rps)} req/s, p50 ${f2(s.p50)} ms, ${s.errors} errors; other load ${f0(s.cpu?.foreignPct)}%\nprofile: bench/results/profiles/${file}\n\n${formatSummary(summary)}\n`;
  writeFileSync(join(RESULTS, `profile-${scheme}-c${c}.txt`), text);
  console.log(text);
}

/**
 * `--focus=https:16` (or http:N): direct vs authsome at one scheme and concurrency, 6 rounds, for
 * A/B-ing a change in src/ in about a minute. Reference columns: a minimal Node proxy
 * (bench/reference-mitm.ts: for https a MITM that only adds the header, for http a plain forwarder),
 * i.e. what any Node proxy pays before authsome's own work; and for https a plain CONNECT tunnel
 * through the same daemon (no interception).
 */
async function focus(b: Bench, what: string): Promise<void> {
  const [scheme, c] = what.split(':') as ['http' | 'https', string];
  await sanity(b);
  await jitWarm(b, 1000);
  const host = scheme === 'https' ? MAIN_HOST : HTTP_HOST;
  const cols = baseColumns(b, scheme);
  const ref = spawnTracked(
    process.execPath,
    [
      join(REPO, 'dist/bench/reference-mitm.js'),
      b.originCfgPath,
      b.originCaFile,
      String(b.origin.httpPort),
      String(b.origin.httpsPort),
      b.main.header,
      b.main.value,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const line = await new Promise<string>((resolve) =>
    createInterface({ input: ref.stdout! }).once('line', resolve),
  );
  const port = (JSON.parse(line) as { port: number }).port;
  cols.push({
    name: 'reference-mitm',
    make: () => client(b, scheme, 'reference-mitm', host, '/json', { proxyPort: port }),
    proxyPid: ref.pid!,
  });
  const r = await alternate(b, scheme.toUpperCase(), scheme, cols, Number(c), QUICK ? 3 : 6, 300, 1500);
  ref.stdin?.end();
  const rows = Object.entries(r.columns).map(([name, s]) => {
    const cpu = cpuPerRequest(s) ?? {};
    return [
      name,
      f0(s.rps),
      f2(s.p50),
      f2(s.p99),
      name === 'direct' ? '1' : f3(medianRatio(r, name)),
      f0(cpu['client']),
      f0(cpu['origin']),
      f0(cpu['proxy']),
      `${f0(s.cpu?.foreignPct)}%`,
    ];
  });
  console.log(
    `${scheme} c=${c}, ${QUICK ? 3 : 6} rounds (ratio = median of per-round ratios; CPU in microseconds per request)\n${table(
      [
        ['', 'req/s', 'p50 ms', 'p99 ms', 'ratio', 'client CPU', 'origin CPU', 'proxy CPU', 'other load'],
        ...rows,
      ],
    )}${b.problems.length ? `\nPROBLEMS:\n${b.problems.map((p) => `  - ${p}`).join('\n')}` : ''}`,
  );
  await b.daemon.stop();
}

/** `--focus=bodies`: the 10 MiB phase alone, to A/B the body relay (see bodies() for what it runs). */
async function focusBodies(b: Bench): Promise<void> {
  await sanity(b);
  await jitWarm(b, 500);
  const r = await bodies(b, CFG);
  const cpuPerMiB = (s: RunStats): string => {
    const cpu = cpuPerRequest(s)?.['proxy'];
    return cpu === undefined ? '-' : f0(cpu / 10);
  };
  const row = (kind: 'download' | 'upload'): string[] => {
    const t = r[kind];
    const c8 = r.rssC8[kind];
    return [
      kind,
      f0(t.directMiBs),
      f0(t.authsomeMiBs),
      f3(t.ratio),
      cpuPerMiB(t.authsome),
      f2(c8.growthMB),
      f0(c8.MiBs),
    ];
  };
  console.log(
    `10 MiB bodies over HTTPS, c=1 alternating direct/authsome (proxy CPU in microseconds per MiB), then c=8 through authsome\n${table(
      [
        ['', 'direct MiB/s', 'authsome MiB/s', 'ratio', 'proxy CPU us/MiB', 'RSS growth c=8 MB', 'c=8 MiB/s'],
        row('download'),
        row('upload'),
      ],
    )}${b.problems.length ? `\nPROBLEMS:\n${b.problems.map((p) => `  - ${p}`).join('\n')}` : ''}`,
  );
  await b.daemon.stop();
}

async function full(b: Bench): Promise<void> {
  const t0 = performance.now();
  const loadavgAtStart = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  let mitm: Mitm | undefined;
  let mitmNote = 'skipped: mitmdump is not on PATH';
  if (NO_MITM) mitmNote = 'skipped: --no-mitm';
  else if (mitmdumpPath()) {
    try {
      mitm = await startMitm(b.dir, b.origin.httpsPort, b.main.value, b.originCaFile);
      mitmNote = mitm.version;
    } catch (e) {
      mitmNote = `skipped: ${(e as Error).message}`;
    }
  }
  await sanity(b);
  await jitWarm(b, QUICK ? 500 : 1500);
  const first = await firstRequest(b);
  const http = await matrix(b, CFG, 'http', undefined);
  const https = await matrix(b, CFG, 'https', mitm);
  await mitm?.stop();
  const sseResult = await sse(b);
  const body = await bodies(b, CFG);
  const audit = await auditCost(b, CFG);
  const heldResult = await held(b, CFG);
  const run = await runTrue(b, CFG);
  await b.daemon.stop();

  const git = gitInfo();
  const partial = {
    http,
    https,
    firstRequest: first,
    sse: sseResult,
    bodies: body,
    audit,
    held: heldResult,
    runTrue: run,
    problems: b.problems,
  };
  const result: Result = {
    meta: {
      date: new Date().toISOString(),
      mode: QUICK ? 'quick' : 'full',
      node: process.version,
      cpus: `${cpus().length} x ${cpus()[0]?.model.trim() ?? '?'}`,
      git: git.commit,
      srcModifiedSinceCommit: git.dirtySrc,
      homeFs: b.homeFs,
      mitmproxy: mitmNote,
      loadavgAtStart,
      seconds: (performance.now() - t0) / 1000,
    },
    targets: targets(partial, mitmNote),
    ...partial,
  };
  mkdirSync(RESULTS, { recursive: true });
  const json = JSON.stringify(
    { ...result, config: CFG },
    (k, v: unknown) => (k === 'samples' && v instanceof Float64Array ? undefined : v),
    2,
  );
  writeFileSync(join(RESULTS, 'latest.json'), `${json}\n`);
  console.log(format(result));
  if (b.problems.length) process.exitCode = 1;
}

let bench: Bench | undefined;
try {
  if (CPU_PROF) mkdirSync(PROFILES, { recursive: true });
  bench = await setup({
    quick: QUICK,
    newHosts: CFG.newHosts,
    daemonNodeArgs: CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', PROFILES, '--cpu-prof-interval', '250'] : [],
  });
  if (CPU_PROF) await cpuProfile(bench, CPU_PROF);
  else if (FOCUS === 'bodies') await focusBodies(bench);
  else if (FOCUS) await focus(bench, FOCUS);
  else await full(bench);
} catch (e) {
  console.error('bench failed:', e);
  process.exitCode = 1;
} finally {
  await bench?.daemon.stop().catch(() => undefined);
  await bench?.origin.stop().catch(() => undefined);
}
// Closed dispatchers may still hold sockets for a moment; exiting runs the cleanup ('exit' handler).
process.exit();
