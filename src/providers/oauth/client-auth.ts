import type { OAuthClientOptions } from './types.js';

/** application/x-www-form-urlencoded encoding of one value (RFC 6749 Appendix B). */
export function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'none';

/**
 * The method actually used. Without a secret the client is public (RFC 6749 §2.1) and only sends
 * client_id, whatever the provider declares (GitHub's device flow needs no secret). With a secret
 * and no declaration, Basic — the method every server must support (RFC 6749 §2.3.1).
 */
export function clientAuthMethod(opts: Pick<OAuthClientOptions, 'oauth' | 'clientSecret'>): ClientAuthMethod {
  if (opts.clientSecret === undefined || opts.oauth.clientAuth === 'none') return 'none';
  return opts.oauth.clientAuth ?? 'client_secret_basic';
}

/**
 * Adds client authentication to a token-endpoint request (RFC 6749 §2.3.1): Basic with the
 * form-encoded id and secret, or both in the body; a public client sends client_id in the body
 * (RFC 6749 §3.2.1, RFC 8628 §3.1/§3.4).
 */
export function applyClientAuth(
  opts: Pick<OAuthClientOptions, 'oauth' | 'clientId' | 'clientSecret'>,
  form: URLSearchParams,
  headers: Record<string, string>,
): void {
  const method = clientAuthMethod(opts);
  if (method === 'client_secret_basic' && opts.clientSecret !== undefined) {
    const pair = `${formEncode(opts.clientId)}:${formEncode(opts.clientSecret.reveal())}`;
    headers['authorization'] = `Basic ${Buffer.from(pair, 'utf8').toString('base64')}`;
    return;
  }
  form.set('client_id', opts.clientId);
  if (method === 'client_secret_post' && opts.clientSecret !== undefined) {
    form.set('client_secret', opts.clientSecret.reveal());
  }
}
