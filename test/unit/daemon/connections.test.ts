import { describe, expect, it, vi } from 'vitest';
import { ConnectionService, MAX_INJECTED_LINE } from '../../../src/daemon/connections.js';
import { AppError } from '../../../src/errors.js';
import type { ProviderDef } from '../../../src/providers/types.js';
import { Secret } from '../../../src/secret.js';
import { profileScope } from '../../../src/vault/scope.js';
import type { KvStore } from '../../../src/vault/types.js';
import { def } from '../providers/fixtures.js';
import { useVaultFixtures } from '../vault/fixtures.js';

const acme = def({ name: 'acme', hosts: [{ host: 'api.acme.example' }] });

describe('ConnectionService: concurrent changes of one provider in one profile (real LevelDB store)', () => {
  const fx = useVaultFixtures();
  const service = async (): Promise<ConnectionService> =>
    new ConnectionService(await fx.open(fx.tmp()), () => acme);

  it('two first logins at once: exactly one reports being the default, and it is the stored default', async () => {
    const s = await service();
    const names = ['one', 'two', 'three', 'four'];
    const out = await Promise.all(
      names.map((n) => s.put('alice', 'acme', n, { api_key: `k-${n}` }, 'api-key')),
    );
    const reported = names.filter((_, i) => out[i]!.isDefault);
    expect(reported).toHaveLength(1);
    const stored = (await s.list('alice', 'acme')).filter((c) => c.isDefault).map((c) => c.connection);
    expect(stored).toEqual(reported);
    expect(out.every((o) => o.created)).toBe(true);
  });

  it('set-default racing a remove of the same connection never leaves a default naming it', async () => {
    for (const first of ['remove', 'setDefault'] as const) {
      const store = await fx.open(fx.tmp());
      const s = new ConnectionService(store, () => acme);
      await s.put('alice', 'acme', 'a', { api_key: 'k-a' }, 'api-key');
      await s.put('alice', 'acme', 'b', { api_key: 'k-b' }, 'api-key');
      await s.put('alice', 'acme', 'c', { api_key: 'k-c' }, 'api-key');
      const remove = (): Promise<unknown> => s.remove('alice', 'acme', 'b');
      const setDefault = (): Promise<unknown> => s.setDefault('alice', 'acme', 'b').catch((e: unknown) => e);
      await Promise.all(first === 'remove' ? [remove(), setDefault()] : [setDefault(), remove()]);
      const d = (await profileScope(store, 'alice').get('default/acme')) as
        { connection: string } | undefined;
      const names = (await s.list('alice', 'acme')).map((c) => c.connection);
      expect(names).toEqual(['a', 'c']);
      if (d) expect(names).toContain(d.connection);
    }
  });
});

describe('ConnectionService: a token refresh only replaces the record it started from', () => {
  const fx = useVaultFixtures();
  const oauthy = { ...acme, name: 'oauthy', fields: ['access_token'] } as ProviderDef;
  const tokens = (access: string, refresh = 'r-1') => ({
    accessToken: new Secret(access),
    refreshToken: new Secret(refresh),
  });

  it('a refresh that lands after the remove fails with ERR_CONNECTION_NOT_FOUND and stores nothing', async () => {
    const s = new ConnectionService(await fx.open(fx.tmp()), () => oauthy);
    await s.putTokens('alice', 'oauthy', 'work', tokens('a-1'), 'device');
    const started = (await s.stored('alice', 'oauthy', 'work'))!;
    await s.remove('alice', 'oauthy', 'work');
    await expect(
      s.putTokens('alice', 'oauthy', 'work', tokens('a-2'), 'device', { replaces: started }),
    ).rejects.toMatchObject({ code: 'ERR_CONNECTION_NOT_FOUND' });
    expect(await s.list('alice', 'oauthy')).toEqual([]);
    // A login (not a refresh) may create it again.
    await s.putTokens('alice', 'oauthy', 'work', tokens('a-3'), 'device');
    expect((await s.list('alice', 'oauthy')).map((c) => c.connection)).toEqual(['work']);
  });

  it("a refresh of account A that lands after a new login as account B does not write A's tokens", async () => {
    const s = new ConnectionService(await fx.open(fx.tmp()), () => oauthy);
    await s.putTokens('alice', 'oauthy', 'work', tokens('account-A-1', 'account-A-refresh'), 'device');
    const started = (await s.stored('alice', 'oauthy', 'work'))!;
    await new Promise((r) => setTimeout(r, 5)); // a later updatedAt for the new login
    await s.putTokens('alice', 'oauthy', 'work', tokens('account-B-1', 'account-B-refresh'), 'device');
    await expect(
      s.putTokens('alice', 'oauthy', 'work', tokens('account-A-2', 'account-A-refresh'), 'device', {
        replaces: started,
      }),
    ).rejects.toMatchObject({ code: 'ERR_CONNECTION_NOT_FOUND' });
    const now = (await s.stored('alice', 'oauthy', 'work'))!;
    expect(now.fields).toEqual({ access_token: 'account-B-1' });
    expect(now.refreshToken).toBe('account-B-refresh');
    // The refresh of the current record goes through.
    await s.putTokens('alice', 'oauthy', 'work', tokens('account-B-2'), 'device', { replaces: now });
    expect((await s.stored('alice', 'oauthy', 'work'))!.fields).toEqual({ access_token: 'account-B-2' });
  });
  it('a new login within the same millisecond as the refresh read still makes the refresh fail', async () => {
    const s = new ConnectionService(await fx.open(fx.tmp()), () => oauthy);
    vi.useFakeTimers({ toFake: ['Date'], now: new Date('2026-01-01T00:00:00Z') });
    try {
      await s.putTokens('alice', 'oauthy', 'work', tokens('account-A-1', 'account-A-refresh'), 'device');
      const started = (await s.stored('alice', 'oauthy', 'work'))!;
      await s.putTokens('alice', 'oauthy', 'work', tokens('account-B-1', 'account-B-refresh'), 'device');
      expect((await s.stored('alice', 'oauthy', 'work'))!.updatedAt).toBe(started.updatedAt);
      await expect(
        s.putTokens('alice', 'oauthy', 'work', tokens('account-A-2'), 'device', { replaces: started }),
      ).rejects.toMatchObject({ code: 'ERR_CONNECTION_NOT_FOUND' });
      expect((await s.stored('alice', 'oauthy', 'work'))!.fields).toEqual({ access_token: 'account-B-1' });
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('ConnectionService.resolve: a change that lands while a lookup reads the store', () => {
  const fx = useVaultFixtures();

  it('a logout during a lookup is not undone by that lookup caching what it read', async () => {
    const store = await fx.open(fx.tmp());
    // The real store, with reads of the connection record held until the test lets them go.
    let gate: Promise<void> | undefined;
    const held: KvStore = {
      get: async (key) => {
        const value = await store.get(key);
        if (gate && key.includes('/conn/')) await gate;
        return value;
      },
      put: (key, value) => store.put(key, value),
      del: (key) => store.del(key),
      batch: (ops) => store.batch(ops),
      list: (prefix) => store.list(prefix),
      keys: (prefix) => store.keys(prefix),
      close: () => store.close(),
    };
    const s = new ConnectionService(held, () => acme);
    await s.put('alice', 'acme', 'work', { api_key: 'k-work-123456' }, 'api-key');
    let release!: () => void;
    gate = new Promise<void>((r) => (release = r));
    const inFlight = s.resolve('alice', 'acme', undefined);
    await new Promise((r) => setTimeout(r, 20)); // the lookup has read the record and waits
    gate = undefined;
    await s.remove('alice', 'acme', 'work');
    release();
    // The lookup that raced the logout answers its own request with what it read...
    expect((await inFlight)?.connection).toBe('work');
    // ...but the next request sees the logout.
    expect(await s.resolve('alice', 'acme', undefined)).toBeUndefined();
  });
});

describe('ConnectionService.resolve without a named connection', () => {
  const fx = useVaultFixtures();

  it('no connection of the provider: undefined (the request goes on without a credential)', async () => {
    const s = new ConnectionService(await fx.open(fx.tmp()), () => acme);
    expect(await s.resolve('alice', 'acme', undefined)).toBeUndefined();
  });

  it('connections but no default (the default was removed, several left): 403, and remove says so', async () => {
    const s = new ConnectionService(await fx.open(fx.tmp()), () => acme);
    for (const n of ['a', 'b', 'c']) await s.put('alice', 'acme', n, { api_key: `k-${n}` }, 'api-key');
    expect((await s.resolve('alice', 'acme', undefined))?.connection).toBe('a');
    expect(await s.remove('alice', 'acme', 'a')).toEqual({ defaultCleared: true });
    await expect(s.resolve('alice', 'acme', undefined)).rejects.toMatchObject({
      code: 'ERR_PROXY_CONNECTION_DENIED',
      message: expect.stringMatching(/none is the default/) as unknown,
    });
    // Naming one still works, and setting a default ends the refusal (the cache is dropped on change).
    expect((await s.resolve('alice', 'acme', 'b'))?.connection).toBe('b');
    await s.setDefault('alice', 'acme', 'c');
    expect((await s.resolve('alice', 'acme', undefined))?.connection).toBe('c');
    // One left after removing the default: it becomes the default, nothing to report.
    expect(await s.remove('alice', 'acme', 'c')).toEqual({ newDefault: 'b' });
  });
});

describe('ConnectionService.put refuses a credential the proxy could never send', () => {
  const fx = useVaultFixtures();

  it.each([
    ['surrounding spaces', '  sk-space-123456  '],
    ['only spaces', '   '],
    ['a control character', 'sk-ctl\x01abc123456'],
  ])('%s: ERR_INPUT_INVALID naming the field, not the value; nothing stored', async (_what, value) => {
    const s = new ConnectionService(await fx.open(fx.tmp()), () => acme);
    const err = await s.put('alice', 'acme', 'work', { api_key: value }, 'api-key').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_INPUT_INVALID' });
    expect((err as Error).message).toContain('"api_key"');
    expect((err as Error).message).not.toContain(value.trim() || value);
    expect(await s.list('alice', 'acme')).toEqual([]);
  });
});

describe('ConnectionService.put refuses a credential too large for any upstream header', () => {
  const fx = useVaultFixtures();

  it('a 100 KB key: ERR_INPUT_INVALID naming the limit, nothing stored; 8 KiB lines still pass', async () => {
    const s = new ConnectionService(await fx.open(fx.tmp()), () => acme);
    const big = `sk-${'x'.repeat(100_000)}`;
    const err = await s.put('alice', 'acme', 'work', { api_key: big }, 'api-key').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_INPUT_INVALID' });
    expect((err as Error).message).toContain(String(MAX_INJECTED_LINE));
    expect((err as Error).message).not.toContain('xxxxxxxx');
    expect(await s.list('alice', 'acme')).toEqual([]);
    // "Authorization: Bearer " is 22 bytes: the largest key that fits the line exactly.
    const fits = 'k'.repeat(MAX_INJECTED_LINE - 22);
    await expect(s.put('alice', 'acme', 'work', { api_key: fits }, 'api-key')).resolves.toBeDefined();
    await expect(s.put('alice', 'acme', 'w2', { api_key: `${fits}k` }, 'api-key')).rejects.toMatchObject({
      code: 'ERR_INPUT_INVALID',
    });
  });
});

describe('ConnectionService: a mistyped provider name', () => {
  const fx = useVaultFixtures();
  const lookup =
    (known: ProviderDef[]) =>
    (name: string): ProviderDef => {
      const found = known.find((d) => d.name === name);
      if (!found) throw new AppError('ERR_PROVIDER_NOT_FOUND', `unknown provider "${name}"`);
      return found;
    };

  it('show/remove/set-default of a missing connection of an unknown provider say "unknown provider"', async () => {
    const s = new ConnectionService(await fx.open(fx.tmp()), lookup([acme]));
    await s.put('alice', 'acme', 'work', { api_key: 'k-123456789' }, 'api-key');
    for (const attempt of [
      () => s.show('alice', 'acme-typo', 'work'),
      () => s.remove('alice', 'acme-typo', 'work'),
      () => s.setDefault('alice', 'acme-typo', 'work'),
    ])
      await expect(attempt()).rejects.toMatchObject({ code: 'ERR_PROVIDER_NOT_FOUND' });
    await expect(s.show('alice', 'acme', 'nope')).rejects.toMatchObject({ code: 'ERR_CONNECTION_NOT_FOUND' });
  });

  it('a stored connection of a provider that was since removed can still be removed', async () => {
    const store = await fx.open(fx.tmp());
    await new ConnectionService(store, lookup([acme])).put(
      'alice',
      'acme',
      'work',
      { api_key: 'k-1234' },
      'api-key',
    );
    const without = new ConnectionService(store, lookup([]));
    await expect(without.remove('alice', 'acme', 'work')).resolves.toEqual({});
  });
});
