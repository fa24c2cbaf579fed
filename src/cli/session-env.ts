import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { AppError } from '../errors.js';
import { assertName, closest } from '../names.js';
import type { Ctx } from './context.js';
import type { DaemonClient } from '../daemon/client.js';

export const PLACEHOLDER = 'authsome-managed';
const PRELOAD = fileURLToPath(new URL('../preload/fetch-proxy.js', import.meta.url));
const CA_VARS = [
  'SSL_CERT_FILE',
  'REQUESTS_CA_BUNDLE',
  'CURL_CA_BUNDLE',
  'GIT_SSL_CAINFO',
  'PIP_CERT',
  'npm_config_cafile',
];

export interface SessionEnv {
  id: string;
  expiresAt: string;
  env: Record<string, string>;
  client: DaemonClient;
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
  ctx: Ctx,
  opts: {
    allow?: string | undefined;
    ttl?: string | undefined;
    label: string;
    /** doctor's probe names a connection that does not exist on purpose: nothing can be injected. */
    allowMissingConnection?: boolean;
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
  });
  const { paths } = ctx;
  let bundle = paths.caBundle;
  let caCert = paths.caCert;
  if (remote) {
    // One CA signs the node's listener and the leaves its proxy presents: the bundle trusts both.
    const { buildTrustBundle } = await import('../ca/trust-bundle.js');
    await mkdir(paths.clientDir, { recursive: true, mode: 0o700 });
    bundle = await buildTrustBundle(remote.caPem, paths.remoteCaBundle);
    caCert = remote.caFile;
  } else if (
    !existsSync(paths.caBundle) ||
    statSync(paths.caBundle).mtimeMs < statSync(paths.caCert).mtimeMs
  ) {
    const { buildTrustBundle } = await import('../ca/trust-bundle.js');
    await buildTrustBundle(await readFile(paths.caCert, 'utf8'), paths.caBundle);
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
    NODE_EXTRA_CA_CERTS: caCert,
    NODE_USE_ENV_PROXY: '1',
    NODE_OPTIONS: [process.env['NODE_OPTIONS'], `--import=${PRELOAD}`].filter(Boolean).join(' '),
    AUTHSOME_PROFILE: client.handle,
    AUTHSOME_SESSION_ID: minted.id,
  };
  for (const v of CA_VARS) env[v] = bundle;
  // Every provider the profile holds a connection of, allowed or not: a session narrowed with --allow
  // must not hand the child the real key the user's shell may still export for the others.
  for (const p of providers) {
    if (p.connections.length === 0) continue;
    for (const name of p.env) env[name] = PLACEHOLDER;
  }
  return { id: minted.id, expiresAt: minted.expiresAt, env, client };
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
