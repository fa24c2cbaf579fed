import { beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../../src/errors.js';
import { generateIdentity, ProfileRegistry, type Ed25519PublicJwk } from '../../../src/identity/index.js';
import { MemoryKvStore } from './memory-store.js';

const jwk = async (): Promise<Ed25519PublicJwk> => (await generateIdentity()).publicJwk;

async function fails(p: Promise<unknown>, code: string): Promise<void> {
  const e = await p.then(
    () => expect.unreachable('should have failed'),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(AppError);
  expect((e as AppError).code).toBe(code);
}

let store: MemoryKvStore;
let reg: ProfileRegistry;
beforeEach(() => {
  store = new MemoryKvStore();
  reg = new ProfileRegistry(store, { clock: () => 1234 });
});

describe('profile registry', () => {
  it('bootstraps the owner exactly once, also under a concurrent race', async () => {
    const [k1, k2] = [await jwk(), await jwk()];
    const results = await Promise.allSettled([
      reg.bootstrapOwner('alice', k1),
      reg.bootstrapOwner('mallory', k2),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(await reg.list()).toHaveLength(1);
    const winner = (await reg.list())[0]!;
    expect(winner.owner).toBe(true);
    await fails(reg.bootstrapOwner(winner.handle, await jwk()), 'ERR_AUTH_FORBIDDEN');
    await fails(reg.bootstrapOwner('zed', await jwk()), 'ERR_AUTH_FORBIDDEN');
  });

  it('stores {handle, publicJwk, owner, createdAt} under registry/<handle>', async () => {
    const k = await jwk();
    await reg.bootstrapOwner('alice', k);
    expect(await store.get('registry/alice')).toEqual({
      handle: 'alice',
      publicJwk: k,
      owner: true,
      createdAt: 1234,
    });
    expect(await reg.lookupKey('alice')).toEqual(k);
    expect(await reg.lookupKey('bob')).toBeUndefined();
    expect(await reg.lookupKey('../alice')).toBeUndefined();
  });

  it('lets only the owner register and remove', async () => {
    await reg.bootstrapOwner('alice', await jwk());
    await reg.register('alice', 'bob', await jwk());
    expect(await reg.get('bob')).toMatchObject({ handle: 'bob', owner: false });
    await fails(reg.register('bob', 'carol', await jwk()), 'ERR_AUTH_NOT_OWNER');
    await fails(reg.register('nobody', 'carol', await jwk()), 'ERR_AUTH_NOT_OWNER');
    await fails(reg.remove('bob', 'alice'), 'ERR_AUTH_NOT_OWNER');
    await fails(reg.remove('bob', 'bob'), 'ERR_AUTH_NOT_OWNER');
    expect(await reg.get('carol')).toBeUndefined();
    await fails(reg.register('alice', 'bob', await jwk()), 'ERR_PROFILE_EXISTS');
    expect((await reg.remove('alice', 'bob')).handle).toBe('bob');
    expect(await reg.get('bob')).toBeUndefined();
    await fails(reg.remove('alice', 'bob'), 'ERR_PROFILE_NOT_FOUND');
  });

  it('remove destroys the data after its checks and before the entry: a failure leaves it to delete again', async () => {
    await reg.bootstrapOwner('alice', await jwk());
    await reg.register('alice', 'bob', await jwk());
    const calls: string[] = [];
    await fails(
      reg.remove('bob', 'bob', async () => void calls.push('not owner')),
      'ERR_AUTH_NOT_OWNER',
    );
    await fails(
      reg.remove('alice', 'nobody', async () => void calls.push('missing')),
      'ERR_PROFILE_NOT_FOUND',
    );
    expect(calls).toEqual([]);
    await expect(
      reg.remove('alice', 'bob', async () => {
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');
    expect(await reg.get('bob')).toBeDefined();
    await reg.remove('alice', 'bob', async () => {
      expect(await reg.get('bob')).toBeDefined(); // the entry goes last
      calls.push('destroyed');
    });
    expect(calls).toEqual(['destroyed']);
    expect(await reg.get('bob')).toBeUndefined();
  });

  it('register clears what an earlier profile of the name left, after its checks and before the entry', async () => {
    await reg.bootstrapOwner('alice', await jwk());
    const calls: string[] = [];
    await fails(
      reg.register('alice', 'alice', await jwk(), async () => void calls.push('exists')),
      'ERR_PROFILE_EXISTS',
    );
    await fails(
      reg.register('nobody', 'bob', await jwk(), async () => void calls.push('not owner')),
      'ERR_AUTH_NOT_OWNER',
    );
    expect(calls).toEqual([]);
    await expect(
      reg.register('alice', 'bob', await jwk(), async () => {
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');
    expect(await reg.get('bob')).toBeUndefined();
    await reg.register('alice', 'bob', await jwk(), async () => {
      expect(await reg.get('bob')).toBeUndefined();
      calls.push('cleared');
    });
    expect(calls).toEqual(['cleared']);
    expect(await reg.get('bob')).toBeDefined();
  });

  it('never lets the owner remove itself', async () => {
    await reg.bootstrapOwner('alice', await jwk());
    await fails(reg.remove('alice', 'alice'), 'ERR_AUTH_FORBIDDEN');
    expect(await reg.get('alice')).toBeDefined();
  });

  it('refuses invalid names and JWKs (private keys above all)', async () => {
    const k = await jwk();
    await fails(reg.bootstrapOwner('Alice', k), 'ERR_NAME_INVALID');
    await fails(reg.bootstrapOwner('alice', { ...k, d: k.x }), 'ERR_INPUT_INVALID');
    await fails(reg.bootstrapOwner('alice', { ...k, kty: 'RSA' }), 'ERR_INPUT_INVALID');
    await reg.bootstrapOwner('alice', k);
    await fails(reg.register('alice', 'bob', { ...k, x: 'short' }), 'ERR_INPUT_INVALID');
    await fails(reg.register('alice', 'bob/x', await jwk()), 'ERR_NAME_INVALID');
    expect(store.dump()).not.toContain('"d"');
  });

  it('fails closed on a tampered record', async () => {
    const k = await jwk();
    await reg.bootstrapOwner('alice', k);
    await store.put('registry/alice', {
      handle: 'alice',
      publicJwk: { ...k, d: 'x' },
      owner: true,
      createdAt: 1,
    });
    await fails(reg.lookupKey('alice'), 'ERR_VAULT_CORRUPT');
    await store.put('registry/alice', { handle: 'bob', publicJwk: k, owner: true, createdAt: 1 });
    await fails(reg.get('alice'), 'ERR_VAULT_CORRUPT');
  });
});
