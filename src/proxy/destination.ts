import { isIPv4, isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';
import { AppError } from '../errors.js';

/**
 * The one destination canonicaliser (SPEC section 5, issue 6 item 1). Every decision about where a
 * request goes — provider match, interception, SNI and Host checks, loop and address checks — uses
 * its output, so two spellings of one place can never be judged differently. It refuses rather than
 * repairs: anything a URL parser would rewrite (userinfo, percent-encoding, backslashes, numeric IPv4
 * shorthands, IDN in Unicode) is an error, never a guess.
 */
export type HostKind = 'name' | 'ipv4' | 'ipv6';

export interface Authority {
  /** Lower-case name without trailing dot, dotted-quad IPv4, or bracketed IPv6 ("[::1]"). */
  readonly host: string;
  readonly port: number;
  readonly kind: HostKind;
}

const bad = (message: string): AppError => new AppError('ERR_PROXY_BAD_REQUEST', message);

// Labels: letters, digits, '-' and '_' (seen in the wild on tunnelled hosts), no edge hyphen.
const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;
// A last label that is all digits or hex is read as an IPv4 number by WHATWG URL and inet_aton.
const NUMERIC_LABEL = /^(?:\d+|0x[0-9a-f]*)$/;
const AUTHORITY_CHARS = /^[A-Za-z0-9._\-:[\]]+$/;

/** Canonical host, or throws ERR_PROXY_BAD_REQUEST. Input must already be free of the port. */
export function canonicalHost(raw: string): { host: string; kind: HostKind } {
  if (raw.length === 0) throw bad('empty host');
  if (raw.length > 260 || !AUTHORITY_CHARS.test(raw))
    throw bad('host contains characters that are not allowed');
  const h = raw.toLowerCase();
  if (h.startsWith('[')) {
    const inner = h.slice(1, -1);
    if (!h.endsWith(']') || !isIPv6(inner)) throw bad('malformed IPv6 literal');
    return { host: h, kind: 'ipv6' };
  }
  if (isIPv4(h)) return { host: h, kind: 'ipv4' };
  const name = h.endsWith('.') ? h.slice(0, -1) : h;
  if (name.length === 0 || name.length > 253) throw bad('host name has an invalid length');
  const labels = name.split('.');
  for (const l of labels) if (!LABEL.test(l)) throw bad('host name has an invalid label');
  if (NUMERIC_LABEL.test(labels[labels.length - 1]!))
    throw bad('numeric host that is not a dotted-quad IPv4 address');
  // An A-label that is not valid Punycode (or not in its canonical form) is refused by URL parsers
  // (undici's origin among them) or read as another name: never a destination.
  if (name.includes('xn--') && domainToASCII(name) !== name) throw bad('host name has an invalid IDN label');
  return { host: name, kind: 'name' };
}

/** 1-65535, decimal, no sign, no leading zero. */
export function parsePort(raw: string): number {
  if (!/^[1-9]\d{0,4}$/.test(raw)) throw bad('invalid port');
  const n = Number(raw);
  if (n > 65535) throw bad('invalid port');
  return n;
}

/**
 * "host:port" (CONNECT authority, Host header, absolute-URI authority). With defaultPort undefined
 * the port is required (CONNECT, RFC 9110 9.3.6).
 */
export function parseAuthority(raw: string, defaultPort?: number): Authority {
  const key = `${defaultPort ?? ''}|${raw}`;
  const known = parsed.get(key);
  if (known) return known;
  const a = Object.freeze(parseAuthorityUncached(raw, defaultPort));
  if (parsed.size >= PARSED_MAX) parsed.clear();
  parsed.set(key, a);
  return a;
}

/**
 * Accepted authorities by their raw spelling: keep-alive clients send the same few on every
 * request, and the answer is a pure function of the bytes. Refusals are not kept (they throw again).
 */
const parsed = new Map<string, Authority>();
const PARSED_MAX = 4096;

function parseAuthorityUncached(raw: string, defaultPort: number | undefined): Authority {
  if (raw.includes('@')) throw bad('userinfo is not allowed in the authority');
  if (raw.includes('%')) throw bad('percent-encoding is not allowed in the authority');
  if (raw.includes('\\')) throw bad('backslashes are not allowed in the authority');
  let hostPart: string;
  let portPart: string | undefined;
  if (raw.startsWith('[')) {
    const close = raw.indexOf(']');
    if (close < 0) throw bad('malformed IPv6 literal');
    hostPart = raw.slice(0, close + 1);
    const rest = raw.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) throw bad('malformed authority');
      portPart = rest.slice(1);
    }
  } else {
    const colon = raw.indexOf(':');
    if (colon !== raw.lastIndexOf(':')) throw bad('IPv6 literals must be in brackets');
    hostPart = colon < 0 ? raw : raw.slice(0, colon);
    portPart = colon < 0 ? undefined : raw.slice(colon + 1);
  }
  const { host, kind } = canonicalHost(hostPart);
  let port: number;
  if (portPart === undefined) {
    if (defaultPort === undefined) throw bad('the authority needs a port');
    port = defaultPort;
  } else {
    port = parsePort(portPart);
  }
  return { host, port, kind };
}

export function formatAuthority(a: { host: string; port: number }): string {
  return `${a.host}:${a.port}`;
}

/** canonicalise(canonicalise(x)) === canonicalise(x) for every accepted x (property-tested). */
export function canonicalise(raw: string, defaultPort?: number): string {
  return formatAuthority(parseAuthority(raw, defaultPort));
}

/** The Host header value for an upstream request (port omitted when it is the scheme default). */
export function hostHeader(a: { host: string; port: number }, defaultPort: number): string {
  return a.port === defaultPort ? a.host : `${a.host}:${a.port}`;
}

export interface Target {
  /** path + query as sent upstream (origin-form). */
  readonly pathAndQuery: string;
  /** Path without query: what matching and the audit log see. */
  readonly path: string;
}

/**
 * Checks an origin-form request target. Dot segments (raw or %2e-encoded) and backslashes are
 * refused: upstream servers normalise them differently, which would make a path-prefix match
 * (providers may declare one) mean something else upstream.
 */
export function parseOriginTarget(raw: string): Target {
  if (!raw.startsWith('/')) throw bad('request target must be origin-form inside a tunnel');
  if (raw.includes('#') || raw.includes('\\'))
    throw bad('request target contains characters that are not allowed');
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  // A dot segment needs a '.' or a '%' (%2e): most API paths have neither.
  if (!path.includes('.') && !path.includes('%')) return { pathAndQuery: raw, path };
  for (const seg of path.split('/')) {
    const s = seg.replace(/%2e/gi, '.');
    if (s === '.' || s === '..') throw bad('dot segments are not allowed in the path');
  }
  return { pathAndQuery: raw, path };
}

/** An absolute-form http:// target (RFC 9112 3.2.2), split without a URL parser that would repair it. */
export function parseAbsoluteHttp(raw: string): { authority: Authority; target: Target } {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)(.*)$/.exec(raw);
  if (!m) throw bad('malformed absolute request target');
  const scheme = m[1]!.toLowerCase();
  if (scheme === 'https') throw bad('send https:// requests through CONNECT (set HTTPS_PROXY)');
  if (scheme !== 'http') throw bad('only http:// targets are forwarded; use CONNECT for TLS');
  const authority = parseAuthority(m[2]!, 80);
  const rest = m[3]!;
  const target = parseOriginTarget(rest === '' ? '/' : rest.startsWith('?') ? `/${rest}` : rest);
  return { authority, target };
}
