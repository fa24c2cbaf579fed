import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import type { OAuthConfig } from '../../src/providers/types.js';

/**
 * A real loopback OAuth 2.0 authorization server for tests: device authorization (RFC 8628),
 * authorize + token with PKCE S256 (RFC 6749 §4.1, RFC 7636), refresh (RFC 6749 §6) and
 * revocation (RFC 7009). Plain http on 127.0.0.1 — clients need `allowInsecureLoopback: true`.
 */
export type DeviceStep =
  'authorization_pending' | 'slow_down' | 'expired_token' | 'access_denied' | 'success';

export interface FakeOAuthOptions {
  clientId?: string;
  /** null: a public client (no secret checked). */
  clientSecret?: string | null;
  clientAuth?: 'client_secret_basic' | 'client_secret_post' | 'none';
  /** expires_in of issued access tokens, seconds (default 3600); 0 omits it. */
  expiresIn?: number;
  /** Issue a new refresh token on refresh and invalidate the old one (default false: omit it). */
  rotateRefreshTokens?: boolean;
  /** Device flow `interval`, seconds (default 1). */
  interval?: number;
  /** Delay before each token-endpoint answer, so concurrent callers overlap. */
  tokenLatencyMs?: number;
  /** HTTP status of error replies; GitHub uses 200 (default 400; invalid_client is always 401). */
  errorStatus?: number;
  /** GitHub-style form-encoded replies instead of JSON. */
  responseFormat?: 'json' | 'form';
  scopes?: string[];
  /** Serve HTTPS with this certificate (a daemon only talks https to OAuth endpoints). */
  tls?: { certPem: string; keyPem: string };
  /** The base URL clients are told to use, e.g. https://oauth.example.test (pinned to this server). */
  publicBase?: string;
}

export interface FakeOAuthCounters {
  deviceAuthorizations: number;
  devicePolls: number;
  authorizes: number;
  codeExchanges: number;
  refreshes: number;
  revocations: number;
  clientAuthFailures: number;
}

export interface FakeOAuth {
  url: string;
  /** The loopback port it listens on. */
  port: number;
  clientId: string;
  clientSecret: string | undefined;
  oauthConfig(overrides?: Partial<OAuthConfig>): OAuthConfig;
  counters: FakeOAuthCounters;
  /** Outcomes of the next device-code polls, in order; once used up, polls succeed. */
  script(steps: DeviceStep[]): void;
  /** Revoke a refresh token (and the access tokens issued from it). */
  revoke(refreshToken: string): void;
  /** The next /authorize redirects back with this error instead of a code. */
  denyNextAuthorize(error?: string): void;
  isAccessTokenValid(token: string): boolean;
  /** Every token issued, oldest first. */
  issued: { accessTokens: string[]; refreshTokens: string[] };
  /** Date.now() at each device poll. */
  pollTimes: number[];
  close(): Promise<void>;
}

const rand = (prefix: string) => `${prefix}${randomBytes(18).toString('base64url')}`;
const formDecode = (s: string) => new URLSearchParams(`a=${s}`).get('a') ?? '';

export async function startFakeOAuth(opts: FakeOAuthOptions = {}): Promise<FakeOAuth> {
  const clientId = opts.clientId ?? 'fake-client';
  const clientSecret =
    opts.clientSecret === null ? undefined : (opts.clientSecret ?? 'fake-client-secret-7f3a9c');
  const clientAuth = opts.clientAuth ?? (clientSecret === undefined ? 'none' : 'client_secret_basic');
  const scopes = opts.scopes ?? ['read', 'write'];
  const counters: FakeOAuthCounters = {
    deviceAuthorizations: 0,
    devicePolls: 0,
    authorizes: 0,
    codeExchanges: 0,
    refreshes: 0,
    revocations: 0,
    clientAuthFailures: 0,
  };
  const issued = { accessTokens: [] as string[], refreshTokens: [] as string[] };
  const pollTimes: number[] = [];
  let steps: DeviceStep[] = [];
  let denyError: string | undefined;
  const deviceCodes = new Set<string>();
  const codes = new Map<string, { redirectUri: string; challenge: string; scope: string }>();
  const liveAccess = new Set<string>();
  const refreshGrants = new Map<string, Set<string>>(); // live refresh token -> its access tokens

  const issue = (scope: string, refresh?: string): Record<string, string | number> => {
    const access = rand('fake-at-');
    issued.accessTokens.push(access);
    liveAccess.add(access);
    const out: Record<string, string | number> = { access_token: access, token_type: 'bearer', scope };
    if (opts.expiresIn !== 0) out['expires_in'] = opts.expiresIn ?? 3600;
    let rt = refresh;
    if (rt === undefined || opts.rotateRefreshTokens === true) {
      if (rt !== undefined) revoke(rt);
      rt = rand('fake-rt-');
      issued.refreshTokens.push(rt);
      refreshGrants.set(rt, new Set());
      out['refresh_token'] = rt;
    }
    refreshGrants.get(rt)?.add(access);
    return out;
  };
  const revoke = (rt: string) => {
    for (const at of refreshGrants.get(rt) ?? []) liveAccess.delete(at);
    refreshGrants.delete(rt);
  };

  const reply = (res: ServerResponse, status: number, body: Record<string, string | number>) => {
    const form = opts.responseFormat === 'form';
    const text = form
      ? new URLSearchParams(
          Object.entries(body).map(([k, v]) => [k, String(v)] as [string, string]),
        ).toString()
      : JSON.stringify(body);
    res.writeHead(status, {
      'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json',
      'cache-control': 'no-store',
    });
    res.end(text);
  };
  const fail = (res: ServerResponse, error: string, description?: string) =>
    reply(
      res,
      opts.errorStatus ?? 400,
      description === undefined ? { error } : { error, error_description: description },
    );

  /** RFC 6749 §2.3.1 as the server sees it. */
  const clientOk = (req: IncomingMessage, form: URLSearchParams): boolean => {
    let ok: boolean;
    if (clientAuth === 'client_secret_basic') {
      const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(req.headers.authorization ?? '');
      const pair = m ? Buffer.from(m[1] ?? '', 'base64').toString('utf8') : '';
      const i = pair.indexOf(':');
      ok =
        i > 0 && formDecode(pair.slice(0, i)) === clientId && formDecode(pair.slice(i + 1)) === clientSecret;
    } else if (clientAuth === 'client_secret_post') {
      ok = form.get('client_id') === clientId && form.get('client_secret') === clientSecret;
    } else {
      ok = form.get('client_id') === clientId;
    }
    if (!ok) counters.clientAuthFailures++;
    return ok;
  };

  const authorize = (url: URL, res: ServerResponse) => {
    counters.authorizes++;
    const q = url.searchParams;
    let redirect: URL;
    try {
      redirect = new URL(q.get('redirect_uri') ?? '');
    } catch {
      return void res.writeHead(400).end('bad redirect_uri');
    }
    // RFC 8252 §7.3: loopback IP literal redirect only; never redirect to anything else (§4.1.2.1).
    if (
      redirect.protocol !== 'http:' ||
      !['127.0.0.1', '[::1]'].includes(redirect.hostname) ||
      q.get('client_id') !== clientId
    ) {
      return void res.writeHead(400).end('bad client_id or redirect_uri');
    }
    const state = q.get('state');
    if (state !== null) redirect.searchParams.set('state', state);
    const challenge = q.get('code_challenge');
    if (
      denyError !== undefined ||
      q.get('response_type') !== 'code' ||
      q.get('code_challenge_method') !== 'S256' ||
      !challenge
    ) {
      redirect.searchParams.set('error', denyError ?? 'invalid_request');
      denyError = undefined;
    } else {
      const code = rand('fake-code-');
      codes.set(code, { redirectUri: q.get('redirect_uri') ?? '', challenge, scope: q.get('scope') ?? '' });
      redirect.searchParams.set('code', code);
    }
    res.writeHead(302, { location: redirect.href }).end();
  };

  const token = (form: URLSearchParams, res: ServerResponse) => {
    const grant = form.get('grant_type');
    if (grant === 'urn:ietf:params:oauth:grant-type:device_code') {
      counters.devicePolls++;
      pollTimes.push(Date.now());
      const dc = form.get('device_code') ?? '';
      if (!deviceCodes.has(dc)) return fail(res, 'invalid_grant', 'unknown device code');
      const step = steps.shift() ?? 'success';
      if (step !== 'success') return fail(res, step);
      deviceCodes.delete(dc);
      return reply(res, 200, issue(scopes.join(' ')));
    }
    if (grant === 'authorization_code') {
      counters.codeExchanges++;
      const entry = codes.get(form.get('code') ?? '');
      codes.delete(form.get('code') ?? ''); // single use (RFC 6749 §4.1.2)
      const verifier = form.get('code_verifier') ?? '';
      if (entry === undefined) return fail(res, 'invalid_grant', 'unknown or used code');
      if (entry.redirectUri !== form.get('redirect_uri'))
        return fail(res, 'invalid_grant', 'redirect_uri mismatch');
      const computed = createHash('sha256').update(verifier, 'ascii').digest('base64url');
      if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier) || computed !== entry.challenge) {
        return fail(res, 'invalid_grant', 'PKCE verification failed');
      }
      return reply(res, 200, issue(entry.scope));
    }
    if (grant === 'refresh_token') {
      counters.refreshes++;
      const rt = form.get('refresh_token') ?? '';
      if (!refreshGrants.has(rt)) return fail(res, 'invalid_grant', 'refresh token revoked or unknown');
      return reply(res, 200, issue(scopes.join(' '), rt));
    }
    return fail(res, 'unsupported_grant_type');
  };

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method === 'GET' && url.pathname === '/authorize') return authorize(url, res);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        const isForm = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
        if (req.method !== 'POST' || !isForm) return void res.writeHead(405).end();
        if (!clientOk(req, form)) return reply(res, 401, { error: 'invalid_client' });
        if (url.pathname === '/device') {
          counters.deviceAuthorizations++;
          const dc = rand('fake-dc-');
          deviceCodes.add(dc);
          return reply(res, 200, {
            device_code: dc,
            user_code: 'WDJB-MJHT',
            verification_uri: `${base}/activate`,
            verification_uri_complete: `${base}/activate?user_code=WDJB-MJHT`,
            expires_in: 900,
            interval: opts.interval ?? 1,
          });
        }
        if (url.pathname === '/revoke') {
          counters.revocations++;
          const t = form.get('token') ?? '';
          revoke(t);
          liveAccess.delete(t);
          return void res.writeHead(200).end(); // RFC 7009 §2.2: 200 even for unknown tokens
        }
        if (url.pathname === '/token') {
          if (opts.tokenLatencyMs) await delay(opts.tokenLatencyMs);
          return token(form, res);
        }
        res.writeHead(404).end();
      })();
    });
  };
  const server = opts.tls
    ? createHttpsServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, handler)
    : createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const base = opts.publicBase ?? `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;

  return {
    url: base,
    port,
    clientId,
    clientSecret,
    oauthConfig: (overrides = {}) => ({
      authorizeUrl: `${base}/authorize`,
      tokenUrl: `${base}/token`,
      deviceUrl: `${base}/device`,
      revokeUrl: `${base}/revoke`,
      scopes,
      pkce: true,
      clientAuth,
      ...overrides,
    }),
    counters,
    script: (s) => void (steps = [...s]),
    revoke,
    denyNextAuthorize: (error = 'access_denied') => void (denyError = error),
    isAccessTokenValid: (t) => liveAccess.has(t),
    issued,
    pollTimes,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
