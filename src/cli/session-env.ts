import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { AppError } from '../errors.js';
import { assertName, closest } from '../names.js';
import { ensureTrustFiles, JAVA_TRUST_STORE_PASSWORD } from '../ca/trust-files.js';
import type { HomePaths } from '../config/paths.js';
import type { DaemonClient } from '../daemon/client.js';

export const PLACEHOLDER = 'authsome-managed';
const PRELOAD = fileURLToPath(new URL('../preload/fetch-proxy.js', import.meta.url));
/** Every toolchain's "trust this bundle" variable, set to bundle.pem (system roots + the local CA). */
export const CA_VARS = [
  'SSL_CERT_FILE', // OpenSSL: Python ssl/urllib, httpx, Ruby, PHP…
  'REQUESTS_CA_BUNDLE', // Python requests
  'CURL_CA_BUNDLE', // curl
  'GIT_SSL_CAINFO', // git
  'PIP_CERT', // pip
  'npm_config_cafile', // npm
  'AWS_CA_BUNDLE', // AWS CLI, boto3/botocore, AWS SDKs
  'GRPC_DEFAULT_SSL_ROOTS_FILE_PATH', // gRPC core (Python, Ruby, C++…)
  'HTTPLIB2_CA_CERTS', // httplib2 (Google API clients)
  'CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE', // gcloud
  'NIX_SSL_CERT_FILE', // Nix
  'CARGO_HTTP_CAINFO', // cargo
  'DENO_CERT', // Deno
] as const;

/**
 * Java reads no trust variable: JAVA_TOOL_OPTIONS (read by every JVM) points it at truststore.p12, after
 * whatever the user's JAVA_TOOL_OPTIONS already holds (a later -D wins).
 */
export function javaToolOptions(existing: string | undefined, store: string): string {
  const q = (v: string) => (/\s/.test(v) ? `"${v}"` : v);
  return [
    existing?.trim(),
    `-Djavax.net.ssl.trustStore=${q(store)}`,
    `-Djavax.net.ssl.trustStorePassword=${JAVA_TRUST_STORE_PASSWORD}`,
    '-Djavax.net.ssl.trustStoreType=PKCS12',
  ]
    .filter(Boolean)
    .join(' ');
}

export interface SessionEnv {
  id: string;
  expiresAt: string;
  /** Variables to set in the child's environment. */
  env: Record<string, string>;
  /** Variables to remove from it: the SDK key variables of providers outside --allow. */
  unset: string[];
  client: DaemonClient;
}

/**
 * What minting needs: the home's paths and a signing client. The CLI passes its Ctx; the library
 * (src/index.ts) its own. Nothing here prints or exits: both share it.
 */
export interface SessionContext {
  readonly paths: Pick<HomePaths, 'caDir' | 'clientDir' | 'remoteCaBundle'>;
  client(): Promise<DaemonClient>;
  /** The session this process already runs in (a nested run): the new one is narrowed to it. */
  readonly session?: { readonly id: string; readonly token: string | undefined } | undefined;
}

/** "openai,github:work" -> [{provider:'openai'},{provider:'github',connection:'work'}] */
export function parseAllow(
  text: string | undefined,
): Array<{ provider: string; connection?: string }> | undefined {
  if (text === undefined) return undefined;
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0)
    throw new AppError('ERR_INPUT_INVALID', '--allow is empty', 'use --allow provider[:connection],…');
  return items.map((item) => {
    const [provider, connection, extra] = item.split(':');
    if (extra !== undefined)
      throw new AppError(
        'ERR_INPUT_INVALID',
        `--allow entry ${JSON.stringify(item)} has too many ':'`,
        'use provider or provider:connection',
      );
    return connection === undefined
      ? { provider: assertName('provider', provider) }
      : { provider: assertName('provider', provider), connection: assertName('connection', connection) };
  });
}

function mergeNoProxy(existing: string | undefined): string {
  const set = new Set(
    (existing ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
  for (const h of ['localhost', '127.0.0.1', '::1']) set.add(h);
  return [...set].join(',');
}

/**
 * A connection in --allow that the profile does not have (or a provider it has none of) is refused
 * before anything is minted: a typo there would give a token that silently reaches nothing of it.
 * (An unknown provider is refused by the daemon, with its own "did you mean".)
 */
function checkAllowedConnections(
  handle: string,
  allow: ReadonlyArray<{ provider: string; connection?: string }>,
  providers: ReadonlyArray<{ name: string; connections: string[] }>,
): void {
  for (const a of allow) {
    const names = providers.find((p) => p.name === a.provider)?.connections;
    if (names === undefined) continue;
    if (a.connection === undefined) {
      if (names.length > 0) continue;
      throw new AppError(
        'ERR_CONNECTION_NOT_FOUND',
        `profile ${handle} has no ${a.provider} connection to allow`,
        `log in first: authsome login ${a.provider} --profile ${handle}`,
      );
    }
    if (names.includes(a.connection)) continue;
    const guess = closest(a.connection, names);
    throw new AppError(
      'ERR_CONNECTION_NOT_FOUND',
      `profile ${handle} has no ${a.provider} connection "${a.connection}" to allow${guess ? ` — did you mean "${guess}"?` : ''}`,
      names.length > 0
        ? `allow one of its ${a.provider} connections: ${names.join(', ')}`
        : `log in first: authsome login ${a.provider} --connection ${a.connection}`,
    );
  }
}

/** Mints a session token and builds the SPEC section 7 environment for a child process. */
export async function mintSessionEnv(
  ctx: SessionContext,
  opts: {
    allow?: string | undefined;
    ttl?: string | undefined;
    label: string;
    /** doctor's probe names a connection that does not exist on purpose: nothing can be injected. */
    allowMissingConnection?: boolean;
    /** doctor's probe session: the proxy injects nothing for it and audits its refusals as doctor.probe. */
    probe?: boolean;
  },
): Promise<SessionEnv> {
  const allow = parseAllow(opts.allow);
  const client = await ctx.client();
  const { providers } = await client.call<{
    providers: Array<{ name: string; env: string[]; connections: string[] }>;
  }>('GET', '/v1/providers');
  if (allow && opts.allowMissingConnection !== true) checkAllowedConnections(client.handle, allow, providers);
  const remote = client.remote ? await remoteProxy(client) : undefined;
  // Inside a session (a nested run): the daemon narrows the new one to it (never wider, never longer).
  const inside = ctx.session;
  const minted = await client.call<{ id: string; token: string; expiresAt: string }>('POST', '/v1/sessions', {
    ...(inside?.token !== undefined ? { parent: inside.token } : inside ? { parentId: inside.id } : {}),
    ...(allow ? { allow } : {}),
    ...(opts.ttl ? { ttl: opts.ttl } : {}),
    label: opts.label,
    ...(opts.probe ? { probe: true } : {}),
  });
  const { paths } = ctx;
  let bundle: string;
  let roots: string;
  let javaStore: string | undefined;
  if (remote) {
    // One CA signs the node's listener and the leaves its proxy presents: the bundle trusts both.
    const { buildTrustBundle } = await import('../ca/trust-bundle.js');
    await mkdir(paths.clientDir, { recursive: true, mode: 0o700 });
    bundle = await buildTrustBundle(remote.caPem, paths.remoteCaBundle);
    roots = remote.caFile;
  } else {
    const trust = await ensureTrustFiles(paths.caDir);
    ({ bundle, roots, javaStore } = trust);
  }
  // A remote node's proxy is reached over TLS (SPEC section 10): the token never crosses a network in clear.
  const proxyUrl = remote
    ? `https://${client.handle}:${minted.token}@${remote.authority}`
    : `http://${client.handle}:${minted.token}@127.0.0.1:${client.info.proxyPort}`;
  const noProxy = mergeNoProxy(process.env['NO_PROXY'] ?? process.env['no_proxy']);
  const env: Record<string, string> = {
    HTTPS_PROXY: proxyUrl,
    HTTP_PROXY: proxyUrl,
    https_proxy: proxyUrl,
    http_proxy: proxyUrl,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
    NODE_EXTRA_CA_CERTS: roots,
    NODE_USE_ENV_PROXY: '1',
    NODE_OPTIONS: [process.env['NODE_OPTIONS'], `--import=${PRELOAD}`].filter(Boolean).join(' '),
    AUTHSOME_PROFILE: client.handle,
    AUTHSOME_SESSION_ID: minted.id,
  };
  for (const v of CA_VARS) env[v] = bundle;
  // Java's trust store is built for the local CA only (a remote node's callers: docs/team.md).
  if (javaStore !== undefined)
    env['JAVA_TOOL_OPTIONS'] = javaToolOptions(process.env['JAVA_TOOL_OPTIONS'], javaStore);
  const { placeholders, unset } = keyVariables(providers, allow);
  for (const name of placeholders) env[name] = PLACEHOLDER;
  return { id: minted.id, expiresAt: minted.expiresAt, env, unset, client };
}

/**
 * The SDK key variables (`OPENAI_API_KEY`…) of every provider the profile holds a connection of: a
 * placeholder for those the session may use; the others are removed from the child's environment, so
 * a session narrowed with --allow neither advertises them nor hands the child the real key the user's
 * shell may still export for them. A variable two providers share is set when either is allowed.
 */
export function keyVariables(
  providers: ReadonlyArray<{ name: string; env: readonly string[]; connections: readonly string[] }>,
  allow: ReadonlyArray<{ provider: string }> | undefined,
): { placeholders: string[]; unset: string[] } {
  const allowed = (p: string) => allow === undefined || allow.some((a) => a.provider === p);
  const placeholders = new Set<string>();
  const others = new Set<string>();
  for (const p of providers) {
    if (p.connections.length === 0) continue;
    for (const name of p.env) (allowed(p.name) ? placeholders : others).add(name);
  }
  return { placeholders: [...placeholders], unset: [...others].filter((n) => !placeholders.has(n)) };
}

/** The child's environment: `base` (default: this process's) with the session's variables set and unset. */
export function childEnv(
  s: Pick<SessionEnv, 'env' | 'unset'>,
  base: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...base, ...s.env };
  for (const name of s.unset) delete out[name];
  return out;
}

/** Where a remote node serves its proxy to remote callers: the host of --daemon, the port it reports. */
async function remoteProxy(
  client: DaemonClient,
): Promise<{ authority: string; caPem: string; caFile: string }> {
  const r = client.remote!;
  const status = await client.call<{ remote: { proxyPort: number } | null }>('GET', '/v1/status');
  if (!status.remote || !Number.isInteger(status.remote.proxyPort))
    throw new AppError(
      'ERR_DAEMON_UNREACHABLE',
      `the node at ${r.origin} does not serve remote callers`,
      'start that node with `authsome daemon start --listen <its host name>`',
    );
  return {
    authority: `${new URL(r.origin).hostname}:${status.remote.proxyPort}`,
    caPem: r.caPem,
    caFile: r.caFile,
  };
}

export function shellQuote(v: string): string {
  return `'${v.replace(/'/g, `'\\''`)}'`;
}
