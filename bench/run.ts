/**
 * `npm run bench [-- --quick] [-- --no-mitm] [-- --cpu-prof]`: authsome against a direct connection
 * (and mitmproxy when `mitmdump` is on PATH), all on loopback, in one run. See docs/performance.md.
 *
 *   --quick     ~1 minute: fewer and shorter rounds, 4 new hosts instead of 8
 *   --no-mitm   skip the mitmproxy column even when mitmdump is installed
 *   --cpu-prof  run the daemon under `node --cpu-prof`, load HTTPS c=16 only, print its hot spots
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { installCleanup } from './children.js';
import { client } from './clients.js';
import { REPO } from './daemon.js';
import { request, runLoad } from './load.js';
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
import { log, MAIN_HOST, RESULTS, setup, type Bench } from './setup.js';

installCleanup();

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const NO_MITM = argv.includes('--no-mitm');
const CPU_PROF = argv.includes('--cpu-prof');
const unknown = argv.filter((a) => !['--quick', '--no-mitm', '--cpu-prof'].includes(a));
if (unknown.length > 0) {
  console.error(`bench: unknown option(s) ${unknown.join(' ')}; use --quick, --no-mitm, --cpu-prof`);
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
