import { describe, expect, it } from 'vitest';
import { Secret } from '../../../src/secret.js';
import { AppError } from '../../../src/errors.js';
import { formEncode, refreshTokens, revokeToken } from '../../../src/providers/oauth.js';
import { findCanary } from '../../helpers/canary.js';
import { http, HttpResponse } from 'msw';
import { ISSUER, caught, errorText, mswFetch, oauth, serve, useMsw } from './msw.js';

const server = useMsw();
const RT = 'canary-rt-9b1e7d04c2';
const CS = 'canary-cs p@ss:w/rd+=';
const base = {
  clientId: 'my client:1',
  clientSecret: new Secret(CS),
  fetchImpl: mswFetch,
  refreshToken: new Secret(RT),
};

describe('client authentication (RFC 6749 §2.3.1)', () => {
  it('client_secret_basic: Basic over the form-encoded id and secret, nothing in the body', async () => {
    const seen = serve(server, '/token', [{ body: { access_token: 'at', token_type: 'bearer' } }]);
    await refreshTokens({ ...base, oauth: oauth({ clientAuth: 'client_secret_basic' }) });
    const r = seen[0]!;
    const expected = Buffer.from(`${formEncode('my client:1')}:${formEncode(CS)}`).toString('base64');
    expect(formEncode('my client:1')).toBe('my+client%3A1');
    expect(r.headers.get('authorization')).toBe(`Basic ${expected}`);
    expect(r.form.has('client_id')).toBe(false);
    expect(r.form.has('client_secret')).toBe(false);
    expect(r.headers.get('content-type')).toBe('application/x-www-form-urlencoded');
    expect(r.headers.get('accept')).toBe('application/json');
    expect(r.form.get('grant_type')).toBe('refresh_token');
    expect(r.form.get('refresh_token')).toBe(RT);
  });

  it('client_secret_post: id and secret in the body, no Authorization header', async () => {
    const seen = serve(server, '/token', [{ body: { access_token: 'at' } }]);
    await refreshTokens({ ...base, oauth: oauth({ clientAuth: 'client_secret_post' }) });
    expect(seen[0]!.headers.get('authorization')).toBeNull();
    expect(seen[0]!.form.get('client_id')).toBe('my client:1');
    expect(seen[0]!.form.get('client_secret')).toBe(CS);
  });

  it('none (or no secret at all): client_id only', async () => {
    const seen = serve(server, '/token', [{ body: { access_token: 'at' } }]);
    await refreshTokens({ ...base, oauth: oauth({ clientAuth: 'none' }) });
    const { clientSecret: _drop, ...publicClient } = base;
    await refreshTokens({ ...publicClient, oauth: oauth({ clientAuth: 'client_secret_post' }) });
    for (const r of seen) {
      expect(r.headers.get('authorization')).toBeNull();
      expect(r.form.get('client_id')).toBe('my client:1');
      expect(r.form.has('client_secret')).toBe(false);
    }
  });

  it('defaults to Basic when a secret is given and the provider declares nothing', async () => {
    const seen = serve(server, '/token', [{ body: { access_token: 'at' } }]);
    const { clientAuth: _c, ...noMethod } = oauth();
    await refreshTokens({ ...base, oauth: noMethod });
    expect(seen[0]!.headers.get('authorization')).toMatch(/^Basic /);
  });
});

describe('endpoint rules', () => {
  it('refuses plain http to a non-loopback host even with allowInsecureLoopback, before any request', async () => {
    const seen = serve(server, '/token', [{ body: { access_token: 'at' } }]);
    for (const tokenUrl of [
      'http://auth.example.test/token',
      'http://10.0.0.1/token',
      'http://localhost/token',
    ]) {
      const e = await caught(
        refreshTokens({ ...base, oauth: oauth({ tokenUrl }), allowInsecureLoopback: true }),
      );
      expect(e).toBeInstanceOf(AppError);
      expect(e.message).toContain('must use https');
    }
    const e = await caught(
      refreshTokens({ ...base, oauth: oauth({ tokenUrl: 'http://127.0.0.1:9/token' }) }),
    );
    expect(e.message).toContain('must use https');
    const e2 = await caught(
      refreshTokens({ ...base, oauth: oauth({ tokenUrl: 'https://u:p@auth.example.test/token' }) }),
    );
    expect(e2.message).toContain('credentials');
    expect(seen).toHaveLength(0);
  });

  it('does not follow redirects from the token endpoint', async () => {
    let hops = 0;
    server.use(
      http.post(`${ISSUER}/token`, () => {
        hops++;
        return new HttpResponse(null, {
          status: 307,
          headers: { location: 'https://elsewhere.example.test/steal' },
        });
      }),
    );
    const e = await caught(refreshTokens({ ...base, oauth: oauth() }));
    expect(e.code).toBe('ERR_TOKEN_REFRESH_FAILED');
    expect(e.transport).toBe(true);
    expect(hops).toBe(1);
  });
});

describe('reply parsing', () => {
  it('tolerates GitHub-style form-encoded replies', async () => {
    serve(server, '/token', [
      {
        form: true,
        body: { access_token: 'at-form', scope: 'repo', token_type: 'bearer', expires_in: '60' },
      },
    ]);
    const t = await refreshTokens({ ...base, oauth: oauth(), now: () => 1_000 });
    expect(t.accessToken.reveal()).toBe('at-form');
    expect(t.expiresAt).toBe(61_000);
    expect(t.scope).toBe('repo');
    expect(t.tokenType).toBe('bearer');
  });

  it('treats an error sent with HTTP 200 (GitHub) as an error', async () => {
    serve(server, '/token', [{ body: { error: 'invalid_grant' } }]);
    const e = await caught(refreshTokens({ ...base, oauth: oauth() }));
    expect(e.code).toBe('ERR_TOKEN_REFRESH_FAILED');
    expect(e.oauthError).toBe('invalid_grant');
  });

  it('never quotes an unreadable body, which may hold tokens', async () => {
    serve(server, '/token', [{ body: `{"access_token":"${RT}", broken` }]);
    const e = await caught(refreshTokens({ ...base, oauth: oauth() }));
    expect(e.message).toContain('unreadable');
    expect(findCanary(errorText(e), RT)).toBeUndefined();
  });

  it('scrubs secrets a provider echoes in error, error_description, in any encoding', async () => {
    const echo = `bad token ${RT} / ${Buffer.from(RT).toString('base64')} / ${encodeURIComponent(CS)} / \u001b[31m`;
    serve(server, '/token', [{ status: 400, body: { error: 'invalid_request', error_description: echo } }]);
    const e = await caught(refreshTokens({ ...base, oauth: oauth({ clientAuth: 'client_secret_post' }) }));
    const text = errorText(e);
    expect(findCanary(text, RT)).toBeUndefined();
    expect(findCanary(text, CS)).toBeUndefined();
    expect(e.message).toContain('[redacted]');
    expect(e.message).not.toContain('\u001b');
  });
});

describe('revokeToken (RFC 7009)', () => {
  it('posts token and token_type_hint with client auth and reports true', async () => {
    const seen = serve(server, '/revoke', [{ status: 200, body: '' }]);
    const ok = await revokeToken({ ...base, oauth: oauth(), token: new Secret(RT), hint: 'refresh_token' });
    expect(ok).toBe(true);
    expect(seen[0]!.form.get('token')).toBe(RT);
    expect(seen[0]!.form.get('token_type_hint')).toBe('refresh_token');
    expect(seen[0]!.headers.get('authorization')).toMatch(/^Basic /);
  });

  it('returns false without a revocation endpoint and throws ERR_OAUTH_FAILED on an error reply', async () => {
    const { revokeUrl: _r, ...noRevoke } = oauth();
    expect(await revokeToken({ ...base, oauth: noRevoke, token: new Secret(RT), hint: 'access_token' })).toBe(
      false,
    );
    serve(server, '/revoke', [{ status: 400, body: { error: 'unsupported_token_type' } }]);
    const e = await caught(
      revokeToken({ ...base, oauth: oauth(), token: new Secret(RT), hint: 'access_token' }),
    );
    expect(e.code).toBe('ERR_OAUTH_FAILED');
    expect(findCanary(errorText(e), RT)).toBeUndefined();
  });
});
