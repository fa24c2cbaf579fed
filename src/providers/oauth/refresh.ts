import { Secret } from '../../secret.js';
import { loginHint } from './errors.js';
import { isSuccess, postForm, replyFailure } from './http.js';
import type { PostContext } from './http.js';
import { toTokenSet } from './token-set.js';
import type { OAuthClientOptions, TokenSet } from './types.js';

export interface RefreshTokensOptions extends OAuthClientOptions {
  refreshToken: Secret;
}

/**
 * RFC 6749 §6. Every failure is ERR_TOKEN_REFRESH_FAILED (the proxy answers 502 with it). An
 * OAuthError with oauthError "invalid_grant" means the refresh token is dead (revoked, expired,
 * rotated away): only a new login helps. `transport: true` means try again later.
 */
export async function refreshTokens(opts: RefreshTokensOptions): Promise<TokenSet> {
  const form = new URLSearchParams({
    grant_type: 'refresh_token',
    refresh_token: opts.refreshToken.reveal(),
  });
  const ctx: PostContext = { what: 'token endpoint', failCode: 'ERR_TOKEN_REFRESH_FAILED' };
  const reply = await postForm(opts, opts.oauth.tokenUrl, form, ctx);
  if (!isSuccess(reply)) {
    const dead = reply.body['error'] === 'invalid_grant';
    throw replyFailure(
      reply,
      ctx,
      dead ? 'the provider no longer accepts the refresh token' : 'the token refresh failed',
      dead ? loginHint(opts.provider) : 'try again; if it keeps failing, log in again',
    );
  }
  return toTokenSet(reply.body, (opts.now ?? Date.now)(), 'ERR_TOKEN_REFRESH_FAILED', opts.refreshToken);
}

/**
 * Single flight: concurrent callers with the same key share one in-flight call and its outcome
 * (success or failure). Once it settles the key is free again, so `fn` should re-read the stored
 * tokens and return early when another caller has already refreshed them.
 */
export class RefreshCoordinator<T = TokenSet> {
  readonly #inFlight = new Map<string, Promise<T>>();

  refresh(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.#inFlight.get(key);
    if (running !== undefined) return running;
    const p = (async () => fn())();
    this.#inFlight.set(key, p);
    const clear = () => {
      if (this.#inFlight.get(key) === p) this.#inFlight.delete(key);
    };
    p.then(clear, clear);
    return p;
  }

  isRefreshing(key: string): boolean {
    return this.#inFlight.has(key);
  }

  get size(): number {
    return this.#inFlight.size;
  }
}
