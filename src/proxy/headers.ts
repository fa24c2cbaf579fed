import { AppError } from '../errors.js';

/**
 * Header handling on raw header lists (Node's rawHeaders: [name, value, name, value...]).
 * req.headers joins or drops duplicates, so every security decision reads the raw list (ARCHITECTURE).
 */

/** RFC 9110 7.6.1 hop-by-hop fields, plus Expect (Node already answered 100-continue). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
  'expect',
  'http2-settings',
  // Set by the proxy from the destination (RFC 9112 3.2.2: a proxy replaces Host from the target URI).
  'host',
]);

/** Every value of one header (name lower-case), in order. */
export function rawValues(raw: readonly string[], lowerName: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === lowerName.length && n.toLowerCase() === lowerName) out.push(raw[i + 1]!);
  }
  return out;
}

/** The single value of a header that must not repeat; undefined when absent, 400 when duplicated. */
export function singleValue(raw: readonly string[], lowerName: string): string | undefined {
  const v = rawValues(raw, lowerName);
  if (v.length > 1) throw new AppError('ERR_PROXY_BAD_REQUEST', `duplicate ${lowerName} header`);
  return v[0];
}

export function checkHeaderCount(raw: readonly string[], max: number): void {
  if (raw.length / 2 > max) {
    throw new AppError('ERR_PROXY_HEADERS_TOO_LARGE', `more than ${max} request headers`);
  }
}

/** Bytes of a request line as counted by checkRequestHead: `METHOD SP target SP HTTP/1.1 CRLF`. */
export function requestLineBytes(method: string | undefined, target: string | undefined): number {
  return (method?.length ?? 0) + (target?.length ?? 0) + 12;
}

/**
 * The head checks every request passes, on the raw list (Node's parser already refuses CL+TE and
 * conflicting Content-Length; this does not rely on its leniency settings): the header count, and
 * at most one Content-Length / Transfer-Encoding / Host / Proxy-Authorization /
 * X-Authsome-Connection, with Transfer-Encoding exactly "chunked" and never beside Content-Length.
 * Returns whether the head announces a body (chunked, or a Content-Length other than 0).
 */
export function checkRequestHead(
  raw: readonly string[],
  maxCount: number,
  maxBytes = Infinity,
  lineBytes = 0,
): boolean {
  checkHeaderCount(raw, maxCount);
  // The head's size counted the same way on every path (absolute-form, CONNECT, inside a tunnel): the
  // request line and each field as `name: value` CRLF (Node's rawHeaders are latin1: one char, one byte).
  let bytes = lineBytes;
  let cl = 0;
  let body = false;
  let te = 0;
  let host = 0;
  let pa = 0;
  let conn = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    bytes += n.length + raw[i + 1]!.length + 4;
    // Length first: most names cannot be one of these, so they are never lower-cased.
    switch (n.length) {
      case 4:
        if (n.toLowerCase() === 'host') host++;
        break;
      case 14:
        if (n.toLowerCase() === 'content-length') {
          cl++;
          body = raw[i + 1]!.trim() !== '0';
        }
        break;
      case 17:
        if (n.toLowerCase() === 'transfer-encoding') {
          te++;
          body = true;
          if (raw[i + 1]!.trim().toLowerCase() !== 'chunked')
            throw new AppError('ERR_PROXY_BAD_REQUEST', 'Transfer-Encoding must be exactly "chunked"');
        }
        break;
      case 19:
        if (n.toLowerCase() === 'proxy-authorization') pa++;
        break;
      case 21:
        if (n.toLowerCase() === 'x-authsome-connection') conn++;
        break;
    }
  }
  if (bytes > maxBytes)
    throw new AppError('ERR_PROXY_HEADERS_TOO_LARGE', `the request head is larger than ${maxBytes} bytes`);
  if (cl > 1 || te > 1 || (cl > 0 && te > 0))
    throw new AppError(
      'ERR_PROXY_BAD_REQUEST',
      'ambiguous message framing (Content-Length / Transfer-Encoding)',
    );
  if (host > 1 || pa > 1 || conn > 1)
    throw new AppError(
      'ERR_PROXY_BAD_REQUEST',
      'Host, Proxy-Authorization and X-Authsome-Connection may each appear once',
    );
  return body;
}

/**
 * Adds the names one Connection value lists (RFC 9110 7.6.1), lower-case, to `into`. Names that are
 * hop-by-hop anyway (keep-alive, close...) are left out, so the usual value adds nothing.
 */
function addConnectionTokens(
  into: Set<string> | undefined,
  value: string,
  hop: ReadonlySet<string>,
): Set<string> | undefined {
  for (const t of value.split(',')) {
    const tok = t.trim().toLowerCase();
    if (tok && tok !== 'close' && !hop.has(tok)) (into ??= new Set()).add(tok);
  }
  return into;
}

/** Drops the [name, value] pairs whose name Connection listed (rare: most clients list none). */
function withoutListed(flat: string[], listed: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    if (!listed.has(flat[i]!.toLowerCase())) out.push(flat[i]!, flat[i + 1]!);
  }
  return out;
}

export interface StripOptions {
  /** Lower-case names the provider injects: every caller copy is removed. */
  readonly injected?: ReadonlySet<string>;
}

/**
 * Request headers for upstream: without hop-by-hop fields (and the names Connection lists), without
 * Proxy-* and X-Authsome-*, and without any caller copy of an injected header. Returns a flat list.
 */
export function upstreamRequestHeaders(raw: readonly string[], opts: StripOptions = {}): string[] {
  const injected = opts.injected;
  const out: string[] = [];
  let listed: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') listed = addConnectionTokens(listed, raw[i + 1]!, HOP_BY_HOP);
      continue;
    }
    if (lower.startsWith('proxy-') || lower.startsWith('x-authsome-')) continue;
    if (injected?.has(lower)) continue;
    out.push(name, raw[i + 1]!);
  }
  return listed ? withoutListed(out, listed) : out;
}

const RESPONSE_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
]);

/** Response headers for the client: without hop-by-hop fields; Node frames the body itself. */
export function clientResponseHeaders(raw: readonly string[]): string[] {
  const out: string[] = [];
  let listed: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (RESPONSE_HOP.has(lower)) {
      if (lower === 'connection') listed = addConnectionTokens(listed, raw[i + 1]!, RESPONSE_HOP);
      continue;
    }
    if (lower.startsWith('proxy-')) continue;
    out.push(name, raw[i + 1]!);
  }
  return listed ? withoutListed(out, listed) : out;
}
