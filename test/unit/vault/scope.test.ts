import { describe, expect, it } from 'vitest';
import { memoryStore } from '../../../src/vault/memory-store.js';
import { profileScope } from '../../../src/vault/scope.js';
import type { KvStore } from '../../../src/vault/types.js';
import { hasPg } from '../../helpers/pg.js';
import { pgEngine } from './engines.js';
import { useVaultFixtures } from './fixtures.js';

const fx = useVaultFixtures();
const pg = pgEngine();

/**
 * The same behaviour is required of both engines and of the in-memory store other areas test with.
 * (Without a test PostgreSQL its suite is skipped; the run says so once.)
 */
const stores: Array<[string, () => Promise<KvStore>]> = [
  ['level', () => fx.open(fx.tmp())],
  ['memory', async () => memoryStore()],
  ...(hasPg ? [['postgres', async () => pg.open(await pg.place())] as [string, () => Promise<KvStore>]] : []),
];

describe.each(stores)('profileScope over the %s store', (_name, makeStore) => {
  it('keeps alice and alice2 apart', async () => {
    const store = await makeStore();
    const alice = profileScope(store, 'alice');
    const alice2 = profileScope(store, 'alice2');
    await alice.put('conn/github/work', { token: 'a' });
    await alice2.put('conn/github/work', { token: 'a2' });
    await alice2.put('default/github', { connection: 'work' });
    expect(await alice.get('conn/github/work')).toEqual({ token: 'a' });
    expect(await alice.get('default/github')).toBeUndefined();
    expect(await alice.list('')).toEqual([{ key: 'conn/github/work', value: { token: 'a' } }]);
    expect(await alice2.list('conn/')).toEqual([{ key: 'conn/github/work', value: { token: 'a2' } }]);
    expect(await store.keys('profile/')).toEqual([
      'profile/alice/conn/github/work',
      'profile/alice2/conn/github/work',
      'profile/alice2/default/github',
    ]);
  });

  it('batches relative keys under its own prefix only', async () => {
    const store = await makeStore();
    const alice = profileScope(store, 'alice');
    await alice.batch([
      { type: 'put', key: 'conn/github/a', value: { n: 1 } },
      { type: 'put', key: 'conn/github/b', value: { n: 2 } },
      { type: 'del', key: 'conn/github/a' },
    ]);
    expect(await store.keys('profile/')).toEqual(['profile/alice/conn/github/b']);
    await alice.del('conn/github/b');
    expect(await alice.list('')).toEqual([]);
  });

  it('destroy removes every record of that profile and nothing else', async () => {
    const store = await makeStore();
    const alice = profileScope(store, 'alice');
    await alice.put('conn/github/work', { t: 1 });
    await alice.put('default/github', { c: 'work' });
    await alice.put('oauth-client/github', { id: 'x' });
    await profileScope(store, 'alice2').put('conn/github/work', { t: 2 });
    await profileScope(store, 'alic').put('conn/github/work', { t: 3 });
    await store.put('registry/alice', { handle: 'alice' });
    expect(await alice.destroy()).toBe(3);
    expect(await alice.list('')).toEqual([]);
    expect(await store.keys('profile/')).toEqual([
      'profile/alic/conn/github/work',
      'profile/alice2/conn/github/work',
    ]);
    // The registry entry belongs to the identity layer, which removes it itself.
    expect(await store.get('registry/alice')).toEqual({ handle: 'alice' });
    expect(await alice.destroy()).toBe(0);
  });

  it.each(['', '/conn/x', 'conn//x', 'conn/x/', '../alice2/conn/x', 'conn/./x', 'conn/..'])(
    'refuses the relative key %j',
    async (rel) => {
      const scope = profileScope(await makeStore(), 'alice');
      await expect(scope.put(rel, { x: 1 })).rejects.toThrow(TypeError);
      await expect(scope.get(rel)).rejects.toThrow(TypeError);
      await expect(scope.batch([{ type: 'del', key: rel }])).rejects.toThrow(TypeError);
    },
  );

  it("accepts names that merely contain '..', as the name pattern allows", async () => {
    const scope = profileScope(await makeStore(), 'alice');
    await scope.put('conn/github/a..b', { x: 1 });
    expect(await scope.list('conn/github/')).toEqual([{ key: 'conn/github/a..b', value: { x: 1 } }]);
  });

  it('refuses list prefixes that are not directories', async () => {
    const scope = profileScope(await makeStore(), 'alice');
    await expect(scope.list('conn')).rejects.toThrow(TypeError);
    await expect(scope.list('/conn/')).rejects.toThrow(TypeError);
    await expect(scope.list('conn//')).rejects.toThrow(TypeError);
  });

  it('refuses an invalid handle', async () => {
    const store = await makeStore();
    expect(() => profileScope(store, 'alice/conn')).toThrow(
      expect.objectContaining({ code: 'ERR_NAME_INVALID' }),
    );
    expect(() => profileScope(store, '')).toThrow(expect.objectContaining({ code: 'ERR_NAME_INVALID' }));
  });
});
