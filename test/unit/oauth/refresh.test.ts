import { describe, expect, it } from 'vitest';
import { Secret } from '../../../src/secret.js';
import { RefreshCoordinator, refreshTokens } from '../../../src/providers/oauth.js';
import { findCanary } from '../../helpers/canary.js';
import { caught, errorText, mswFetch, oauth, serve, useMsw } from './msw.js';

const server = useMsw();
const RT = 'canary-refresh-4c1d9e22aa';
const AT = 'canary-access-77ab01f0';
const opts = {
  oauth: oauth(),
  clientId: 'cid',
  clientSecret: new Secret('cs-123456'),
  fetchImpl: mswFetch,
  provider: 'github',
};

describe('refreshTokens (RFC 6749 §6)', () => {
  it('keeps the old refresh token when the reply omits one', async () => {
    serve(server, '/token', [{ body: { access_token: AT, expires_in: 120, token_type: 'Bearer' } }]);
    const old = new Secret(RT);
    const t = await refreshTokens({ ...opts, refreshToken: old, now: () => 1_000_000 });
    expect(t.accessToken.reveal()).toBe(AT);
    expect(t.refreshToken).toBe(old);
    expect(t.expiresAt).toBe(1_120_000);
    expect(t.tokenType).toBe('Bearer');
  });

  it('takes a rotated refresh token; no expires_in means no expiresAt', async () => {
    serve(server, '/token', [{ body: { access_token: AT, refresh_token: 'rt-new', expires_in: 'soon' } }]);
    const t = await refreshTokens({ ...opts, refreshToken: new Secret(RT) });
    expect(t.refreshToken?.reveal()).toBe('rt-new');
    expect(t).not.toHaveProperty('expiresAt');
    expect(JSON.stringify(t)).not.toContain(AT);
  });

  it('invalid_grant: ERR_TOKEN_REFRESH_FAILED, a login hint, and no token anywhere in the error', async () => {
    serve(server, '/token', [
      { status: 400, body: { error: 'invalid_grant', error_description: `refresh token ${RT} revoked` } },
    ]);
    const e = await caught(refreshTokens({ ...opts, refreshToken: new Secret(RT) }));
    expect(e.code).toBe('ERR_TOKEN_REFRESH_FAILED');
    expect(e.oauthError).toBe('invalid_grant');
    expect(e.transport).toBe(false);
    expect(e.message).toMatch(/no longer accepts the refresh token/);
    expect(e.hint).toBe('run `authsome login github` again');
    expect(findCanary(errorText(e), RT)).toBeUndefined();
  });

  it('a success reply without access_token, and a 5xx, are ERR_TOKEN_REFRESH_FAILED', async () => {
    serve(server, '/token', [{ body: { refresh_token: RT } }, { status: 503, body: '' }]);
    const e1 = await caught(refreshTokens({ ...opts, refreshToken: new Secret(RT) }));
    expect(e1.code).toBe('ERR_TOKEN_REFRESH_FAILED');
    expect(findCanary(errorText(e1), RT)).toBeUndefined();
    const e2 = await caught(refreshTokens({ ...opts, refreshToken: new Secret(RT) }));
    expect(e2.code).toBe('ERR_TOKEN_REFRESH_FAILED');
    expect(e2.transport).toBe(true);
    expect(e2.message).toContain('HTTP 503');
  });

  it('a timeout is ERR_TOKEN_REFRESH_FAILED', async () => {
    const hang = (_u: string, init: { signal: AbortSignal }) =>
      new Promise<never>((_, reject) =>
        init.signal.addEventListener('abort', () => reject(init.signal.reason)),
      );
    const e = await caught(
      refreshTokens({ ...opts, refreshToken: new Secret(RT), timeoutMs: 20, fetchImpl: hang }),
    );
    expect(e.code).toBe('ERR_TOKEN_REFRESH_FAILED');
    expect(e.message).toContain('in time');
  });
});

describe('RefreshCoordinator (single flight)', () => {
  it('concurrent callers with one key share one call and its result', async () => {
    const c = new RefreshCoordinator<number>();
    let calls = 0;
    let release!: (n: number) => void;
    const fn = () => (calls++, new Promise<number>((r) => (release = r)));
    const all = Array.from({ length: 50 }, () => c.refresh('p/github/work', fn));
    const other = c.refresh('p/github/personal', async () => 7);
    expect(c.isRefreshing('p/github/work')).toBe(true);
    release(42);
    expect(await Promise.all(all)).toEqual(Array(50).fill(42));
    expect(await other).toBe(7);
    expect(calls).toBe(1);
    expect(c.size).toBe(0);
  });

  it('shares a failure, then lets the next caller try again (also after a synchronous throw)', async () => {
    const c = new RefreshCoordinator<string>();
    let calls = 0;
    const failing = async () => {
      calls++;
      throw new Error('boom');
    };
    const r = await Promise.allSettled([c.refresh('k', failing), c.refresh('k', failing)]);
    expect(r.map((x) => x.status)).toEqual(['rejected', 'rejected']);
    expect(calls).toBe(1);
    await expect(
      c.refresh('k', () => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    expect(await c.refresh('k', async () => 'ok')).toBe('ok');
    expect(c.size).toBe(0);
  });
});
