/**
 * `npm run bench [-- --quick] [-- --no-mitm] [-- --cpu-prof]`: authsome against a direct connection
 * (and mitmproxy when `mitmdump` is on PATH), all on loopback, in one run. See docs/performance.md.
 *
 *   --quick     ~1 minute: fewer and shorter rounds, 4 new hosts instead of 8
 *   --no-mitm   skip the mitmproxy column even when mitmdump is installed
 *   --cpu-prof  run the daemon under `node --cpu-prof`, load HTTPS c=16 only, print its hot spots
 *   --focus=https:16  only direct vs authsome at one scheme and concurrency (A/B a change quickly)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { installCleanup } from './children.js';
import { alternate, client, medianRatio, type Column } from './clients.js';
import { REPO } from './daemon.js';
import { cpuPerRequest, request, runLoad, type RunStats } from './load.js';
import { mitmdumpPath, startMitm, type Mitm } from './mitm.js';
import {
  auditCost,
  bodies,
  firstRequest,
  held,
  jitWarm,
  matrix,
  runTrue,
  sanity,
  sse,
  type Cfg,
} from './phases.js';
import { format, targets, type Result } from './print.js';
import { formatSummary, summarizeProfile } from './profile-summary.js';
import { f0, f2 } from './report.js';
import { HTTP_HOST, log, MAIN_HOST, RESULTS, setup, type Bench } from './setup.js';

installCleanup();

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const NO_MITM = argv.includes('--no-mitm');
const CPU_PROF = argv.includes('--cpu-prof');
const FOCUS = argv.find((a) => a.startsWith('--focus='))?.slice('--focus='.length);
const unknown = argv.filter(
  (a) => !['--quick', '--no-mitm', '--cpu-prof'].includes(a) && !a.startsWith('--focus='),
);
if (unknown.length > 0 || (FOCUS !== undefined && !/^https?:\d+$/.test(FOCUS))) {
  console.error(
    `bench: unknown option(s) ${unknown.join(' ')}; use --quick, --no-mitm, --cpu-prof, --focus=https:16`,
  );
  process.exit(2);
}

const CFG: Cfg = QUICK
  ? {
      rounds: 2,
      warmMs: 250,
      durMs: 800,
      bodyMs: 1500,
      rssMs: 2000,
      auditRounds: 2,
      auditC1: false,
      runSamples: 5,
      newHosts: 4,
      held: 1000,
      profMs: 6000,
    }
  : {
      rounds: 4,
      warmMs: 400,
      durMs: 2000,
      bodyMs: 4000,
      rssMs: 4000,
      auditRounds: 4,
      auditC1: true,
      runSamples: 11,
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

/** The daemon under --cpu-prof, HTTPS c=16 through it, then its hot spots. */
async function cpuProfile(b: Bench): Promise<void> {
  await sanity(b);
  await jitWarm(b, 1000);
  log(`bench: profiling the daemon under HTTPS c=16 for ${CFG.profMs / 1000} s`);
  const { d, spec } = client(b, 'https', 'authsome', MAIN_HOST, '/json');
  const from = Number(process.hrtime.bigint() / 1000n);
  const s = await runLoad({
    concurrency: 16,
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
  const text = `HTTPS c=16 through authsome: ${f0(s.rps)} req/s, p50 ${f2(s.p50)} ms, ${s.errors} errors; other load ${f0(s.cpu?.foreignPct)}%\nprofile: bench/results/profiles/${file}\n\n${formatSummary(summary)}\n`;
  writeFileSync(join(RESULTS, 'profile-https-c16.txt'), text);
  console.log(text);
}

/**
 * `--focus=https:16` (or http:N): only direct vs authsome at one concurrency, 6 rounds, for A/B-ing a
 * change in src/ in about half a minute. Prints req/s, the ratio and the CPU per request.
 */
async function focus(b: Bench, what: string): Promise<void> {
  const [scheme, c] = what.split(':') as ['http' | 'https', string];
  await sanity(b);
  await jitWarm(b, 1000);
  const host = scheme === 'https' ? MAIN_HOST : HTTP_HOST;
  const cols: Column[] = [
    { name: 'direct', make: () => client(b, scheme, 'direct', host, '/json') },
    { name: 'authsome', make: () => client(b, scheme, 'authsome', host, '/json'), proxyPid: b.daemon.pid },
  ];
  const r = await alternate(b, scheme.toUpperCase(), scheme, cols, Number(c), QUICK ? 3 : 6, 300, 1500);
  const d = r.columns['direct']!;
  const a = r.columns['authsome']!;
  const cpu = (s: RunStats): string =>
    Object.entries(cpuPerRequest(s) ?? {})
      .map(([k, v]) => `${k} ${f0(v)}`)
      .join(', ');
  console.log(
    [
      `${scheme} c=${c}: direct ${f0(d.rps)} req/s p50 ${f2(d.p50)} ms | authsome ${f0(a.rps)} req/s p50 ${f2(a.p50)} ms | ratio ${f2(medianRatio(r, 'authsome'))} (rounds ${r.roundRatios['authsome']!.map(f2).join(' ')})`,
      `CPU us/request: direct: ${cpu(d)}; authsome: ${cpu(a)}; other load ${f0(Math.max(d.cpu?.foreignPct ?? 0, a.cpu?.foreignPct ?? 0))}%`,
      ...(b.problems.length ? ['PROBLEMS:', ...b.problems] : []),
    ].join('\n'),
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
  if (CPU_PROF) await cpuProfile(bench);
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
