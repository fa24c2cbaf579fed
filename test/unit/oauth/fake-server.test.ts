import { afterEach, describe, expect, it } from 'vitest';
import { fetch } from 'undici';
import { Secret } from '../../../src/secret.js';
import {
  RefreshCoordinator,
  exchangeCode,
  pollDeviceToken,
  refreshTokens,
  revokeToken,
  startDeviceFlow,
  startPkceFlow,
} from '../../../src/providers/oauth.js';
import type { OAuthClientOptions, PkceFlow, TokenSet } from '../../../src/providers/oauth.js';
import { startFakeOAuth } from '../../helpers/fake-oauth.js';
import type { FakeOAuth, FakeOAuthOptions } from '../../helpers/fake-oauth.js';
import { findCanary } from '../../helpers/canary.js';
import { caught, errorText } from './msw.js';

const open: Array<FakeOAuth | PkceFlow> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((x) => x.close()));
});

async function fake(o: FakeOAuthOptions = {}): Promise<{ fake: FakeOAuth; client: OAuthClientOptions }> {
  const f = await startFakeOAuth(o);
  open.push(f);
  const client: OAuthClientOptions = {
    oauth: f.oauthConfig(),
    clientId: f.clientId,
    allowInsecureLoopback: true,
    provider: 'fake',
  };
  if (f.clientSecret !== undefined) client.clientSecret = new Secret(f.clientSecret);
  return { fake: f, client };
}

async function deviceLogin(client: OAuthClientOptions, sleeps: number[] = []): Promise<TokenSet> {
  const d = await startDeviceFlow(client);
  return pollDeviceToken({
    ...client,
    deviceCode: d.deviceCode,
    interval: d.interval,
    expiresIn: d.expiresIn,
    sleep: async (ms) => void sleeps.push(ms),
  });
}

describe('against a real loopback authorization server', () => {
  it('device flow end to end: pending, slow_down, approval', async () => {
    const { fake: f, client } = await fake({ clientAuth: 'client_secret_post' });
    f.script(['authorization_pending', 'slow_down', 'authorization_pending']);
    const d = await startDeviceFlow(client);
    expect(d.userCode).toBe('WDJB-MJHT');
    expect(d.verificationUri).toBe(`${f.url}/activate`);
    const sleeps: number[] = [];
    const t = await pollDeviceToken({
      ...client,
      deviceCode: d.deviceCode,
      interval: d.interval,
      sleep: async (ms) => void sleeps.push(ms),
    });
    expect(sleeps).toEqual([1000, 1000, 6000, 6000]);
    expect(f.counters).toMatchObject({ deviceAuthorizations: 1, devicePolls: 4, clientAuthFailures: 0 });
    expect(f.isAccessTokenValid(t.accessToken.reveal())).toBe(true);
    expect(t.refreshToken?.reveal()).toBe(f.issued.refreshTokens[0]);
  });

  it('device flow: expired_token ends the login', async () => {
    const { fake: f, client } = await fake();
    f.script(['authorization_pending', 'expired_token']);
    const e = await caught(deviceLogin(client));
    expect(e.code).toBe('ERR_OAUTH_FAILED');
    expect(e.hint).toContain('authsome login fake');
  });

  it('GitHub-style server (errors with HTTP 200, form-encoded replies) works too', async () => {
    const { fake: f, client } = await fake({ errorStatus: 200, responseFormat: 'form', clientSecret: null });
    f.script(['authorization_pending']);
    const t = await deviceLogin(client);
    expect(f.isAccessTokenValid(t.accessToken.reveal())).toBe(true);
    expect(t.expiresAt).toBeGreaterThan(Date.now());
  });

  it('PKCE end to end, being the browser; a forged state is refused', async () => {
    const { fake: f, client } = await fake();
    const flow = await startPkceFlow({ ...client, host: '127.0.0.1' });
    open.push(flow);
    const res = await fetch(flow.authorizeUrl, { redirect: 'manual' });
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get('location') ?? '');
    expect(`${location.origin}${location.pathname}`).toBe(flow.redirectUri);
    const forged = new URL(location);
    forged.searchParams.set('state', 'attacker');
    const refused = await fetch(forged);
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('state mismatch');
    const page = await fetch(location);
    const html = await page.text();
    expect(page.status).toBe(200);
    const code = await flow.waitForCode();
    expect(html).not.toContain(code);
    const wrong = await caught(
      exchangeCode({ ...client, code, codeVerifier: 'x'.repeat(43), redirectUri: flow.redirectUri }),
    );
    expect(wrong.oauthError).toBe('invalid_grant'); // the fake checks S256 (and burns the code)
    const flow2 = await startPkceFlow(client);
    open.push(flow2);
    await fetch((await fetch(flow2.authorizeUrl, { redirect: 'manual' })).headers.get('location') ?? '');
    const t = await exchangeCode({
      ...client,
      code: await flow2.waitForCode(),
      codeVerifier: flow2.codeVerifier,
      redirectUri: flow2.redirectUri,
    });
    expect(f.isAccessTokenValid(t.accessToken.reveal())).toBe(true);
    expect(f.counters.codeExchanges).toBe(2);
    expect(html).not.toContain(t.accessToken.reveal());
  });

  it('PKCE: the provider refusing access rejects waitForCode', async () => {
    const { fake: f, client } = await fake();
    f.denyNextAuthorize();
    const flow = await startPkceFlow(client);
    open.push(flow);
    const wait = caught(flow.waitForCode());
    await fetch((await fetch(flow.authorizeUrl, { redirect: 'manual' })).headers.get('location') ?? '');
    expect((await wait).oauthError).toBe('access_denied');
  });

  it('50 concurrent refreshes through the coordinator make exactly one refresh request', async () => {
    const { fake: f, client } = await fake({ tokenLatencyMs: 30, expiresIn: 60 });
    const first = await deviceLogin(client);
    const coordinator = new RefreshCoordinator();
    const results = await Promise.all(
      Array.from({ length: 50 }, () =>
        coordinator.refresh('alice/fake/work', () =>
          refreshTokens({ ...client, refreshToken: first.refreshToken! }),
        ),
      ),
    );
    expect(f.counters.refreshes).toBe(1);
    const fresh = results[0]!.accessToken.reveal();
    expect(new Set(results.map((r) => r.accessToken.reveal()))).toEqual(new Set([fresh]));
    expect(fresh).not.toBe(first.accessToken.reveal());
    expect(f.isAccessTokenValid(fresh)).toBe(true);
    expect(results[0]!.refreshToken).toBe(first.refreshToken); // not rotated: the old one is kept
  });

  it('revoked refresh token: ERR_TOKEN_REFRESH_FAILED, without the token in the error', async () => {
    const { fake: f, client } = await fake();
    const t = await deviceLogin(client);
    f.revoke(t.refreshToken!.reveal());
    const e = await caught(refreshTokens({ ...client, refreshToken: t.refreshToken! }));
    expect(e.code).toBe('ERR_TOKEN_REFRESH_FAILED');
    expect(e.oauthError).toBe('invalid_grant');
    expect(findCanary(errorText(e), t.refreshToken!.reveal())).toBeUndefined();
  });

  it('revokeToken at the endpoint (RFC 7009) kills the refresh token and its access tokens', async () => {
    const { fake: f, client } = await fake({ rotateRefreshTokens: true });
    const t = await deviceLogin(client);
    const r = await refreshTokens({ ...client, refreshToken: t.refreshToken! });
    expect(r.refreshToken?.reveal()).not.toBe(t.refreshToken?.reveal());
    expect((await caught(refreshTokens({ ...client, refreshToken: t.refreshToken! }))).code).toBe(
      'ERR_TOKEN_REFRESH_FAILED',
    );
    expect(await revokeToken({ ...client, token: r.refreshToken!, hint: 'refresh_token' })).toBe(true);
    expect(f.counters.revocations).toBe(1);
    expect(f.isAccessTokenValid(r.accessToken.reveal())).toBe(false);
    const e = await caught(refreshTokens({ ...client, refreshToken: r.refreshToken! }));
    expect(e.code).toBe('ERR_TOKEN_REFRESH_FAILED');
  });

  it('a wrong client secret is invalid_client; plain http without the explicit flag is refused', async () => {
    const { fake: f, client } = await fake();
    const e = await caught(startDeviceFlow({ ...client, clientSecret: new Secret('wrong-secret') }));
    expect(e.message).toContain('invalid_client');
    expect(f.counters.clientAuthFailures).toBe(1);
    const { allowInsecureLoopback: _a, ...strict } = client;
    expect((await caught(startDeviceFlow(strict))).message).toContain('https');
    expect(f.counters.deviceAuthorizations).toBe(0);
  });
});
