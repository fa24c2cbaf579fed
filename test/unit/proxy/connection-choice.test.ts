import { describe, expect, it } from 'vitest';
import { chooseConnection, requestedConnection } from '../../../src/proxy/connection-choice.js';
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
