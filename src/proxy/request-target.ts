import type { IncomingMessage } from 'node:http';
import { AppError } from '../errors.js';
import type { Tunnel } from './context.js';
import {
  hostHeader,
  parseAbsoluteHttp,
  parseAuthority,
  parseOriginTarget,
  type Authority,
  type Target,
} from './destination.js';
import { rawValues, singleValue } from './headers.js';

export interface ParsedRequest {
  readonly authority: Authority;
  readonly target: Target;
  /** true inside an intercepted tunnel (TLS to the client and to upstream). */
  readonly secure: boolean;
  /** The Host header value sent upstream. */
  readonly host: string;
}

const REFUSED_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);

/**
 * Where this request goes. Outside a tunnel: the absolute-form URI (origin-form is a request to
 * the proxy itself: 400). Inside: the CONNECT authority, and the inner Host must name it (421).
 */
export function parseRequest(req: IncomingMessage, tunnel: Tunnel | undefined): ParsedRequest {
  const method = req.method ?? '';
  // TRACE would echo the injected credential back to the caller.
  if (REFUSED_METHODS.has(method)) throw new AppError('ERR_PROXY_BAD_REQUEST', `${method} is not proxied`);
  const url = req.url ?? '';
  if (!tunnel) {
    if (url.startsWith('/') || url === '*') {
      throw new AppError(
        'ERR_PROXY_ORIGIN_FORM',
        'this is a proxy: send absolute-form requests (http://host/path) or CONNECT',
      );
    }
    singleValue(req.rawHeaders, 'host');
    const { authority, target } = parseAbsoluteHttp(url);
    return { authority, target, secure: false, host: hostHeader(authority, 80) };
  }
  const hosts = rawValues(req.rawHeaders, 'host');
  if (hosts.length !== 1) throw new AppError('ERR_PROXY_BAD_REQUEST', 'exactly one Host header is required');
  const a = tunnel.authority;
  if (hosts[0] !== tunnel.hostOk) {
    let inner: Authority;
    try {
      inner = parseAuthority(hosts[0]!, 443);
    } catch {
      throw misdirected();
    }
    if (inner.host !== a.host || inner.port !== a.port) throw misdirected();
    tunnel.hostOk = hosts[0]!;
  }
  return { authority: a, target: parseOriginTarget(url), secure: true, host: hostHeader(a, 443) };
}

function misdirected(): AppError {
  return new AppError('ERR_PROXY_MISDIRECTED', 'the Host header does not name the CONNECT destination');
}
