import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnTracked, stopChild, trackDir } from './children.js';
import { settle } from './cpu.js';
import { makeOriginCerts, type OriginCerts } from './certs.js';
import { cli, cliOk, REPO, serveDaemon, stopBackgroundDaemon, trackPidOf, type Daemon } from './daemon.js';
import type { OriginConfig } from './origin.js';

export const RESULTS = join(REPO, 'bench/results');
export const LARGE = 10 * 1024 * 1024;
export const MAIN_HOST = 'api.openai.com';
export const HTTP_HOST = 'http.bench.test';
/** A host no provider covers: authsome tunnels it without interception (the ceiling for CONNECT). */
export const TUNNEL_HOST = 'tunnel.bench.test';
/**
 * For the first-request-to-a-new-host measurement: bundled providers with one exact host (the daemon
 * mints their leaves in the background at start) and fresh sub-domains of a wildcard provider (no
 * leaf until the first request: minted on that request's path). All have one field and one header.
 */
const NEW_HOST_PROVIDERS = [
  'anthropic',
  'mistral',
  'groq',
  'deepseek',
  'cerebras',
  'fireworks',
  'perplexity',
  'xai',
];
const WILDCARD_PROVIDER = 'shopify';

export interface Provider {
  name: string;
  host: string;
  /** The provider's path prefix for this host ('' when none). */
  pathPrefix: string;
  /** true for a sub-domain of a wildcard host: its leaf is minted on the first request. */
  wildcard: boolean;
  /** The header the provider injects (lower-case) and the exact value the origin must receive. */
  header: string;
  value: string;
  key: string;
}

export interface Origin {
  pid: number;
  httpPort: number;
  httpsPort: number;
  stop(): Promise<void>;
}

/** Everything a phase needs: the origin, the daemon, the session, the CAs. */
export interface Bench {
  readonly dir: string;
  readonly homeFs: string;
  readonly diskHome: string;
  readonly env: NodeJS.ProcessEnv;
  envFor(home: string): NodeJS.ProcessEnv;
  readonly origin: Origin;
  readonly certs: OriginCerts;
  readonly originCaFile: string;
  readonly originCfgPath: string;
  readonly providers: Provider[];
  readonly main: Provider;
  readonly newHosts: Provider[];
  readonly daemon: Daemon;
  /** `Basic base64(profile:token)` of a session minted with `authsome proxy env`. */
  readonly basic: string;
  readonly authsomeCa: string;
  readonly problems: string[];
}

export const log = (s: string): void => void process.stderr.write(`${s}\n`);

const keys = new Map<string, string>();

/** A bundled provider's first host (or `sub` under its wildcard host), and the value it must inject. */
function provider(name: string, sub?: string): Provider {
  const def = JSON.parse(readFileSync(join(REPO, 'config/providers', `${name}.json`), 'utf8')) as {
    hosts: Array<{ host: string; pathPrefix?: string }>;
    fields: string[];
    inject: Array<{ type: string; name: string; template: string }>;
  };
  const inj = def.inject[0]!;
  if (def.fields.length !== 1 || def.inject.length !== 1 || inj.type !== 'header') {
    throw new TypeError(`provider ${name} is not a one-field, one-header provider`);
  }
  let key = keys.get(name);
  if (key === undefined) keys.set(name, (key = `sk-bench-${name}-${randomBytes(12).toString('hex')}`));
  const h = def.hosts[0]!;
  const wildcard = h.host.startsWith('*.');
  if (wildcard !== (sub !== undefined))
    throw new TypeError(`provider ${name}: wildcard host and sub-domain go together`);
  return {
    name,
    host: sub !== undefined ? `${sub}${h.host.slice(1)}` : h.host,
    pathPrefix: h.pathPrefix ?? '',
    wildcard,
    header: inj.name.toLowerCase(),
    value: inj.template.replace(`{{${def.fields[0]}}}`, key),
    key,
  };
}

export function fsTypeOf(dir: string): string {
  let best = '';
  let type = 'unknown';
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [, mnt, t] = line.split(' ');
    if (
      mnt &&
      t &&
      (dir === mnt || dir.startsWith(mnt.endsWith('/') ? mnt : `${mnt}/`)) &&
      mnt.length > best.length
    ) {
      best = mnt;
      type = t;
    }
  }
  return type;
}

async function startOrigin(cfgPath: string): Promise<Origin> {
  const child = spawnTracked(process.execPath, [join(REPO, 'dist/bench/origin.js'), cfgPath], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let timer: NodeJS.Timeout | undefined;
  const line = await Promise.race([
    new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve)),
    new Promise<never>(
      (_, reject) =>
        (timer = setTimeout(() => reject(new Error('the origin did not start within 15 s')), 15_000)),
    ),
  ]).finally(() => clearTimeout(timer));
  const { httpPort, httpsPort } = JSON.parse(line) as { httpPort: number; httpsPort: number };
  return {
    pid: child.pid!,
    httpPort,
    httpsPort,
    stop: async () => {
      child.stdin!.end();
      await stopChild(child, 2000);
    },
  };
}

/**
 * Loopback origin (own process), a temp home on a real disk, `authsome init`, one connection per
 * provider (`authsome login` from stdin), a session token (`authsome proxy env --json`); then the
 * background daemon that init started is stopped and the bench runs its own `daemon serve` child,
 * so it knows and owns the daemon's pid (and can start it under --cpu-prof).
 */
export async function setup(o: {
  quick: boolean;
  newHosts: number;
  daemonNodeArgs: string[];
}): Promise<Bench> {
  const t0 = performance.now();
  const half = Math.max(1, Math.floor(o.newHosts / 2));
  const providers = [
    provider('openai'),
    ...NEW_HOST_PROVIDERS.slice(0, o.newHosts - half).map((n) => provider(n)),
    ...Array.from({ length: half }, (_, i) => provider(WILDCARD_PROVIDER, `bench-shop-${i + 1}`)),
  ];
  let base = tmpdir();
  if (fsTypeOf(base) === 'tmpfs') {
    // The durable-audit comparison needs the "disk" home on a real disk.
    base = join(RESULTS, 'tmp');
    mkdirSync(base, { recursive: true });
  }
  const dir = mkdtempSync(join(base, 'authsome-bench-'));
  trackDir(dir);
  const certs = await makeOriginCerts([...providers.map((p) => p.host), HTTP_HOST, TUNNEL_HOST]);
  const originCaFile = join(dir, 'origin-ca.pem');
  writeFileSync(originCaFile, certs.caPem);
  const cfg: OriginConfig = {
    certPem: certs.certPem,
    keyPem: certs.keyPem,
    expect: Object.fromEntries(providers.map((p) => [p.host, { header: p.header, value: p.value }])),
    largeBytes: LARGE,
  };
  const cfgPath = join(dir, 'origin.json');
  writeFileSync(cfgPath, JSON.stringify(cfg), { mode: 0o600 });
  const origin = await startOrigin(cfgPath);

  const clean: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(clean))
    if (/^(https?|no|all)_proxy$/i.test(k) || k === 'NODE_OPTIONS') delete clean[k];
  const resolvePins = [
    ...[...providers.map((p) => p.host), TUNNEL_HOST].map((h) => `${h}:443=127.0.0.1:${origin.httpsPort}`),
    `${HTTP_HOST}:80=127.0.0.1:${origin.httpPort}`,
  ].join(',');
  const envFor = (home: string): NodeJS.ProcessEnv => ({
    ...clean,
    AUTHSOME_HOME: home,
    AUTHSOME_DAEMON_PORT: '0',
    AUTHSOME_PROXY_PORT: '0',
    NO_COLOR: '1',
    AUTHSOME_RESOLVE: resolvePins,
    AUTHSOME_UPSTREAM_CA: originCaFile,
  });
  const diskHome = join(dir, 'home');
  const env = envFor(diskHome);
  const homeFs = fsTypeOf(dir);
  log(
    `bench: ${o.quick ? 'quick' : 'full'} run; home ${diskHome} (${homeFs}); origin http :${origin.httpPort} https :${origin.httpsPort}`,
  );

  const init = await cli(env, ['init', '--profile', 'bench']);
  // init starts a background daemon even when a later step of it fails: end that one too.
  trackPidOf(diskHome);
  if (init.code !== 0) throw new Error(`authsome init failed (${init.code}): ${init.stderr.trim()}`);
  const once = [...new Map(providers.map((p) => [p.name, p])).values()];
  // The wildcard provider's connection is bound to the bench's shops (login --host), as a user's would be.
  const shops = providers.filter((p) => p.name === WILDCARD_PROVIDER).map((p) => p.host);
  await Promise.all(
    once.map((p) =>
      cliOk(
        env,
        ['login', p.name, ...(p.name === WILDCARD_PROVIDER ? ['--host', shops.join(',')] : [])],
        `${p.key}\n`,
      ),
    ),
  );
  const session = JSON.parse((await cliOk(env, ['proxy', 'env', '--json', '--ttl', '12h'])).stdout) as {
    env: Record<string, string>;
  };
  const url = new URL(session.env['HTTPS_PROXY']!);
  const basic = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
  await stopBackgroundDaemon(diskHome);
  await sleep(50);
  const daemon = await serveDaemon(env, o.daemonNodeArgs);
  await settle(daemon.pid);
  log(
    `bench: daemon pid ${daemon.pid}, proxy :${daemon.proxyPort}; setup ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  return {
    dir,
    homeFs,
    diskHome,
    env,
    envFor,
    origin,
    certs,
    originCaFile,
    originCfgPath: cfgPath,
    providers,
    main: providers[0]!,
    newHosts: providers.slice(1),
    daemon,
    basic,
    authsomeCa: readFileSync(join(diskHome, 'server/ca/ca.pem'), 'utf8'),
    problems: [],
  };
}
