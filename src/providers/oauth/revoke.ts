import type { Secret } from '../../secret.js';
import { isSuccess, postForm, replyFailure } from './http.js';
import type { PostContext } from './http.js';
import type { OAuthClientOptions } from './types.js';

export interface RevokeTokenOptions extends OAuthClientOptions {
  token: Secret;
  hint: 'refresh_token' | 'access_token';
}

/**
 * RFC 7009 §2.1. Returns false when the provider has no revocation endpoint, true when it
 * answered 200 — which it also does for a token that was already invalid (§2.2). Revoking a
 * refresh token revokes its access tokens too where the server supports that (§2.1), so logout
 * should revoke the refresh token when there is one. Failures throw ERR_OAUTH_FAILED; the caller
 * still deletes its local copy.
 */
export async function revokeToken(opts: RevokeTokenOptions): Promise<boolean> {
  const url = opts.oauth.revokeUrl;
  if (url === undefined) return false;
  const form = new URLSearchParams({ token: opts.token.reveal(), token_type_hint: opts.hint });
  const ctx: PostContext = { what: 'revocation endpoint', failCode: 'ERR_OAUTH_FAILED' };
  const reply = await postForm(opts, url, form, ctx);
  if (!isSuccess(reply)) throw replyFailure(reply, ctx, 'the provider did not revoke the token');
  return true;
}
