import { createHash, randomBytes } from 'node:crypto';
import { checkEndpoint } from './endpoint.js';
import { OAuthError, loginHint } from './errors.js';
import { isSuccess, postForm, replyFailure } from './http.js';
import type { PostContext } from './http.js';
import { scopeParam, toTokenSet } from './token-set.js';
import type { OAuthClientOptions, TokenSet } from './types.js';

/** RFC 7636 §4.1: 32 random octets, base64url → 43 characters of the unreserved set. */
export function createCodeVerifier(): string {
  return randomBytes(32).toString('base64url');
}

/** RFC 7636 §4.2, S256: BASE64URL(SHA256(ASCII(code_verifier))). */
export function codeChallengeS256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/** 128 bits of CSRF protection (RFC 6749 §10.12, RFC 8252 §8.9). */
export function createState(): string {
  return randomBytes(16).toString('base64url');
}

export interface AuthorizeUrlInput {
  oauth: OAuthClientOptions['oauth'];
  clientId: string;
  redirectUri: string;
  state: string;
  codeChallenge: string;
  scopes?: string[] | undefined;
  allowInsecureLoopback?: boolean | undefined;
}

/**
 * RFC 6749 §4.1.1 + RFC 7636 §4.3. PKCE is always sent: a server without it ignores the extra
 * parameters (RFC 7636 §5). Query parameters already in the provider's URL are kept.
 */
export function buildAuthorizeUrl(input: AuthorizeUrlInput): string {
  if (input.oauth.authorizeUrl === undefined) {
    throw new OAuthError(
      'ERR_INPUT_INVALID',
      'this provider does not offer the browser (pkce) login',
      'choose another --flow',
    );
  }
  const url = checkEndpoint(input.oauth.authorizeUrl, 'authorization endpoint', input.allowInsecureLoopback);
  const q = url.searchParams;
  q.set('response_type', 'code');
  q.set('client_id', input.clientId);
  q.set('redirect_uri', input.redirectUri);
  const scope = scopeParam(input.scopes ?? input.oauth.scopes);
  if (scope !== undefined) q.set('scope', scope);
  q.set('state', input.state);
  q.set('code_challenge', input.codeChallenge);
  q.set('code_challenge_method', 'S256');
  return url.href;
}

export interface ExchangeCodeOptions extends OAuthClientOptions {
  code: string;
  codeVerifier: string;
  redirectUri: string;
}

/** RFC 6749 §4.1.3 with the RFC 7636 §4.5 code_verifier. */
export async function exchangeCode(opts: ExchangeCodeOptions): Promise<TokenSet> {
  const form = new URLSearchParams({
    grant_type: 'authorization_code',
    code: opts.code,
    redirect_uri: opts.redirectUri,
    code_verifier: opts.codeVerifier,
  });
  const ctx: PostContext = { what: 'token endpoint', failCode: 'ERR_OAUTH_FAILED' };
  const reply = await postForm(opts, opts.oauth.tokenUrl, form, ctx);
  if (!isSuccess(reply)) {
    throw replyFailure(reply, ctx, 'the provider refused the authorization code', loginHint(opts.provider));
  }
  return toTokenSet(reply.body, (opts.now ?? Date.now)(), 'ERR_OAUTH_FAILED');
}
