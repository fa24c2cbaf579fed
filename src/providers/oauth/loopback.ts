import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { OAuthError, cancelled, loginHint, safeErrorCode } from './errors.js';
import { buildAuthorizeUrl, codeChallengeS256, createCodeVerifier, createState } from './pkce.js';
import type { OAuthClientOptions } from './types.js';

export interface StartPkceOptions extends OAuthClientOptions {
  scopes?: string[];
  /** RFC 8252 §7.3 / §8.3: a loopback IP literal, never "localhost". */
  host?: '127.0.0.1' | '::1';
}

export interface PkceFlow {
  authorizeUrl: string;
  redirectUri: string;
  /** For exchangeCode; never leaves this process except to the token endpoint. */
  codeVerifier: string;
  waitForCode(signal?: AbortSignal): Promise<string>;
  close(): Promise<void>;
}

/** Static pages only: nothing from the query (code, state, error) is ever reflected. */
function page(title: string, text: string): string {
  return (
    `<!doctype html><html><head><meta charset="utf-8"><title>authsome: ${title}</title></head>` +
    `<body style="font-family:sans-serif;margin:3em"><h1>${title}</h1><p>${text}</p></body></html>`
  );
}
const PAGES = {
  done: page('Login complete', 'You can close this tab and return to the terminal.'),
  denied: page(
    'Login failed',
    'The provider did not grant access. You can close this tab; the terminal says what to do next.',
  ),
  state: page(
    'Login refused',
    'This response does not match the login in progress (state mismatch), so it was refused. You can close this tab.',
  ),
  finished: page('Login already finished', 'You can close this tab.'),
  missing: page('Login failed', 'The provider sent no authorization code. You can close this tab.'),
};

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * RFC 6749 §4.1 + RFC 7636 + RFC 8252 §7.3: a one-shot loopback redirect receiver on a random port.
 * Only GET /callback with exactly one matching `state` is accepted (RFC 6749 §10.12); a wrong or
 * missing state is refused and the flow keeps waiting, so a forged request cannot end the login.
 */
export async function startPkceFlow(opts: StartPkceOptions): Promise<PkceFlow> {
  const host = opts.host ?? '127.0.0.1';
  const state = createState();
  const codeVerifier = createCodeVerifier();
  let settled = false;
  let resolveCode!: (code: string) => void;
  let rejectCode!: (e: unknown) => void;
  const codePromise = new Promise<string>((res, rej) => {
    resolveCode = (c) => ((settled = true), res(c));
    rejectCode = (e) => ((settled = true), rej(e));
  });
  codePromise.catch(() => undefined); // a flow nobody waits on must not crash the process

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const send = (status: number, body: string) => {
      res.writeHead(status, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'referrer-policy': 'no-referrer',
        'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
        connection: 'close',
      });
      res.end(body);
    };
    const url = new URL(req.url ?? '/', 'http://loopback');
    if (req.method !== 'GET' || url.pathname !== '/callback') return send(404, page('Not found', ''));
    if (settled) return send(400, PAGES.finished);
    const states = url.searchParams.getAll('state');
    if (states.length !== 1 || !sameString(states[0] ?? '', state)) return send(400, PAGES.state);
    const error = url.searchParams.get('error');
    if (error !== null) {
      const code = safeErrorCode(error) ?? 'unknown_error';
      rejectCode(
        new OAuthError(
          'ERR_OAUTH_FAILED',
          `the provider did not grant access: ${code}`,
          loginHint(opts.provider),
          { oauthError: code },
        ),
      );
      return send(400, PAGES.denied);
    }
    const codes = url.searchParams.getAll('code');
    if (codes.length !== 1 || codes[0] === '') {
      rejectCode(
        new OAuthError(
          'ERR_OAUTH_FAILED',
          'the provider redirected back without an authorization code',
          loginHint(opts.provider),
        ),
      );
      return send(400, PAGES.missing);
    }
    resolveCode(codes[0] ?? '');
    send(200, PAGES.done);
  };

  const server = createServer({ requestTimeout: 10_000, headersTimeout: 10_000 }, handle);
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => (server.off('error', reject), resolve()));
  });
  const { port } = server.address() as AddressInfo;
  const redirectUri = `http://${host === '::1' ? '[::1]' : host}:${port}/callback`;
  let authorizeUrl: string;
  try {
    authorizeUrl = buildAuthorizeUrl({
      oauth: opts.oauth,
      clientId: opts.clientId,
      redirectUri,
      state,
      codeChallenge: codeChallengeS256(codeVerifier),
      scopes: opts.scopes,
      allowInsecureLoopback: opts.allowInsecureLoopback,
    });
  } catch (e) {
    server.close();
    throw e;
  }

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    if (!settled) rejectCode(cancelled(opts.provider));
    closed ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closed;
  };

  const waitForCode = (signal?: AbortSignal): Promise<string> => {
    if (signal === undefined) return codePromise;
    if (signal.aborted) return Promise.reject(cancelled(opts.provider));
    return new Promise<string>((resolve, reject) => {
      const onAbort = () => reject(cancelled(opts.provider));
      signal.addEventListener('abort', onAbort, { once: true });
      codePromise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  };

  return { authorizeUrl, redirectUri, codeVerifier, waitForCode, close };
}
