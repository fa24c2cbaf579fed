import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError, isAppError } from '../errors.js';

/**
 * The dashboard's HTTP rules (SPEC section 11), applied to everything under /ui before a session is
 * looked at. The page and its API share one origin, http://127.0.0.1:<port> (or localhost:<port>),
 * and nothing from any other origin may read or drive it. Other pages on 127.0.0.1 (any port) are
 * *same-site* to it, so SameSite=Strict alone would not stop them: the exact Origin and
 * Sec-Fetch-Site checks below, and the CSRF token, do.
 */

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

/** Sent with every /ui response, errors included. No Access-Control-* header is ever sent. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CSP,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
};

export const CSRF_HEADER = 'x-authsome-csrf';
const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);
const SAFE_METHODS = new Set(['GET', 'HEAD']);

/** The cookie's name carries the port: cookies ignore ports, and two daemons on one host must not mix. */
export const cookieName = (port: number): string => `authsome-ui-${port}`;

/** Every value of one header, in order (rawHeaders: duplicates are not joined or dropped). */
export function headerValues(raw: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
  return out;
}

function forbidden(message: string, hint: string): AppError {
  return new AppError('ERR_AUTH_FORBIDDEN', message, hint);
}

/**
 * Host, Origin and Sec-Fetch-Site for one request under /ui; returns the page's origin. The rules:
 * - a loopback peer on a loopback listener, and exactly one Host naming 127.0.0.1:<port> or
 *   localhost:<port> (DNS rebinding sends the attacker's name);
 * - at most one Origin, and when sent, exactly `http://<that Host>` (scheme, host and port);
 * - state-changing methods must send that Origin (every browser does on POST);
 * - Sec-Fetch-Site, when sent, must be `same-origin` (or `none`, a typed URL or a bookmark, for reads):
 *   `same-site` is another port of 127.0.0.1, and `cross-site` any web page.
 */
export function checkUiRequest(req: IncomingMessage, port: number): string {
  if (!LOOPBACK.has(req.socket.remoteAddress ?? '') || !LOOPBACK.has(req.socket.localAddress ?? ''))
    throw forbidden('the dashboard only answers on loopback', 'open the link `authsome ui` printed');
  const raw = req.rawHeaders;
  const hosts = headerValues(raw, 'host');
  const host = hosts[0];
  if (hosts.length !== 1 || (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`))
    throw forbidden(
      'foreign Host header refused',
      `open the dashboard as http://127.0.0.1:${port}/ui/ (the link \`authsome ui\` prints)`,
    );
  const origin = `http://${host}`;
  const origins = headerValues(raw, 'origin');
  if (origins.length > 1 || (origins.length === 1 && origins[0] !== origin))
    throw forbidden(
      'cross-origin request refused',
      'the dashboard answers only its own page; open the link `authsome ui` printed',
    );
  const method = req.method ?? 'GET';
  const safe = SAFE_METHODS.has(method);
  if (!safe && origins.length !== 1)
    throw forbidden('a change without an Origin header is refused', 'use the dashboard page itself');
  const sites = headerValues(raw, 'sec-fetch-site');
  if (sites.length > 1) throw forbidden('more than one Sec-Fetch-Site header', 'use a browser');
  const site = sites[0];
  if (site !== undefined && site !== 'same-origin' && !(safe && site === 'none'))
    throw forbidden(
      `a ${site} request to the dashboard is refused`,
      'open the link `authsome ui` printed directly, not from another page',
    );
  return origin;
}

/**
 * The session cookie's value. Several cookies of our name (one planted by another page of this
 * host, with a longer path) are refused rather than guessed between.
 */
export function readCookie(req: IncomingMessage, port: number): string | undefined {
  const name = cookieName(port);
  const found: string[] = [];
  for (const header of headerValues(req.rawHeaders, 'cookie'))
    for (const part of header.split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === name) found.push(part.slice(eq + 1).trim());
    }
  if (found.length > 1)
    throw forbidden(
      'more than one dashboard cookie was sent',
      "clear this site's cookies for 127.0.0.1, then run `authsome ui` again",
    );
  return found[0];
}

/** The Set-Cookie value of a session (HttpOnly, SameSite=Strict, Path=/ui) or of its removal. */
export function sessionCookie(port: number, value: string, maxAgeS: number): string {
  return `${cookieName(port)}=${value}; Path=/ui; Max-Age=${maxAgeS}; HttpOnly; SameSite=Strict`;
}

export function setSecurityHeaders(res: ServerResponse): void {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
}

export function sendUiJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  extra: Record<string, string> = {},
): void {
  const body = JSON.stringify(value);
  setSecurityHeaders(res);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...extra,
  });
  res.end(body);
}

export function sendUiError(res: ServerResponse, err: unknown): void {
  const e = isAppError(err) ? err : new AppError('ERR_INTERNAL', 'internal error', 'see server/daemon.log');
  if (!isAppError(err)) console.error('dashboard internal error:', err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendUiJson(res, e.status, { error: e.toJSON() }, { 'x-authsome-error': e.code });
}
