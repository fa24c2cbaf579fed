import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { resolve as resolvePath } from 'node:path';
import { AppError } from '../errors.js';
import { Secret } from '../secret.js';
import { homePaths, type HomePaths } from './paths.js';

/** Where the repository's config/ folder is, from src/config or dist/src/config. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'config', 'default.json'))) return dir;
    dir = dirname(dir);
  }
  throw new TypeError('cannot locate the authsome package root');
}

export interface ProxySettings {
  readonly host: string;
  readonly port: number;
  readonly strict: boolean;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly upstreamConnectTimeoutMs: number;
  readonly upstreamHeadersTimeoutMs: number;
  readonly upstreamBodyTimeoutMs: number;
  readonly maxHeaderSize: number;
  readonly maxHeaderCount: number;
  /** Open client connections, all profiles (excess closed at accept) and per profile (503). */
  readonly maxConnections: number;
  readonly maxConnectionsPerProfile: number;
  /** Accepted client connections not yet identified by a session token (the oldest is closed past it). */
  readonly maxUnidentified: number;
}

/**
 * Where the vault lives (SPEC section 10): the embedded LevelDB at paths.kvStore, or PostgreSQL when
 * url is set. Validated in full when the store is opened (vault/pg-config.ts).
 */
export interface StoreSettings {
  /** AUTHSOME_STORE_URL or store.url: postgres://user@host:port/db, never with a password. */
  readonly url: string | undefined;
  /** AUTHSOME_STORE_PASSWORD_FILE or store.passwordFile (relative to server/): a 0600 file, one line. */
  readonly passwordFile: string | undefined;
  /** AUTHSOME_STORE_PASSWORD, else PGPASSWORD. */
  readonly password: Secret | undefined;
  /** AUTHSOME_STORE_CA_FILE or store.caFile (relative to server/): PEM of the database server's CA. */
  readonly caFile: string | undefined;
}

export interface Settings {
  readonly paths: HomePaths;
  readonly daemon: { readonly host: string; readonly port: number };
  readonly proxy: ProxySettings;
  readonly session: { readonly defaultTtl: string; readonly maxTtl: string };
  /** SPEC section 9: how long a held request waits for approval, and how many may wait at once. */
  readonly policy: {
    readonly approvalTimeoutS: number;
    readonly maxHeld: number;
    /** Find the calling process of every connection (for the audit), not only where a policy names exe. */
    readonly attributeCallers: boolean;
  };
  /** Operator hook: "host:port" -> "ip:port" upstream pins (SPEC section 5). */
  readonly resolve: ReadonlyMap<string, string>;
  /** Operator hook: extra trusted roots (PEM) for the upstream leg only. */
  readonly upstreamCaPem: string | undefined;
  /** Binding a non-loopback address needs this explicit opt-in. */
  readonly allowRemoteBind: boolean;
  readonly store: StoreSettings;
  /**
   * Remote callers (SPEC section 10): the proxy and the control API also served over TLS on this
   * address, with a certificate from the local CA naming it. Undefined: loopback only.
   */
  readonly listen: ListenSettings | undefined;
}

export interface ListenSettings {
  /** The address or host name callers use; the certificate names exactly it. */
  readonly host: string;
  /** Default 7998 / 7999, like the loopback listeners; 0 picks a free port. */
  readonly controlPort: number;
  readonly proxyPort: number;
}

type Json = Record<string, unknown>;

function readJson(path: string): Json {
  try {
    const v: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Json;
  } catch (e) {
    throw new AppError(
      'ERR_INPUT_INVALID',
      `cannot read settings file ${path}: ${(e as Error).message}`,
      'fix or remove that file',
    );
  }
}

function merge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)
        ? merge(b as Json, v as Json)
        : v;
  }
  return out;
}

function port(value: unknown, what: string): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new AppError(
      'ERR_INPUT_INVALID',
      `${what} must be a port number 0-65535, got ${JSON.stringify(value)}`,
      `set ${what} to a number such as 7999, or 0 for a free port`,
    );
  }
  return n;
}

export function parseResolve(spec: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^([a-z0-9.-]+):(\d{1,5})=(\[[0-9a-f:.]+\]|[0-9.]+):(\d{1,5})$/i.exec(part);
    if (!m) {
      throw new AppError(
        'ERR_INPUT_INVALID',
        `AUTHSOME_RESOLVE entry ${JSON.stringify(part)} is not host:port=ip:port`,
        'write it as api.example.test:443=127.0.0.1:8443',
      );
    }
    out.set(
      `${m[1]!.toLowerCase()}:${port(m[2], 'AUTHSOME_RESOLVE port')}`,
      `${m[3]}:${port(m[4], 'AUTHSOME_RESOLVE port')}`,
    );
  }
  return out;
}

function readPemOption(value: string): string {
  if (value.includes('-----BEGIN')) return value;
  try {
    return readFileSync(value, 'utf8');
  } catch {
    throw new AppError(
      'ERR_INPUT_INVALID',
      `AUTHSOME_UPSTREAM_CA is neither PEM text nor a readable file: ${value}`,
      'point it at a PEM file of CA certificates',
    );
  }
}

export interface SettingsOverrides {
  daemonPort?: number;
  proxyPort?: number;
  strict?: boolean;
  /** --listen ADDR: serve remote callers over TLS on ADDR (an explicit opt-in to bind beyond loopback). */
  listen?: string;
}

/** defaults <- $AUTHSOME_HOME/server/config.json <- env <- flags; validated once, frozen. */
export function loadSettings(
  home: string,
  env: NodeJS.ProcessEnv = process.env,
  flags: SettingsOverrides = {},
): Settings {
  const paths = homePaths(home);
  let raw = readJson(join(packageRoot(), 'config', 'default.json'));
  if (existsSync(paths.serverConfig)) raw = merge(raw, readJson(paths.serverConfig));
  const d = raw['daemon'] as Json;
  const p = raw['proxy'] as Json;
  const s = raw['session'] as Json;
  const daemonPort =
    flags.daemonPort ?? port(env['AUTHSOME_DAEMON_PORT'] ?? d['port'], 'AUTHSOME_DAEMON_PORT');
  const proxyPort = flags.proxyPort ?? port(env['AUTHSOME_PROXY_PORT'] ?? p['port'], 'AUTHSOME_PROXY_PORT');
  const num = (k: string): number => {
    const v = p[k];
    if (typeof v !== 'number' || v < 0)
      throw new AppError(
        'ERR_INPUT_INVALID',
        `proxy.${k} must be a non-negative number`,
        'fix server/config.json',
      );
    return v;
  };
  const resolveSpec = env['AUTHSOME_RESOLVE'] ?? (typeof raw['resolve'] === 'string' ? raw['resolve'] : '');
  const caSpec =
    env['AUTHSOME_UPSTREAM_CA'] ?? (typeof raw['upstreamCa'] === 'string' ? raw['upstreamCa'] : undefined);
  const settings: Settings = {
    paths,
    daemon: { host: String(d['host'] ?? '127.0.0.1'), port: daemonPort },
    proxy: {
      host: String(p['host'] ?? '127.0.0.1'),
      port: proxyPort,
      strict: flags.strict ?? (env['AUTHSOME_STRICT'] === '1' || p['strict'] === true),
      headersTimeoutMs: num('headersTimeoutMs'),
      requestTimeoutMs: num('requestTimeoutMs'),
      idleTimeoutMs: num('idleTimeoutMs'),
      upstreamConnectTimeoutMs: num('upstreamConnectTimeoutMs'),
      upstreamHeadersTimeoutMs: num('upstreamHeadersTimeoutMs'),
      upstreamBodyTimeoutMs: num('upstreamBodyTimeoutMs'),
      maxHeaderSize: num('maxHeaderSize'),
      maxHeaderCount: num('maxHeaderCount'),
      maxConnections: num('maxConnections'),
      maxConnectionsPerProfile: num('maxConnectionsPerProfile'),
      maxUnidentified: num('maxUnidentified'),
    },
    session: { defaultTtl: String(s['defaultTtl'] ?? '12h'), maxTtl: String(s['maxTtl'] ?? '720h') },
    policy: policySettings(raw['policy']),
    resolve: parseResolve(resolveSpec),
    upstreamCaPem: caSpec ? readPemOption(caSpec) : undefined,
    allowRemoteBind: raw['allowRemoteBind'] === true,
    store: storeSettings(raw['store'], env, paths.serverDir),
    listen: listenSettings(raw['listen'], env, flags.listen),
  };
  for (const [what, host] of [
    ['daemon', settings.daemon.host],
    ['proxy', settings.proxy.host],
  ] as const) {
    if (!isLoopbackHost(host) && !settings.allowRemoteBind) {
      throw new AppError(
        'ERR_INPUT_INVALID',
        `${what} is set to bind ${host}, which is not loopback`,
        'set "allowRemoteBind": true in server/config.json if you really mean it',
      );
    }
  }
  return Object.freeze(settings);
}

/** A host name or IP address a certificate can name; never a wildcard address. */
const LISTEN_HOST =
  /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*|\d{1,3}(?:\.\d{1,3}){3}|\[?[0-9a-f:]+\]?)$/i;

function listenSettings(
  value: unknown,
  env: NodeJS.ProcessEnv,
  flag: string | undefined,
): ListenSettings | undefined {
  if (value !== undefined && (value === null || typeof value !== 'object' || Array.isArray(value))) {
    throw new AppError(
      'ERR_INPUT_INVALID',
      'listen in server/config.json must be an object',
      'write it as {"host": "node1.example.com"}',
    );
  }
  const file = (value ?? {}) as Json;
  const host = flag ?? (env['AUTHSOME_LISTEN'] || (typeof file['host'] === 'string' ? file['host'] : ''));
  if (host === '') return undefined;
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (!LISTEN_HOST.test(host) || bare === '0.0.0.0' || /^[0:]+$/.test(bare) || bare.length > 253) {
    throw new AppError(
      'ERR_INPUT_INVALID',
      `--listen needs the address or host name callers use (its certificate names exactly it), got ${JSON.stringify(host.slice(0, 80))}`,
      'give one address or DNS name, e.g. --listen node1.example.com or --listen 10.0.0.5 (not 0.0.0.0)',
    );
  }
  return {
    host: bare,
    controlPort: port(
      env['AUTHSOME_LISTEN_DAEMON_PORT'] ?? file['controlPort'] ?? 7998,
      'AUTHSOME_LISTEN_DAEMON_PORT',
    ),
    proxyPort: port(
      env['AUTHSOME_LISTEN_PROXY_PORT'] ?? file['proxyPort'] ?? 7999,
      'AUTHSOME_LISTEN_PROXY_PORT',
    ),
  };
}

function storeSettings(value: unknown, env: NodeJS.ProcessEnv, serverDir: string): StoreSettings {
  if (value !== undefined && (value === null || typeof value !== 'object' || Array.isArray(value))) {
    throw new AppError(
      'ERR_INPUT_INVALID',
      'store in server/config.json must be an object',
      'fix server/config.json',
    );
  }
  const file = (value ?? {}) as Json;
  const text = (envName: string, key: string): string | undefined => {
    const v = env[envName] || file[key];
    if (v === undefined || v === '') return undefined;
    if (typeof v !== 'string') {
      throw new AppError('ERR_INPUT_INVALID', `store.${key} must be a string`, 'fix server/config.json');
    }
    return v;
  };
  const url = text('AUTHSOME_STORE_URL', 'url');
  // Refused here already, so a URL with a password never sits in the settings (its full check, which
  // never quotes the URL either, runs when the store opens).
  if (url !== undefined && /^[a-z]+:\/\/[^/@]*:[^/@]*@/i.test(url)) {
    throw new AppError(
      'ERR_INPUT_INVALID',
      'the store URL must not contain a password',
      'put it in a file named by store.passwordFile, or in AUTHSOME_STORE_PASSWORD',
    );
  }
  const path = (p: string | undefined): string | undefined =>
    p === undefined ? undefined : resolvePath(serverDir, p);
  const password = env['AUTHSOME_STORE_PASSWORD'] || env['PGPASSWORD'];
  return {
    url,
    passwordFile: path(text('AUTHSOME_STORE_PASSWORD_FILE', 'passwordFile')),
    password: password ? new Secret(password) : undefined,
    caFile: path(text('AUTHSOME_STORE_CA_FILE', 'caFile')),
  };
}

function policySettings(raw: unknown): Settings['policy'] {
  const o = (raw && typeof raw === 'object' ? raw : {}) as Json;
  const int = (k: string, fallback: number, max: number): number => {
    const v = o[k] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max)
      throw new AppError(
        'ERR_INPUT_INVALID',
        `policy.${k} must be a whole number from 1 to ${max}`,
        'fix server/config.json',
      );
    return v;
  };
  const attribute = o['attributeCallers'] ?? false;
  if (typeof attribute !== 'boolean')
    throw new AppError(
      'ERR_INPUT_INVALID',
      'policy.attributeCallers must be true or false',
      'fix server/config.json',
    );
  return {
    approvalTimeoutS: int('approvalTimeoutS', 120, 86_400),
    maxHeld: int('maxHeld', 64, 10_000),
    attributeCallers: attribute,
  };
}

export function isLoopbackHost(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** "90s", "15m", "12h", "7d" -> milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(text.trim());
  if (!m)
    throw new AppError(
      'ERR_INPUT_INVALID',
      `invalid duration ${JSON.stringify(text)}`,
      'write a duration such as 90s, 15m, 12h or 7d',
    );
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}
