import { describe, expect, it } from 'vitest';
import { Secret } from '../../../src/secret.js';
import { pollDeviceToken, startDeviceFlow } from '../../../src/providers/oauth.js';
import type { DeviceTick } from '../../../src/providers/oauth.js';
import { findCanary } from '../../helpers/canary.js';
import { caught, errorText, mswFetch, oauth, serve, useMsw } from './msw.js';

const server = useMsw();
const DC = 'canary-dc-5e0b77a1f3';
const common = {
  oauth: oauth({ clientAuth: 'none' }),
  clientId: 'cid',
  fetchImpl: mswFetch,
  provider: 'github',
};

function recorder() {
  const sleeps: number[] = [];
  return { sleeps, sleep: async (ms: number) => void sleeps.push(ms) };
}
const poll = (extra: Partial<Parameters<typeof pollDeviceToken>[0]> = {}) =>
  pollDeviceToken({
    ...common,
    deviceCode: new Secret(DC),
    interval: 5,
    sleep: async () => undefined,
    ...extra,
  });

describe('startDeviceFlow (RFC 8628 §3.1-3.2)', () => {
  it('posts client_id and scope and returns the codes', async () => {
    const seen = serve(server, '/device', [
      {
        body: {
          device_code: DC,
          user_code: 'WDJB-MJHT',
          verification_uri: 'https://example.test/device',
          verification_uri_complete: 'https://example.test/device?user_code=WDJB-MJHT',
          expires_in: 900,
        },
      },
    ]);
    const d = await startDeviceFlow({ ...common, scopes: ['repo', 'gist'] });
    expect(seen[0]!.form.get('client_id')).toBe('cid');
    expect(seen[0]!.form.get('scope')).toBe('repo gist');
    expect(d.deviceCode.reveal()).toBe(DC);
    expect(String(d.deviceCode)).toBe('[redacted]');
    expect(d).toMatchObject({
      userCode: 'WDJB-MJHT',
      verificationUri: 'https://example.test/device',
      expiresIn: 900,
      interval: 5,
    });
    expect(d.verificationUriComplete).toBe('https://example.test/device?user_code=WDJB-MJHT');
  });

  it("uses the provider scopes by default and accepts Google's verification_url", async () => {
    const seen = serve(server, '/device', [
      {
        body: {
          device_code: DC,
          user_code: 'AB-CD',
          verification_url: 'https://example.test/d',
          expires_in: '600',
          interval: '2',
        },
      },
    ]);
    const d = await startDeviceFlow(common);
    expect(seen[0]!.form.get('scope')).toBe('repo read:org');
    expect(d).toMatchObject({ verificationUri: 'https://example.test/d', expiresIn: 600, interval: 2 });
  });

  it('refuses a user code with control characters and a non-https verification URI', async () => {
    serve(server, '/device', [
      {
        body: {
          device_code: DC,
          user_code: '\u001b]0;pwn\u0007',
          verification_uri: 'https://e.test',
          expires_in: 9,
        },
      },
      { body: { device_code: DC, user_code: 'OK', verification_uri: 'http://e.test', expires_in: 9 } },
    ]);
    expect((await caught(startDeviceFlow(common))).message).toContain('user_code');
    expect((await caught(startDeviceFlow(common))).message).toContain('https');
  });

  it('refuses a provider without a device endpoint and a malformed scope', async () => {
    const { deviceUrl: _d, ...noDevice } = oauth();
    expect((await caught(startDeviceFlow({ ...common, oauth: noDevice }))).code).toBe('ERR_INPUT_INVALID');
    expect((await caught(startDeviceFlow({ ...common, scopes: ['a b'] }))).code).toBe('ERR_INPUT_INVALID');
  });
});

describe('pollDeviceToken (RFC 8628 §3.4-3.5)', () => {
  it('keeps polling on authorization_pending and returns the tokens', async () => {
    const seen = serve(server, '/token', [
      { status: 400, body: { error: 'authorization_pending' } },
      { status: 400, body: { error: 'authorization_pending' } },
      { body: { access_token: 'at-1', refresh_token: 'rt-1', expires_in: 3600, token_type: 'bearer' } },
    ]);
    const ticks: DeviceTick[] = [];
    const t = await poll({ now: () => 10_000, onTick: (x) => ticks.push(x) });
    expect(t.accessToken.reveal()).toBe('at-1');
    expect(t.refreshToken?.reveal()).toBe('rt-1');
    expect(t.expiresAt).toBe(10_000 + 3_600_000);
    expect(seen).toHaveLength(3);
    expect(seen[0]!.form.get('grant_type')).toBe('urn:ietf:params:oauth:grant-type:device_code');
    expect(seen[0]!.form.get('device_code')).toBe(DC);
    expect(ticks.map((x) => x.status)).toEqual(['authorization_pending', 'authorization_pending']);
  });

  it('slow_down adds 5 s to this and every later interval', async () => {
    serve(server, '/token', [
      { status: 400, body: { error: 'authorization_pending' } },
      { status: 400, body: { error: 'slow_down' } },
      { status: 400, body: { error: 'authorization_pending' } },
      { status: 400, body: { error: 'slow_down' } },
      { body: { access_token: 'at' } },
    ]);
    const r = recorder();
    await poll({ sleep: r.sleep });
    expect(r.sleeps).toEqual([5000, 5000, 10_000, 10_000, 15_000]);
  });

  it('never polls faster than once a second, and defaults a missing interval to 5 s', async () => {
    serve(server, '/token', [
      { status: 400, body: { error: 'authorization_pending' } },
      { body: { access_token: 'at' } },
    ]);
    const r = recorder();
    await poll({ interval: 0, sleep: r.sleep });
    expect(r.sleeps).toEqual([1000, 1000]);
  });

  it.each([
    ['expired_token', 'expired'],
    ['access_denied', 'denied'],
  ])('%s ends the login with ERR_OAUTH_FAILED and a hint to log in again', async (error, word) => {
    serve(server, '/token', [
      { status: 400, body: { error: 'authorization_pending' } },
      { status: 400, body: { error, error_description: `x ${DC}` } },
    ]);
    const e = await caught(poll());
    expect(e.code).toBe('ERR_OAUTH_FAILED');
    expect(e.oauthError).toBe(error);
    expect(e.message).toContain(word);
    expect(e.hint).toContain('authsome login github');
    expect(findCanary(errorText(e), DC)).toBeUndefined();
  });

  it('stops by itself once the device code has expired', async () => {
    let now = 0;
    serve(server, '/token', [{ status: 400, body: { error: 'authorization_pending' } }]);
    const e = await caught(poll({ expiresIn: 12, now: () => now, sleep: async (ms) => void (now += ms) }));
    expect(e.message).toContain('expired');
    expect(now).toBe(15_000);
  });

  it('an abort (Ctrl-C) rejects with "cancelled" while waiting', async () => {
    serve(server, '/token', [{ status: 400, body: { error: 'authorization_pending' } }]);
    const ac = new AbortController();
    // the real sleep: the abort must cut it short
    const p = pollDeviceToken({ ...common, deviceCode: new Secret(DC), interval: 5, signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    const e = await caught(p);
    expect(e.code).toBe('ERR_OAUTH_FAILED');
    expect(e.message).toBe('cancelled');
  });

  it('backs off exponentially when the endpoint is unreachable, then gives up', async () => {
    const r = recorder();
    const e = await caught(
      poll({ sleep: r.sleep, fetchImpl: async () => Promise.reject(new TypeError('fetch failed')) }),
    );
    expect(e.code).toBe('ERR_OAUTH_FAILED');
    expect(e.transport).toBe(true);
    expect(r.sleeps).toEqual([5000, 10_000, 20_000, 40_000]);
  });
});
