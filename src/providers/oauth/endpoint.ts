import type { OAuthFailCode } from './types.js';
import { OAuthError } from './errors.js';

const LOOPBACK_HOST = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])$/;

export function isLoopbackLiteral(hostname: string): boolean {
  return LOOPBACK_HOST.test(hostname);
}

/**
 * Every OAuth endpoint carries client secrets, codes or tokens, so it must be https (RFC 6749 §3.1,
 * §3.2; RFC 8252 §8.1). The only exception is plain http to a literal loopback address when the
 * caller explicitly allows it (tests). No userinfo (it would be sent as credentials), no fragment
 * (RFC 6749 §3.1).
 */
export function checkEndpoint(
  raw: string,
  what: string,
  allowInsecureLoopback: boolean | undefined,
  code: OAuthFailCode | 'ERR_INPUT_INVALID' = 'ERR_OAUTH_FAILED',
): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new OAuthError(code, `the provider's ${what} is not a valid URL`, 'fix the provider definition');
  }
  const insecureOk =
    url.protocol === 'http:' && allowInsecureLoopback === true && isLoopbackLiteral(url.hostname);
  if (url.protocol !== 'https:' && !insecureOk) {
    throw new OAuthError(code, `the provider's ${what} must use https`, 'fix the provider definition');
  }
  if (url.username !== '' || url.password !== '' || url.hash !== '') {
    throw new OAuthError(
      code,
      `the provider's ${what} must not contain credentials or a fragment`,
      'fix the provider definition',
    );
  }
  return url;
}
