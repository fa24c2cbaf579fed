import { errors } from 'undici';
import { describe, expect, it } from 'vitest';
import { AppError, ERROR_CODES } from '../../../src/errors.js';
import { errorReply, toAppError } from '../../../src/proxy/respond.js';

const err = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('toAppError', () => {
  it.each([
    ['UND_ERR_CONNECT_TIMEOUT', 'ERR_UPSTREAM_TIMEOUT', 504],
    ['UND_ERR_HEADERS_TIMEOUT', 'ERR_UPSTREAM_TIMEOUT', 504],
    ['UND_ERR_BODY_TIMEOUT', 'ERR_UPSTREAM_TIMEOUT', 504],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'ERR_UPSTREAM_TLS', 502],
    ['CERT_HAS_EXPIRED', 'ERR_UPSTREAM_TLS', 502],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'ERR_UPSTREAM_TLS', 502],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_UPSTREAM_TLS', 502],
    ['ECONNREFUSED', 'ERR_UPSTREAM_FAILED', 502],
    ['ECONNRESET', 'ERR_UPSTREAM_FAILED', 502],
    ['ENOTFOUND', 'ERR_UPSTREAM_FAILED', 502],
    ['UND_ERR_SOCKET', 'ERR_UPSTREAM_FAILED', 502],
    ['HPE_INVALID_CHUNK_SIZE', 'ERR_UPSTREAM_FAILED', 502],
    ['Z_DATA_ERROR', 'ERR_UPSTREAM_FAILED', 502],
    ['SOMETHING_ELSE', 'ERR_INTERNAL', 500],
  ])('%s → %s (%d)', (code, mapped, status) => {
    const e = toAppError(err(code));
    expect(e.code).toBe(mapped);
    expect(e.status).toBe(status);
  });

  it("undici's parser error (an upstream answer that is not HTTP/1.1, e.g. obs-fold) is a 502, not a 500", () => {
    const e = toAppError(new errors.HTTPParserError('Response does not match the HTTP/1.1 protocol'));
    expect(e.code).toBe('ERR_UPSTREAM_FAILED');
    expect(e.status).toBe(502);
  });

  it('keeps AppErrors as they are', () => {
    const a = new AppError('ERR_PROXY_LOOP', 'loop');
    expect(toAppError(a)).toBe(a);
  });

  it('never echoes a foreign error message (it may carry a URL with a secret)', () => {
    const e = toAppError(err('ECONNRESET', 'failed https://x/?key=sk-canary'));
    expect(e.message).not.toContain('sk-canary');
    expect(toAppError(new Error('boom sk-canary')).message).not.toContain('sk-canary');
  });
});

describe('errorReply', () => {
  it('JSON body, X-Authsome-Error, request id; status from the one catalogue', () => {
    const r = errorReply(new AppError('ERR_PROXY_CONNECTION_DENIED', 'no'), 'rid');
    expect(r.status).toBe(ERROR_CODES.ERR_PROXY_CONNECTION_DENIED.status);
    expect(JSON.parse(r.body)).toEqual({ error: { code: 'ERR_PROXY_CONNECTION_DENIED', message: 'no' } });
    expect(r.headers).toMatchObject({
      'x-authsome-error': 'ERR_PROXY_CONNECTION_DENIED',
      'x-authsome-request-id': 'rid',
      'content-type': 'application/json',
    });
    expect(r.headers['proxy-authenticate']).toBeUndefined();
  });

  it('407 carries Proxy-Authenticate', () => {
    for (const code of ['ERR_PROXY_AUTH_REQUIRED', 'ERR_SESSION_INVALID'] as const) {
      expect(errorReply(new AppError(code, 'who')).headers['proxy-authenticate']).toBe(
        'Basic realm="authsome"',
      );
    }
  });

  it.each([
    ['ERR_PROXY_BAD_REQUEST', 400],
    ['ERR_PROXY_ORIGIN_FORM', 400],
    ['ERR_PROXY_DESTINATION_DENIED', 403],
    ['ERR_PROXY_LOOP', 403],
    ['ERR_PROXY_AUTH_REQUIRED', 407],
    ['ERR_PROXY_MISDIRECTED', 421],
    ['ERR_PROXY_HEADERS_TOO_LARGE', 431],
    ['ERR_UPSTREAM_FAILED', 502],
    ['ERR_UPSTREAM_TLS', 502],
    ['ERR_AUDIT_UNAVAILABLE', 503],
    ['ERR_VAULT_SEALED', 503],
    ['ERR_UPSTREAM_TIMEOUT', 504],
  ] as const)('%s is %d (SPEC section 5 table)', (code, status) => {
    expect(errorReply(new AppError(code, 'm')).status).toBe(status);
  });
});
