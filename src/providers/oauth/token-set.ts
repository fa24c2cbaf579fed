import { Secret } from '../../secret.js';
import { OAuthError } from './errors.js';
import type { OAuthFailCode, TokenSet } from './types.js';

/**
 * A successful access-token reply (RFC 6749 §5.1) as a TokenSet. expires_in may arrive as a string
 * (form-encoded replies); a missing or nonsensical one leaves expiresAt unset. `keepRefresh` is the
 * refresh token to keep when the reply has none (RFC 6749 §6: the server MAY issue a new one).
 */
export function toTokenSet(
  body: Record<string, unknown>,
  now: number,
  failCode: OAuthFailCode,
  keepRefresh?: Secret,
): TokenSet {
  const access = body['access_token'];
  if (typeof access !== 'string' || access === '') {
    throw new OAuthError(failCode, "the provider's token endpoint answered without an access_token");
  }
  const set: TokenSet = { accessToken: new Secret(access) };
  const refresh = body['refresh_token'];
  if (typeof refresh === 'string' && refresh !== '') set.refreshToken = new Secret(refresh);
  else if (keepRefresh !== undefined) set.refreshToken = keepRefresh;
  const expiresIn = Number(body['expires_in']);
  if (
    body['expires_in'] !== undefined &&
    body['expires_in'] !== '' &&
    Number.isFinite(expiresIn) &&
    expiresIn > 0
  ) {
    set.expiresAt = now + Math.round(expiresIn * 1000);
  }
  if (typeof body['scope'] === 'string') set.scope = body['scope'];
  if (typeof body['token_type'] === 'string') set.tokenType = body['token_type'];
  return set;
}

const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** RFC 6749 §3.3: scope is a space-delimited list of scope-tokens; a malformed one is refused. */
export function scopeParam(scopes: readonly string[] | undefined): string | undefined {
  if (scopes === undefined || scopes.length === 0) return undefined;
  for (const s of scopes) {
    if (!SCOPE_TOKEN.test(s)) {
      throw new OAuthError(
        'ERR_INPUT_INVALID',
        `invalid OAuth scope ${JSON.stringify(s.slice(0, 64))}`,
        'scopes are separate words without spaces or quotes',
      );
    }
  }
  return scopes.join(' ');
}
