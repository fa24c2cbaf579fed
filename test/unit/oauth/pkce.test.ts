import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { fetch } from 'undici';
import {
  buildAuthorizeUrl,
  codeChallengeS256,
  createCodeVerifier,
  createState,
  exchangeCode,
  startPkceFlow,
} from '../../../src/providers/oauth.js';
import type { PkceFlow } from '../../../src/providers/oauth.js';
import { caught, mswFetch, oauth, serve, useMsw } from './msw.js';

const server = useMsw();
const flows: PkceFlow[] = [];
afterEach(async () => {
  await Promise.all(flows.splice(0).map((f) => f.close()));
});
async function flow(): Promise<PkceFlow> {
  const f = await startPkceFlow({ oauth: oauth(), clientId: 'cid', host: '127.0.0.1', provider: 'github' });
  flows.push(f);
  return f;
}
/** Be the browser: hit the redirect URI as the provider would send it. */
async function callback(
  f: PkceFlow,
  params: Record<string, string>,
): Promise<{ status: number; html: string }> {
  const u = new URL(f.redirectUri);
  for (const [k, v] of Object.entries(params)) u.searchParams.append(k, v);
  const res = await fetch(u);
  return { status: res.status, html: await res.text() };
}
const stateOf = (f: PkceFlow) => new URL(f.authorizeUrl).searchParams.get('state') ?? '';

describe('PKCE primitives (RFC 7636)', () => {
  it('S256 matches the RFC 7636 Appendix B vector and base64url(sha256(verifier))', () => {
    expect(codeChallengeS256('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe(
      'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    );
    const v = createCodeVerifier();
    expect(v).toMatch(/^[A-Za-z0-9_-]{43}$/); // §4.1: 43..128 unreserved characters
    expect(codeChallengeS256(v)).toBe(createHash('sha256').update(v).digest('base64url'));
    expect(createCodeVerifier()).not.toBe(v);
  });

  it('state carries 128 random bits', () => {
    const s = createState();
    expect(Buffer.from(s, 'base64url')).toHaveLength(16);
    expect(createState()).not.toBe(s);
  });

  it("builds the authorize URL, keeping the provider's own query parameters", () => {
    const url = new URL(
      buildAuthorizeUrl({
        oauth: oauth({ authorizeUrl: 'https://auth.example.test/authorize?prompt=consent' }),
        clientId: 'cid',
        redirectUri: 'http://127.0.0.1:5555/callback',
        state: 'st',
        codeChallenge: 'ch',
        scopes: ['a', 'b'],
      }),
    );
    expect(Object.fromEntries(url.searchParams)).toEqual({
      prompt: 'consent',
      response_type: 'code',
      client_id: 'cid',
      redirect_uri: 'http://127.0.0.1:5555/callback',
      scope: 'a b',
      state: 'st',
      code_challenge: 'ch',
      code_challenge_method: 'S256',
    });
  });
});

describe('startPkceFlow loopback redirect (RFC 8252 §7.3)', () => {
  it('listens on 127.0.0.1:<random>/callback and puts S256 challenge, state and redirect_uri in the URL', async () => {
    const f = await flow();
    expect(f.redirectUri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    const q = new URL(f.authorizeUrl).searchParams;
    expect(q.get('redirect_uri')).toBe(f.redirectUri);
    expect(q.get('code_challenge')).toBe(codeChallengeS256(f.codeVerifier));
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('scope')).toBe('repo read:org');
    expect(Buffer.from(stateOf(f), 'base64url')).toHaveLength(16);
  });

  it('refuses a wrong, missing or doubled state and keeps waiting; then takes the right one', async () => {
    const f = await flow();
    let got: string | undefined;
    void f.waitForCode().then((c) => (got = c));
    for (const params of [{ code: 'evil', state: 'forged' }, { code: 'evil' }]) {
      const r = await callback(f, params);
      expect(r.status).toBe(400);
      expect(r.html).toContain('state mismatch');
      expect(r.html).not.toContain('evil');
    }
    const u = new URL(f.redirectUri);
    u.search = `code=evil&state=${stateOf(f)}&state=x`;
    expect((await fetch(u)).status).toBe(400);
    expect(got).toBeUndefined();
    const ok = await callback(f, { code: 'the-real-code-123', state: stateOf(f) });
    expect(ok.status).toBe(200);
    expect(ok.html).toContain('You can close this tab');
    expect(ok.html).not.toContain('the-real-code-123');
    expect(await f.waitForCode()).toBe('the-real-code-123');
    expect((await callback(f, { code: 'again', state: stateOf(f) })).html).toContain('already finished');
  });

  it('an error parameter (with the right state) rejects with ERR_OAUTH_FAILED', async () => {
    const f = await flow();
    const wait = caught(f.waitForCode());
    const r = await callback(f, { error: 'access_denied', state: stateOf(f) });
    expect(r.html).toContain('did not grant access');
    const e = await wait;
    expect(e.code).toBe('ERR_OAUTH_FAILED');
    expect(e.oauthError).toBe('access_denied');
    expect(e.hint).toContain('authsome login github');
  });

  it('answers 404 elsewhere, and an abort or close() rejects with "cancelled"', async () => {
    const f = await flow();
    expect((await fetch(new URL('/favicon.ico', f.redirectUri))).status).toBe(404);
    const ac = new AbortController();
    const aborted = caught(f.waitForCode(ac.signal));
    ac.abort();
    expect((await aborted).message).toBe('cancelled');
    const closing = caught(f.waitForCode());
    await f.close();
    expect((await closing).message).toBe('cancelled');
  });

  it('refuses a provider without an authorization endpoint', async () => {
    const { authorizeUrl: _a, ...noAuthorize } = oauth();
    const e = await caught(startPkceFlow({ oauth: noAuthorize, clientId: 'cid' }));
    expect(e.code).toBe('ERR_INPUT_INVALID');
  });
});

describe('exchangeCode (RFC 6749 §4.1.3, RFC 7636 §4.5)', () => {
  it('posts the code, verifier and redirect_uri and returns the tokens', async () => {
    const seen = serve(server, '/token', [
      { body: { access_token: 'at', refresh_token: 'rt', expires_in: 10 } },
    ]);
    const t = await exchangeCode({
      oauth: oauth({ clientAuth: 'client_secret_post' }),
      clientId: 'cid',
      fetchImpl: mswFetch,
      now: () => 5,
      code: 'c0de',
      codeVerifier: 'v'.repeat(43),
      redirectUri: 'http://127.0.0.1:1/callback',
    });
    expect(Object.fromEntries(seen[0]!.form)).toEqual({
      grant_type: 'authorization_code',
      code: 'c0de',
      code_verifier: 'v'.repeat(43),
      redirect_uri: 'http://127.0.0.1:1/callback',
      client_id: 'cid',
    });
    expect(t.expiresAt).toBe(10_005);
    expect(t.refreshToken?.reveal()).toBe('rt');
  });
});
