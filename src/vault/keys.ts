import { assertName, isValidName } from '../names.js';

/**
 * Record-key encoding (SPEC section 3). Every variable segment is a validated name, and names can
 * never contain '/', so splitting on '/' recovers the parts exactly: the encoding is injective and
 * `profile/alice/` is never a prefix of any key under `profile/alice2/`.
 */

export const KEYCHECK_KEY = 'meta/keycheck';
/** The audit log's head (seq, hash) as of the last daemon start or stop (daemon/audit-anchor.ts). */
export const AUDIT_HEAD_KEY = 'meta/audit-head';

const SESSION_HASH = /^[0-9a-f]{64}$/;

export type ParsedKey =
  | { kind: 'connection'; handle: string; provider: string; connection: string }
  | { kind: 'default'; handle: string; provider: string }
  | { kind: 'oauth-client'; handle: string; provider: string }
  | { kind: 'registry'; handle: string }
  | { kind: 'session'; hash: string }
  | { kind: 'provider'; name: string }
  | { kind: 'keycheck' }
  | { kind: 'audit-head' };

export function profilePrefix(handle: string): string {
  return `profile/${assertName('profile', handle)}/`;
}

export function connectionKey(handle: string, provider: string, connection: string): string {
  return `${profilePrefix(handle)}conn/${assertName('provider', provider)}/${assertName('connection', connection)}`;
}

export function defaultKey(handle: string, provider: string): string {
  return `${profilePrefix(handle)}default/${assertName('provider', provider)}`;
}

export function oauthClientKey(handle: string, provider: string): string {
  return `${profilePrefix(handle)}oauth-client/${assertName('provider', provider)}`;
}

export function registryKey(handle: string): string {
  return `registry/${assertName('profile', handle)}`;
}

/** The hash is computed by our own code (sha256 of a session token), so a bad one is a bug: TypeError. */
export function sessionKey(hashHex: string): string {
  if (!SESSION_HASH.test(hashHex)) throw new TypeError('session key needs a lowercase sha256 hex digest');
  return `session/${hashHex}`;
}

export function providerKey(name: string): string {
  return `provider/${assertName('provider', name)}`;
}

/** Parses a full record key; undefined for anything that is not exactly one of the known shapes. */
export function parseKey(key: string): ParsedKey | undefined {
  if (key === KEYCHECK_KEY) return { kind: 'keycheck' };
  if (key === AUDIT_HEAD_KEY) return { kind: 'audit-head' };
  const parts = key.split('/');
  const [head, a, b, c, d] = parts;
  switch (head) {
    case 'registry':
      return parts.length === 2 && isValidName(a) ? { kind: 'registry', handle: a } : undefined;
    case 'provider':
      return parts.length === 2 && isValidName(a) ? { kind: 'provider', name: a } : undefined;
    case 'session':
      return parts.length === 2 && a !== undefined && SESSION_HASH.test(a)
        ? { kind: 'session', hash: a }
        : undefined;
    case 'profile':
      return parseProfileKey(parts.length, a, b, c, d);
    default:
      return undefined;
  }
}

function parseProfileKey(
  n: number,
  handle: string | undefined,
  kind: string | undefined,
  provider: string | undefined,
  connection: string | undefined,
): ParsedKey | undefined {
  if (!isValidName(handle) || !isValidName(provider)) return undefined;
  if (kind === 'conn' && n === 5 && isValidName(connection)) {
    return { kind: 'connection', handle, provider, connection };
  }
  if (kind === 'default' && n === 4) return { kind: 'default', handle, provider };
  if (kind === 'oauth-client' && n === 4) return { kind: 'oauth-client', handle, provider };
  return undefined;
}

/**
 * LevelDB bounds selecting exactly the keys that start with prefix. '0' (U+0030) is the code point
 * right after '/' (U+002F), and UTF-8 preserves code-point order bytewise, so [P/, P0) is the prefix.
 */
export function prefixRange(prefix: string): { gte: string; lt: string } {
  if (!prefix.endsWith('/')) throw new TypeError(`prefix must end with '/': ${JSON.stringify(prefix)}`);
  return { gte: prefix, lt: `${prefix.slice(0, -1)}0` };
}
