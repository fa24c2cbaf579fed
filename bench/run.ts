/**
 * `npm run bench [-- --quick] [-- --no-mitm] [-- --cpu-prof]`: authsome against a direct connection
 * (and mitmproxy when `mitmdump` is on PATH), on loopback, in one run. See docs/performance.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import { Pool, ProxyAgent, request as undiciRequest, type Dispatcher } from 'undici';
import { installCleanup, spawnTracked, stopChild, trackDir } from './children.js';
import { makeOriginCerts } from './certs.js';
import { cli, cliOk, memOf, readDaemonInfo, REPO, sampleRss, serveDaemon, stopBackgroundDaemon, trackPidOf, type Daemon } from './daemon.js';
import { holdConnections, type HeldResult } from './held.js';
import { median, mergeRuns, request, runLoad, type RequestSpec, type RunStats } from './load.js';
import { mitmdumpPath, startMitm, type Mitm } from './mitm.js';
import type { OriginConfig, OriginStats } from './origin.js';
import { formatSummary, summarizeProfile } from './profile-summary.js';
import { f0, f1, f2, f3, table } from './report.js';

installCleanup();

// ---------------------------------------------------------------- options

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const NO_MITM = argv.includes('--no-mitm');
const CPU_PROF = argv.includes('--cpu-prof');
const unknown = argv.filter((a) => !['--quick', '--no-mitm', '--cpu-prof'].includes(a));
if (unknown.length > 0) {
  console.error(`bench: unknown option(s) ${unknown.join(' ')}; use --quick, --no-mitm, --cpu-prof`);
  process.exit(2);
}

const CFG = QUICK
  ? { rounds: 2, warmMs: 250, durMs: 800, bodyMs: 1500, rssMs: 2000, auditRounds: 2, auditC1: false, runSamples: 5, newHosts: 4, held: 1000, profMs: 6000 }
  : { rounds: 3, warmMs: 500, durMs: 3000, bodyMs: 4000, rssMs: 5000, auditRounds: 3, auditC1: true, runSamples: 11, newHosts: 8, held: 1000, profMs: 15000 };
const CONCURRENCY = [1, 16, 64];
const LARGE = 10 * 1024 * 1024;
const MAIN_HOST = 'api.openai.com';
const HTTP_HOST = 'http.bench.test';
/** Providers with one field and one header, for the first-request-to-a-new-host measurement. */
const NEW_HOST_PROVIDERS = ['anthropic', 'mistral', 'groq', 'deepseek', 'cerebras', 'fireworks', 'perplexity', 'xai'];
const RESULTS = join(REPO, 'bench/results');

const problems: string[] = [];
const log = (s: string): void => void process.stderr.write(`${s}\n`);

// ---------------------------------------------------------------- setup

interface Provider {
  name: string;
  host: string;
  header: string;
  value: string;
  key: string;
}

function provider(name: string): Provider {
  const def = JSON.parse(readFileSync(join(REPO, 'config/providers', `${name}.json`), 'utf8')) as {
    hosts: Array<{ host: string }>;
    fields: string[];
    inject: Array<{ type: string; name: string; template: string }>;
  };
  const inj = def.inject[0]!;
  if (def.fields.length !== 1 || def.inject.length !== 1 || inj.type !== 'header') throw new TypeError(`provider ${name} is not a one-header provider`);
  const key = `sk-bench-${name}-${randomBytes(12).toString('hex')}`;
  return { name, host: def.hosts[0]!.host, header: inj.name.toLowerCase(), value: inj.template.replace(`{{${def.fields[0]}}}`, key), key };
}

function fsTypeOf(dir: string): string {
  let best = '';
  let type = 'unknown';
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [, mnt, t] = line.split(' ');
    if (mnt && t && (dir === mnt || dir.startsWith(mnt.endsWith('/') ? mnt : `${mnt}/`)) && mnt.length > best.length) {
      best = mnt;
      type = t;
    }
  }
  return type;
}

interface Origin {
  httpPort: number;
  httpsPort: number;
  stop(): Promise<void>;
}

async function startOrigin(cfgPath: string): Promise<Origin> {
  const child = spawnTracked(process.execPath, [join(REPO, 'dist/bench/origin.js'), cfgPath], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await Promise.race([
    new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve)),
    sleep(15_000).then(() => {
      throw new Error('origin did not start');
    }),
  ]);
  const { httpPort, httpsPort } = JSON.parse(line) as { httpPort: number; httpsPort: number };
  return {
    httpPort,
    httpsPort,
    stop: async () => {
      child.stdin!.end();
      await stopChild(child, 2000);
    },
  };
}

const setupStart = performance.now();
const providers = [provider('openai'), ...NEW_HOST_PROVIDERS.slice(0, QUICK ? CFG.newHosts : NEW_HOST_PROVIDERS.length).map(provider)];
const main = providers[0]!;
const newHosts = providers.slice(1, 1 + CFG.newHosts);

let base = tmpdir();
if (fsTypeOf(base) === 'tmpfs') {
  base = join(RESULTS, 'tmp');
  mkdirSync(base, { recursive: true });
}
const dir = mkdtempSync(join(base, 'authsome-bench-'));
trackDir(dir);
const homeFs = fsTypeOf(dir);

const certs = await makeOriginCerts([...providers.map((p) => p.host), HTTP_HOST]);
const originCaFile = join(dir, 'origin-ca.pem');
writeFileSync(originCaFile, certs.caPem);
const originCfg: OriginConfig = {
  certPem: certs.certPem,
  keyPem: certs.keyPem,
  expect: Object.fromEntries(providers.map((p) => [p.host, { header: p.header, value: p.value }])),
  largeBytes: LARGE,
};
const originCfgPath = join(dir, 'origin.json');
writeFileSync(originCfgPath, JSON.stringify(originCfg), { mode: 0o600 });
const origin = await startOrigin(originCfgPath);

const cleanEnv: NodeJS.ProcessEnv = { ...process.env };
for (const k of Object.keys(cleanEnv)) if (/^(https?|no|all)_proxy$/i.test(k) || k === 'NODE_OPTIONS') delete cleanEnv[k];
const envFor = (home: string): NodeJS.ProcessEnv => ({
  ...cleanEnv,
  AUTHSOME_HOME: home,
  AUTHSOME_DAEMON_PORT: '0',
  AUTHSOME_PROXY_PORT: '0',
  NO_COLOR: '1',
  AUTHSOME_RESOLVE: [...providers.map((p) => `${p.host}:443=127.0.0.1:${origin.httpsPort}`), `${HTTP_HOST}:80=127.0.0.1:${origin.httpPort}`].join(','),
  AUTHSOME_UPSTREAM_CA: originCaFile,
});
const diskHome = join(dir, 'home');
const env = envFor(diskHome);

log(`bench: ${QUICK ? 'quick' : 'full'} run; home ${diskHome} (${homeFs}); origin http :${origin.httpPort} https :${origin.httpsPort}`);
await cliOk(env, ['init', '--profile', 'bench']);
trackPidOf(diskHome);
await Promise.all(providers.map((p) => cliOk(env, ['login', p.name], `${p.key}\n`)));
const sessionEnv = JSON.parse((await cliOk(env, ['proxy', 'env', '--json', '--ttl', '12h'])).stdout) as { env: Record<string, string> };
const proxyUrl = new URL(sessionEnv.env['HTTPS_PROXY']!);
const basic = `Basic ${Buffer.from(`${decodeURIComponent(proxyUrl.username)}:${decodeURIComponent(proxyUrl.password)}`).toString('base64')}`;
await stopBackgroundDaemon(diskHome);
const authsomeCa = readFileSync(join(diskHome, 'server/ca/ca.pem'), 'utf8');

const profDir = join(RESULTS, 'profiles');
if (CPU_PROF) mkdirSync(profDir, { recursive: true });
const daemon: Daemon = await serveDaemon(env, CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-interval', '250'] : []);
log(`bench: daemon pid ${daemon.pid}, proxy :${daemon.proxyPort}; setup ${((performance.now() - setupStart) / 1000).toFixed(1)} s`);

// ---------------------------------------------------------------- clients

const COMMON = { keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 60_000 };

async function originStats(reset: boolean): Promise<OriginStats> {
  const r = await undiciRequest(`http://127.0.0.1:${origin.httpPort}/__stats${reset ? '?reset=1' : ''}`);
  return (await r.body.json()) as OriginStats;
}

type Scheme = 'http' | 'https';
type Via = 'direct' | 'authsome' | 'mitmproxy' | 'authsome-tmpfs';

interface Client {
  d: Dispatcher;
  spec: RequestSpec;
}

function client(scheme: Scheme, via: Via, host: string, path: string, opts: { proxyPort?: number; mitm?: Mitm } = {}): Client {
  const p = providers.find((x) => x.host === host);
  if (scheme === 'http') {
    if (via === 'direct') {
      const o = `http://127.0.0.1:${origin.httpPort}`;
      return { d: new Pool(o, COMMON), spec: { origin: o, path, headers: { host } } };
    }
    const o = `http://127.0.0.1:${opts.proxyPort ?? daemon.proxyPort}`;
    return { d: new Pool(o, COMMON), spec: { origin: o, path: `http://${host}${path}`, headers: { host, 'proxy-authorization': basic } } };
  }
  if (via === 'direct') {
    const o = `https://127.0.0.1:${origin.httpsPort}`;
    const d = new Pool(o, { ...COMMON, connect: { ca: certs.caPem, servername: host } });
    return { d, spec: { origin: o, path, headers: { host, ...(p ? { [p.header]: p.value } : {}) } } };
  }
  if (via === 'mitmproxy') {
    const m = opts.mitm!;
    return { d: new ProxyAgent({ ...COMMON, uri: `http://127.0.0.1:${m.port}`, requestTls: { ca: m.caPem } }), spec: { origin: `https://${host}`, path, headers: {} } };
  }
  const d = new ProxyAgent({ ...COMMON, uri: `http://127.0.0.1:${opts.proxyPort ?? daemon.proxyPort}`, token: basic, requestTls: { ca: authsomeCa } });
  return { d, spec: { origin: `https://${host}`, path, headers: {} } };
}

/** What the origin must have seen for a run: every HTTPS request injected, no HTTP one carrying a secret. */
function verify(label: string, scheme: Scheme, os: OriginStats, s: RunStats): boolean {
  const ok =
    scheme === 'https'
      ? os.missing === 0 && os.wrong === 0 && os.ok === s.completed
      : os.leaked === 0 && os.requests === s.completed;
  if (!ok) problems.push(`${label}: injection check failed (origin saw ${JSON.stringify(os)}, client completed ${s.completed})`);
  if (s.errors > 0) problems.push(`${label}: ${s.errors} failed requests, first: ${s.firstError}`);
  return ok;
}

interface Column {
  name: Via;
  make: () => Client;
}

async function measure(label: string, scheme: Scheme, col: Column, c: number, warmMs: number, durMs: number, body?: 'download' | 'upload'): Promise<RunStats> {
  const { d, spec } = col.make();
  const upload = Buffer.alloc(body === 'upload' ? LARGE : 0, 0x62);
  const s0 = body === 'upload' ? { ...spec, method: 'POST' as const, body: upload, headers: { ...spec.headers, 'content-type': 'application/octet-stream' } } : spec;
  await originStats(true);
  const s = await runLoad({
    concurrency: c,
    warmupMs: warmMs,
    durationMs: durMs,
    once: body === 'upload' ? async () => (await request(d, s0), LARGE) : () => request(d, s0),
  });
  verify(`${label} ${col.name} c=${c}`, scheme, await originStats(false), s);
  await d.close().catch(() => undefined);
  return s;
}

/** The columns in alternation (A, B, A, B …), `rounds` times, then merged per column. */
async function alternate(label: string, scheme: Scheme, cols: Column[], c: number, rounds: number, warmMs: number, durMs: number, body?: 'download' | 'upload'): Promise<Record<string, RunStats>> {
  const runs: Record<string, RunStats[]> = {};
  for (let r = 0; r < rounds; r++) {
    for (const col of cols) (runs[col.name] ??= []).push(await measure(label, scheme, col, c, warmMs, durMs, body));
  }
  return Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, mergeRuns(v)]));
}

// ---------------------------------------------------------------- phases

async function sanity(): Promise<void> {
  for (const [scheme, host] of [['https', MAIN_HOST], ['http', HTTP_HOST]] as const) {
    const { d, spec } = client(scheme, 'authsome', host, '/json');
    await originStats(true);
    await request(d, spec);
    const os = await originStats(false);
    await d.close();
    if (scheme === 'https' && os.ok !== 1) throw new Error(`the origin did not see the injected credential: ${JSON.stringify(os)}`);
    if (scheme === 'http' && os.leaked !== 0) throw new Error('a credential went over plain http');
  }
}

async function jitWarm(): Promise<void> {
  const { d, spec } = client('https', 'authsome', MAIN_HOST, '/json');
  await runLoad({ concurrency: 8, warmupMs: 0, durationMs: QUICK ? 500 : 1500, once: () => request(d, spec) });
  await d.close();
}

interface FirstRequest {
  hosts: Array<{ host: string; coldMs: number; warmMs: number; extraMs: number; directFreshMs: number }>;
  medianExtraMs: number;
  maxExtraMs: number;
}

/** A fresh client connection each time: to a host the daemon has never seen, and to a warm one. */
async function firstRequest(): Promise<FirstRequest> {
  const once = async (c: Client): Promise<number> => {
    const t0 = performance.now();
    await request(c.d, c.spec);
    const ms = performance.now() - t0;
    await c.d.close();
    return ms;
  };
  const hosts: FirstRequest['hosts'] = [];
  await originStats(true);
  for (const p of newHosts) {
    const warmMs = await once(client('https', 'authsome', MAIN_HOST, '/json'));
    const coldMs = await once(client('https', 'authsome', p.host, '/json'));
    const directFreshMs = await once(client('https', 'direct', p.host, '/json'));
    hosts.push({ host: p.host, coldMs, warmMs, extraMs: coldMs - warmMs, directFreshMs });
  }
  const os = await originStats(false);
  if (os.ok !== newHosts.length * 3 || os.missing || os.wrong) problems.push(`first request: injection check failed ${JSON.stringify(os)}`);
  const extras = hosts.map((h) => h.extraMs);
  return { hosts, medianExtraMs: median(extras), maxExtraMs: Math.max(...extras) };
}

interface MatrixRow {
  concurrency: number;
  columns: Record<string, RunStats>;
  ratio: number;
  addedP50Ms: number;
  mitmRatio?: number;
  authsomeOverMitm?: number;
}

async function matrix(scheme: Scheme, mitm: Mitm | undefined): Promise<MatrixRow[]> {
  const host = scheme === 'https' ? MAIN_HOST : HTTP_HOST;
  const cols: Column[] = [
    { name: 'direct', make: () => client(scheme, 'direct', host, '/json') },
    { name: 'authsome', make: () => client(scheme, 'authsome', host, '/json') },
  ];
  if (mitm && scheme === 'https') cols.push({ name: 'mitmproxy', make: () => client(scheme, 'mitmproxy', host, '/json', { mitm }) });
  const rows: MatrixRow[] = [];
  for (const c of CONCURRENCY) {
    log(`bench: ${scheme} c=${c}`);
    const r = await alternate(scheme.toUpperCase(), scheme, cols, c, CFG.rounds, CFG.warmMs, CFG.durMs);
    const d = r['direct']!;
    const a = r['authsome']!;
    const m = r['mitmproxy'];
    rows.push({
      concurrency: c,
      columns: r,
      ratio: a.rps / d.rps,
      addedP50Ms: a.p50 - d.p50,
      ...(m ? { mitmRatio: m.rps / d.rps, authsomeOverMitm: a.rps / m.rps } : {}),
    });
  }
  return rows;
}

interface Sse {
  direct: { firstEventMs: number; totalMs: number; events: number };
  authsome: { firstEventMs: number; totalMs: number; events: number };
}

async function sse(): Promise<Sse> {
  const n = 5;
  const interval = 100;
  const one = async (via: Via): Promise<Sse['direct']> => {
    const c = client('https', via, MAIN_HOST, `/sse?n=${n}&interval=${interval}`);
    const t0 = performance.now();
    const r = await c.d.request({ ...c.spec, method: 'GET' });
    let first = NaN;
    let events = 0;
    for await (const chunk of r.body) {
      const k = (chunk as Buffer).toString().split('data:').length - 1;
      if (k > 0 && Number.isNaN(first)) first = performance.now() - t0;
      events += k;
    }
    const totalMs = performance.now() - t0;
    await c.d.close();
    if (events !== n) problems.push(`SSE via ${via}: ${events} of ${n} events`);
    return { firstEventMs: first, totalMs, events };
  };
  return { direct: await one('direct'), authsome: await one('authsome') };
}

interface Bodies {
  download: { direct: RunStats; authsome: RunStats; directMiBs: number; authsomeMiBs: number; ratio: number };
  upload: { direct: RunStats; authsome: RunStats; directMiBs: number; authsomeMiBs: number; ratio: number };
  rssC8: { download: { baselineMB: number; peakMB: number; growthMB: number; MiBs: number }; upload: { baselineMB: number; peakMB: number; growthMB: number; MiBs: number }; growthMB: number; hwmMB: number };
}

async function bodies(): Promise<Bodies> {
  const mibs = (s: RunStats): number => s.bytes / s.seconds / 1048576;
  const cols = (path: string): Column[] => [
    { name: 'direct', make: () => client('https', 'direct', MAIN_HOST, path) },
    { name: 'authsome', make: () => client('https', 'authsome', MAIN_HOST, path) },
  ];
  log('bench: 10 MiB download/upload c=1');
  const dl = await alternate('download', 'https', cols('/large'), 1, 2, 300, CFG.bodyMs / 2, 'download');
  const ul = await alternate('upload', 'https', cols('/upload'), 1, 2, 300, CFG.bodyMs / 2, 'upload');
  log('bench: RSS at c=8');
  const rss = async (kind: 'download' | 'upload'): Promise<Bodies['rssC8']['download']> => {
    await sleep(500);
    const baselineMB = memOf(daemon.pid).rssMB;
    const sampler = sampleRss(daemon.pid, 20);
    const s = await measure(`rss ${kind}`, 'https', cols(kind === 'download' ? '/large' : '/upload')[1]!, 8, 0, CFG.rssMs, kind);
    const { peakMB } = sampler.stop();
    return { baselineMB, peakMB, growthMB: peakMB - baselineMB, MiBs: mibs(s) };
  };
  const d8 = await rss('download');
  const u8 = await rss('upload');
  const d = (r: Record<string, RunStats>): Bodies['download'] => ({
    direct: r['direct']!,
    authsome: r['authsome']!,
    directMiBs: mibs(r['direct']!),
    authsomeMiBs: mibs(r['authsome']!),
    ratio: mibs(r['authsome']!) / mibs(r['direct']!),
  });
  return { download: d(dl), upload: d(ul), rssC8: { download: d8, upload: u8, growthMB: Math.max(d8.growthMB, u8.growthMB), hwmMB: memOf(daemon.pid).hwmMB } };
}

interface AuditCost {
  note: string;
  diskFs: string;
  c16: { columns: Record<string, RunStats>; cost: number };
  c1?: { columns: Record<string, RunStats>; cost: number; addedP50Ms: number };
}

/**
 * The daemon has no setting to move audit.log or skip its fsync, so the comparison is the whole
 * AUTHSOME_HOME on disk (fdatasync per group commit really hits the device) vs a copy of the same
 * home on tmpfs (/dev/shm: fdatasync returns at once). Same store, same session, same origin.
 */
async function auditCost(): Promise<AuditCost> {
  const shmDir = mkdtempSync('/dev/shm/authsome-bench-');
  trackDir(shmDir);
  const shmHome = join(shmDir, 'home');
  execFileSync('cp', ['-a', diskHome, shmHome]);
  const shmDaemon = await serveDaemon(envFor(shmHome));
  try {
    const cols: Column[] = [
      { name: 'direct', make: () => client('https', 'direct', MAIN_HOST, '/json') },
      { name: 'authsome', make: () => client('https', 'authsome', MAIN_HOST, '/json') },
      { name: 'authsome-tmpfs', make: () => client('https', 'authsome', MAIN_HOST, '/json', { proxyPort: shmDaemon.proxyPort }) },
    ];
    log('bench: durable audit c=16');
    const c16 = await alternate('audit', 'https', cols, 16, CFG.auditRounds, CFG.warmMs, CFG.durMs);
    const out: AuditCost = {
      note: 'AUTHSOME_HOME on disk (audit fdatasync hits the device) vs the same home copied to /dev/shm (tmpfs)',
      diskFs: homeFs,
      c16: { columns: c16, cost: 1 - c16['authsome']!.rps / c16['authsome-tmpfs']!.rps },
    };
    if (CFG.auditC1) {
      log('bench: durable audit c=1');
      const c1 = await alternate('audit', 'https', cols, 1, 2, CFG.warmMs, CFG.durMs / 2);
      out.c1 = { columns: c1, cost: 1 - c1['authsome']!.rps / c1['authsome-tmpfs']!.rps, addedP50Ms: c1['authsome']!.p50 - c1['authsome-tmpfs']!.p50 };
    }
    return out;
  } finally {
    await shmDaemon.stop();
  }
}

async function held(): Promise<HeldResult> {
  log(`bench: ${CFG.held} held connections`);
  await originStats(true);
  const r = await holdConnections({ proxyPort: daemon.proxyPort, basic, host: MAIN_HOST, caPem: authsomeCa, count: CFG.held, parallel: 100, pid: daemon.pid });
  const os = await originStats(false);
  const answered = r.opened + r.secondOk;
  if (os.ok !== answered || os.missing || os.wrong) problems.push(`held connections: injection check failed ${JSON.stringify(os)} vs ${answered} answered`);
  if (r.openFailed || r.secondFailed) problems.push(`held connections: ${r.openFailed} + ${r.secondFailed} failed (${r.firstError})`);
  return r;
}

interface RunTrue {
  samples: number[];
  medianMs: number;
  minMs: number;
  nodeBaselineMs: number;
}

async function runTrue(): Promise<RunTrue> {
  log('bench: authsome run -- true');
  await cliOk(env, ['run', '--', 'true']);
  const samples: number[] = [];
  for (let i = 0; i < CFG.runSamples; i++) {
    const r = await cli(env, ['run', '--', 'true']);
    if (r.code !== 0) problems.push(`run -- true exited ${r.code}: ${r.stderr.trim()}`);
    samples.push(r.ms);
  }
  const base: number[] = [];
  for (let i = 0; i < CFG.runSamples; i++) {
    const t0 = performance.now();
    execFileSync(process.execPath, ['-e', '0']);
    base.push(performance.now() - t0);
  }
  return { samples, medianMs: median(samples), minMs: Math.min(...samples), nodeBaselineMs: median(base) };
}

// ---------------------------------------------------------------- the --cpu-prof mode

async function cpuProfile(): Promise<void> {
  await sanity();
  await jitWarm();
  log(`bench: profiling the daemon under HTTPS c=16 for ${CFG.profMs / 1000} s`);
  const { d, spec } = client('https', 'authsome', MAIN_HOST, '/json');
  const s = await runLoad({ concurrency: 16, warmupMs: 0, durationMs: CFG.profMs, once: () => request(d, spec) });
  await d.close();
  const before = new Set(readdirSync(profDir));
  await daemon.stop();
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile') && !before.has(f));
  if (!file) throw new Error(`no .cpuprofile appeared in ${profDir}`);
  const summary = summarizeProfile(join(profDir, file), 30);
  const text = `HTTPS c=16 through authsome: ${f0(s.rps)} req/s, p50 ${f2(s.p50)} ms, ${s.errors} errors\nprofile: ${join(profDir, file)}\n\n${formatSummary(summary)}\n`;
  writeFileSync(join(RESULTS, 'profile-https-c16.txt'), text);
  writeFileSync(join(RESULTS, 'profile-https-c16.json'), JSON.stringify(summary, null, 2));
  console.log(text);
}

// ---------------------------------------------------------------- main

function gitInfo(): { commit: string; dirtySrc: boolean } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: REPO, encoding: 'utf8' }).trim() !== '';
    return { commit, dirtySrc: dirty };
  } catch {
    return { commit: 'unknown', dirtySrc: false };
  }
}

function rowsTable(title: string, rows: MatrixRow[]): string {
  const hasMitm = rows.some((r) => r.columns['mitmproxy']);
  const head = ['c', 'direct req/s', 'p50', 'p99', 'authsome req/s', 'p50', 'p99', 'ratio', '+p50 ms'];
  if (hasMitm) head.push('mitmproxy req/s', 'p50', 'ratio', 'authsome/mitm');
  const body = rows.map((r) => {
    const d = r.columns['direct']!;
    const a = r.columns['authsome']!;
    const line = [String(r.concurrency), f0(d.rps), f2(d.p50), f2(d.p99), f0(a.rps), f2(a.p50), f2(a.p99), f3(r.ratio), f3(r.addedP50Ms)];
    const m = r.columns['mitmproxy'];
    if (hasMitm) line.push(f0(m?.rps), f2(m?.p50), f3(r.mitmRatio), f1(r.authsomeOverMitm));
    return line;
  });
  return `${title}\n${table([head, ...body])}`;
}

interface Target {
  name: string;
  target: string;
  value: string;
  pass: boolean | null;
}

async function full(): Promise<void> {
  const t0 = performance.now();
  let mitm: Mitm | undefined;
  let mitmNote = 'skipped: mitmdump is not on PATH';
  if (NO_MITM) mitmNote = 'skipped: --no-mitm';
  else if (mitmdumpPath()) {
    try {
      mitm = await startMitm(dir, origin.httpsPort, main.value, originCaFile);
      mitmNote = mitm.version;
    } catch (e) {
      mitmNote = `skipped: ${(e as Error).message}`;
    }
  }
  await sanity();
  await jitWarm();
  log('bench: first request to new hosts');
  const first = await firstRequest();
  const http = await matrix('http', undefined);
  const https = await matrix('https', mitm);
  await mitm?.stop();
  const sseResult = await sse();
  const body = await bodies();
  const audit = await auditCost();
  const heldResult = await held();
  const runResult = await runTrue();
  const daemonMem = memOf(daemon.pid);
  await daemon.stop();

  const at = (rows: MatrixRow[], c: number): MatrixRow => rows.find((r) => r.concurrency === c)!;
  const t = (name: string, target: string, value: string, pass: boolean | null): Target => ({ name, target, value, pass });
  const h16 = at(https, 16);
  const targets: Target[] = [
    t('HTTPS (intercepted+injected+audited) / direct, c=16', '>= 0.35', f3(h16.ratio), h16.ratio >= 0.35),
    t('HTTPS authsome / mitmproxy req/s, c=16', '>= 10x', h16.authsomeOverMitm === undefined ? mitmNote : `${f1(h16.authsomeOverMitm)}x`, h16.authsomeOverMitm === undefined ? null : h16.authsomeOverMitm >= 10),
    t('HTTP forwarding / direct, c=16', '>= 0.45', f3(at(http, 16).ratio), at(http, 16).ratio >= 0.45),
    t('HTTPS p50 added latency, c=1', '<= 0.3 ms', `${f3(at(https, 1).addedP50Ms)} ms`, at(https, 1).addedP50Ms <= 0.3),
    t('HTTP p50 added latency, c=1', '<= 0.3 ms', `${f3(at(http, 1).addedP50Ms)} ms`, at(http, 1).addedP50Ms <= 0.3),
    t('first request to a new host, extra (median / max)', '<= 10 ms', `${f1(first.medianExtraMs)} / ${f1(first.maxExtraMs)} ms`, first.maxExtraMs <= 10),
    t('10 MiB HTTPS download, c=1', '>= 250 MiB/s', `${f0(body.download.authsomeMiBs)} MiB/s`, body.download.authsomeMiBs >= 250),
    t('daemon RSS growth, 10 MiB bodies at c=8', '<= 30 MB', `${f1(body.rssC8.growthMB)} MB`, body.rssC8.growthMB <= 30),
    t('durable audit cost (disk vs tmpfs), c=16', '<= 10%', `${f1(audit.c16.cost * 100)}%`, audit.c16.cost <= 0.1),
    t(`${heldResult.connections} held connections: daemon RSS, all answered`, '<= 250 MB', `${f0(heldResult.peakRssMB)} MB, ${heldResult.opened + heldResult.secondOk}/${2 * heldResult.connections} ok`, heldResult.peakRssMB <= 250 && heldResult.openFailed + heldResult.secondFailed === 0),
  ];

  const git = gitInfo();
  const result = {
    meta: {
      date: new Date().toISOString(),
      mode: QUICK ? 'quick' : 'full',
      node: process.version,
      cpus: `${cpus().length} x ${cpus()[0]?.model ?? '?'}`,
      git: git.commit,
      srcModifiedSinceCommit: git.dirtySrc,
      homeFs,
      mitmproxy: mitmNote,
      durations: CFG,
      seconds: (performance.now() - t0) / 1000,
    },
    targets,
    http,
    https,
    firstRequest: first,
    sse: sseResult,
    bodies: body,
    audit,
    held: heldResult,
    runTrue: runResult,
    daemonEnd: daemonMem,
    problems,
  };
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'latest.json'), `${JSON.stringify(result, (k, v: unknown) => (k === 'samples' && v instanceof Float64Array ? undefined : v), 2)}\n`);

  const out: string[] = [];
  out.push(`authsome bench (${result.meta.mode}) ${result.meta.date}, node ${process.version}, ${result.meta.cpus}, git ${git.commit}${git.dirtySrc ? ' + uncommitted src' : ''}`);
  out.push(`origin, load generator and proxy share the machine; columns alternate within one run; mitmproxy: ${mitmNote}`);
  out.push('');
  out.push(rowsTable('HTTP, 1 KiB JSON (plain http through the proxy: forwarded, never injected)', http));
  out.push('');
  out.push(rowsTable('HTTPS, 1 KiB JSON (authsome: CONNECT, intercepted, injected, audited with fdatasync)', https));
  out.push('');
  out.push(
    `First request to a host never seen (fresh client connection, leaf minted, new upstream connection) vs a warm host (fresh client connection):\n${table([
      ['host', 'new host ms', 'warm host ms', 'extra ms', 'direct fresh ms'],
      ...first.hosts.map((h) => [h.host, f2(h.coldMs), f2(h.warmMs), f2(h.extraMs), f2(h.directFreshMs)]),
    ])}`,
  );
  out.push('');
  out.push(
    `10 MiB bodies over HTTPS, c=1 (MiB/s) and daemon RSS at c=8:\n${table([
      ['', 'direct', 'authsome', 'ratio', 'RSS base MB', 'RSS peak c=8 MB', 'growth MB', 'c=8 MiB/s'],
      ['download', f0(body.download.directMiBs), f0(body.download.authsomeMiBs), f3(body.download.ratio), f1(body.rssC8.download.baselineMB), f1(body.rssC8.download.peakMB), f1(body.rssC8.download.growthMB), f0(body.rssC8.download.MiBs)],
      ['upload', f0(body.upload.directMiBs), f0(body.upload.authsomeMiBs), f3(body.upload.ratio), f1(body.rssC8.upload.baselineMB), f1(body.rssC8.upload.peakMB), f1(body.rssC8.upload.growthMB), f0(body.rssC8.upload.MiBs)],
    ])}`,
  );
  out.push('');
  const ac = (k: string, c: AuditCost['c16']): string[] => [k, f0(c.columns['direct']!.rps), f0(c.columns['authsome']!.rps), f2(c.columns['authsome']!.p50), f0(c.columns['authsome-tmpfs']!.rps), f2(c.columns['authsome-tmpfs']!.p50), `${f1(c.cost * 100)}%`];
  out.push(
    `Durable audit: ${audit.note} (disk fs: ${audit.diskFs}):\n${table([
      ['', 'direct req/s', 'disk req/s', 'p50', 'tmpfs req/s', 'p50', 'cost'],
      ac('c=16', audit.c16),
      ...(audit.c1 ? [ac('c=1', audit.c1)] : []),
    ])}`,
  );
  out.push('');
  out.push(
    `${heldResult.connections} held keep-alive connections (each a CONNECT tunnel + TLS + a request, then a second request on each):\n${table([
      ['opened ok', 'open s', 'RSS before MB', 'RSS held MB', 'RSS peak MB', 'RSS after close MB', 'second round ok', 'reconnects'],
      [`${heldResult.opened}/${heldResult.connections}`, f1(heldResult.openSeconds), f1(heldResult.baselineRssMB), f1(heldResult.heldRssMB), f1(heldResult.peakRssMB), f1(heldResult.afterCloseRssMB), `${heldResult.secondOk}/${heldResult.connections}`, String(heldResult.reconnects)],
    ])}`,
  );
  out.push('');
  out.push(
    `SSE (5 events, 100 ms apart): first event direct ${f1(sseResult.direct.firstEventMs)} ms, authsome ${f1(sseResult.authsome.firstEventMs)} ms; all events ${f1(sseResult.direct.totalMs)} / ${f1(sseResult.authsome.totalMs)} ms`,
  );
  out.push(`authsome run -- true (warm daemon): median ${f0(runResult.medianMs)} ms (min ${f0(runResult.minMs)}, n=${runResult.samples.length}); bare \`node -e 0\`: ${f0(runResult.nodeBaselineMs)} ms`);
  out.push('');
  out.push(`Targets:\n${table([['', 'target', 'measured', ''], ...targets.map((x) => [x.name, x.target, x.value, x.pass === null ? 'n/a' : x.pass ? 'met' : 'MISSED'])], 99)}`);
  if (problems.length) out.push(`\nPROBLEMS:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  out.push(`\n(${f0(result.meta.seconds)} s; JSON: bench/results/latest.json)`);
  console.log(out.join('\n'));
  if (problems.length) process.exitCode = 1;
}

try {
  if (CPU_PROF) await cpuProfile();
  else await full();
} finally {
  await daemon.stop().catch(() => undefined);
  await origin.stop().catch(() => undefined);
}
// keep-alive sockets in closed dispatchers must not hold the process; 'exit' removes the temp dirs.
process.exit();
