import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { AppError, isAppError } from '../errors.js';

/**
 * The proxy's one error boundary: anything thrown becomes an AppError (whose code fixes the HTTP
 * status through the catalogue in src/errors.ts) and is written as JSON plus X-Authsome-Error.
 * Messages come from our own AppErrors only; foreign error text (which could carry a URL with an
 * injected query secret) is never echoed.
 */

const TLS_CODE = /CERT|SSL|TLS|SIGNATURE|ISSUER|SELF_SIGNED|ALTNAME|EPROTO|HANDSHAKE/;
const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);
const FAILED_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'HPE_INVALID_CONSTANT',
]);

export function toAppError(e: unknown): AppError {
  if (isAppError(e)) return e;
  const code = String((e as { code?: unknown } | null)?.code ?? '');
  if (TIMEOUT_CODES.has(code))
    return new AppError('ERR_UPSTREAM_TIMEOUT', 'the upstream did not answer in time', undefined, {
      cause: e,
    });
  if (TLS_CODE.test(code))
    return new AppError('ERR_UPSTREAM_TLS', 'the upstream TLS certificate could not be verified', undefined, {
      cause: e,
    });
  // undici's HTTPParserError (a response that is not HTTP/1.1: obs-fold, HTTP/0.9) carries no code.
  // zlib's Z_* codes: a compressed body the upstream sent broken (decoded for the scanner, relay.ts).
  const parser = (e as { name?: unknown } | null)?.name === 'HTTPParserError' || code.startsWith('Z_');
  if (parser || FAILED_CODES.has(code) || code.startsWith('HPE_') || code.startsWith('UND_ERR')) {
    return new AppError('ERR_UPSTREAM_FAILED', 'the upstream connection failed', undefined, { cause: e });
  }
  return new AppError('ERR_INTERNAL', 'internal proxy error', undefined, { cause: e });
}

export interface ErrorReply {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export function errorReply(err: AppError, requestId?: string): ErrorReply {
  const body = JSON.stringify({ error: { code: err.code, message: err.message } });
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'x-authsome-error': err.code,
  };
  if (requestId !== undefined) headers['x-authsome-request-id'] = requestId;
  if (err.status === 407) headers['proxy-authenticate'] = 'Basic realm="authsome"';
  if (err.retryAfterS !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(err.retryAfterS)));
  return { status: err.status, headers, body };
}

/** On an http.ServerResponse; once headers went out, the only honest signal left is a reset. */
export function sendError(res: ServerResponse, e: unknown, requestId?: string): AppError {
  const err = toAppError(e);
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return err;
  }
  const r = errorReply(err, requestId);
  // Errors on the proxy leg close the connection: its framing may be unsure (unread body).
  res.shouldKeepAlive = false;
  res.writeHead(r.status, { ...r.headers, connection: 'close' });
  res.end(r.body);
  return err;
}

/** On a raw socket (CONNECT, upgrades, parse errors), then close it. */
export function writeRawError(socket: Duplex, e: unknown, requestId?: string): AppError {
  const err = toAppError(e);
  if (socket.writable && !socket.destroyed) {
    const r = errorReply(err, requestId);
    let head = `HTTP/1.1 ${r.status} ${STATUS_CODES[r.status] ?? 'Error'}\r\n`;
    for (const [k, v] of Object.entries(r.headers)) head += `${k}: ${v}\r\n`;
    socket.end(`${head}connection: close\r\n\r\n${r.body}`);
    // A peer that never reads or closes must not hold the socket open.
    setTimeout(() => socket.destroy(), 2000).unref();
  } else {
    socket.destroy();
  }
  return err;
}
