import { describe, expect, it } from 'vitest';
import {
  checkTenantHost,
  chooseConnection,
  requestedConnection,
} from '../../../src/proxy/connection-choice.js';
import { tenantHostsProblem } from '../../../src/providers/host.js';
import { parseProxyAuthorization } from '../../../src/proxy/identify.js';
import type { SessionInfo } from '../../../src/proxy/types.js';
import { bearer, FakeCredentials } from '../../helpers/fake-deps.js';

const acme = bearer('acme', [{ host: 'api.acme.test' }]);
const creds = new FakeCredentials()
  .set('alice', 'acme', 'personal', { api_key: 'a' }, true)
  .set('alice', 'acme', 'work', { api_key: 'b' })
  .set('bob', 'acme', 'bobs', { api_key: 'c' });
const session = (allow?: SessionInfo['allow']): SessionInfo => ({
  id: 's',
  profile: 'alice',
  allow,
  expiresAt: Date.now() + 1000,
});

describe('requestedConnection', () => {
  it('reads one valid name from the raw headers', () => {
    expect(requestedConnection(['X-Authsome-Connection', 'work'])).toBe('work');
    expect(requestedConnection([])).toBeUndefined();
  });
  it.each([['Work'], ['work '], ['wo rk'], ['-x'], ['a'.repeat(65)], ['']])('refuses %j', (v) => {
    expect(() => requestedConnection(['x-authsome-connection', v])).toThrow(
      expect.objectContaining({ code: 'ERR_PROXY_BAD_REQUEST' }),
    );
  });
  it('refuses duplicates', () => {
    expect(() => requestedConnection(['x-authsome-connection', 'a', 'X-Authsome-Connection', 'a'])).toThrow();
  });
});

describe('chooseConnection', () => {
  it('default, named', async () => {
    expect((await chooseConnection(creds, session(), acme, undefined))?.connection).toBe('personal');
    expect((await chooseConnection(creds, session(), acme, 'work'))?.connection).toBe('work');
  });

  it('no header and no connection of that provider: no credential, no denial', async () => {
    const none = { resolve: async () => undefined };
    expect(await chooseConnection(none, session(), acme, undefined)).toBeUndefined();
    await expect(chooseConnection(none, session(), acme, 'work')).rejects.toMatchObject({
      code: 'ERR_PROXY_CONNECTION_DENIED',
    });
  });

  it('another profile’s connection and a missing one give the same denial', async () => {
    const a = await chooseConnection(creds, session(), acme, 'bobs').catch((e: Error) => e);
    const b = await chooseConnection(creds, session(), acme, 'zzzz').catch((e: Error) => e);
    expect(a).toMatchObject({ code: 'ERR_PROXY_CONNECTION_DENIED' });
    expect(b).toMatchObject({ code: 'ERR_PROXY_CONNECTION_DENIED' });
    expect((a as Error).message.replace('bobs', 'N')).toBe((b as Error).message.replace('zzzz', 'N'));
  });

  it('allow lists limit provider and connection, also for the default', async () => {
    await expect(
      chooseConnection(creds, session([{ provider: 'other' }]), acme, undefined),
    ).rejects.toMatchObject({ code: 'ERR_PROXY_CONNECTION_DENIED' });
    await expect(
      chooseConnection(creds, session([{ provider: 'acme', connection: 'work' }]), acme, 'personal'),
    ).rejects.toMatchObject({ code: 'ERR_PROXY_CONNECTION_DENIED' });
    await expect(
      chooseConnection(creds, session([{ provider: 'acme', connection: 'work' }]), acme, undefined),
    ).rejects.toMatchObject({ code: 'ERR_PROXY_CONNECTION_DENIED' });
    expect(
      (await chooseConnection(creds, session([{ provider: 'acme', connection: 'work' }]), acme, 'work'))
        ?.connection,
    ).toBe('work');
    expect(
      (await chooseConnection(creds, session([{ provider: 'acme' }]), acme, undefined))?.connection,
    ).toBe('personal');
  });
});

describe('parseProxyAuthorization', () => {
  const b = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
  it('reads handle and token', () => {
    expect(parseProxyAuthorization(b('alice:tok:with:colons'))).toEqual({
      handle: 'alice',
      token: 'tok:with:colons',
    });
    expect(parseProxyAuthorization(`basic ${Buffer.from('a:b').toString('base64')}`)).toEqual({
      handle: 'a',
      token: 'b',
    });
  });
  it.each([undefined, 'Bearer x', 'Basic', b('alice'), b('alice:'), b('Alice:t'), b(':t'), 'Basic a b'])(
    'refuses %j with 407',
    (v) => {
      expect(() => parseProxyAuthorization(v)).toThrow(
        expect.objectContaining({ code: 'ERR_PROXY_AUTH_REQUIRED' }),
      );
    },
  );
});

describe('tenant hosts (a provider with a wildcard host)', () => {
  const shop = bearer('shop', [{ host: '*.shop.test' }, { host: 'api.shop.test' }]);
  const cred = (hosts?: string[]) => ({ connection: 'main', fields: {}, ...(hosts ? { hosts } : {}) });
  const deniedFor = (hosts: string[] | undefined, host: string) => {
    try {
      checkTenantHost(shop, cred(hosts), host);
      return undefined;
    } catch (e) {
      return (e as { code?: string }).code;
    }
  };

  it('injects through the wildcard only for the hosts the connection is bound to', () => {
    expect(deniedFor(['mine.shop.test'], 'mine.shop.test')).toBeUndefined();
    expect(deniedFor(['mine.shop.test'], 'theirs.shop.test')).toBe('ERR_PROXY_CONNECTION_DENIED');
    expect(deniedFor(undefined, 'mine.shop.test')).toBe('ERR_PROXY_CONNECTION_DENIED');
  });

  it('the provider’s exact hosts need no binding', () => {
    expect(deniedFor(undefined, 'api.shop.test')).toBeUndefined();
    expect(deniedFor(['mine.shop.test'], 'api.shop.test')).toBeUndefined();
  });

  it('login --host: required for wildcard-only providers, one label under the wildcard, refused for fixed hosts', () => {
    const shopOnly = bearer('shop', [{ host: '*.shop.test' }]);
    expect(tenantHostsProblem(shopOnly, undefined)).toMatch(/--host/);
    // With an exact host as well, a connection without --host is used there only.
    expect(tenantHostsProblem(shop, undefined)).toBeUndefined();
    expect(tenantHostsProblem(shop, ['mine.shop.test'])).toBeUndefined();
    for (const bad of ['shop.test', 'a.b.shop.test', 'Mine.shop.test', 'mine.shop.test.evil', '*.shop.test'])
      expect(tenantHostsProblem(shop, [bad]), bad).toMatch(/not one host under/);
    expect(tenantHostsProblem(acme, undefined)).toBeUndefined();
    expect(tenantHostsProblem(acme, ['api.acme.test'])).toMatch(/fixed hosts/);
  });
});
