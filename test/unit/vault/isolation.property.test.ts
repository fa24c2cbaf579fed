import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  connectionKey,
  defaultKey,
  oauthClientKey,
  profilePrefix,
  registryKey,
} from '../../../src/vault/keys.js';
import { profileScope } from '../../../src/vault/scope.js';
import { ENGINES, useEngine } from './engines.js';

const name = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,63}$/);
/** Handles built as prefixes/extensions of each other are where a naive encoding would leak. */
const handles = fc
  .tuple(name, fc.stringMatching(/^[a-z0-9._-]{0,8}$/), fc.boolean())
  .map(([h, suffix, swap]) => {
    const longer = (h + suffix).slice(0, 64);
    return swap ? ([longer, h] as const) : ([h, longer] as const);
  })
  .filter(([a, b]) => a !== b);

for (const { name: engine, skip } of ENGINES) {
  describe.skipIf(skip)(`profile isolation on a real ${engine} store`, () => {
    const fx = useEngine(engine);

    it("a profile's prefix scan returns exactly its own records", async () => {
      const store = await fx.open(await fx.place());
      await fc.assert(
        fc.asyncProperty(fc.oneof(handles, fc.tuple(name, name)), name, name, async ([h1, h2], p, c) => {
          fc.pre(h1 !== h2);
          const mine = [connectionKey(h1, p, c), defaultKey(h1, p), oauthClientKey(h1, p)].sort();
          const theirs = [connectionKey(h2, p, c), defaultKey(h2, p), oauthClientKey(h2, p), registryKey(h1)];
          const all = [...mine, ...theirs];
          await store.batch(all.map((key) => ({ type: 'put' as const, key, value: { owner: key } })));
          try {
            expect(await store.keys(profilePrefix(h1))).toEqual(mine);
            const rows = await profileScope(store, h1).list('');
            expect(rows.map((r) => profilePrefix(h1) + r.key)).toEqual(mine);
            for (const r of rows) expect(r.value['owner']).toBe(profilePrefix(h1) + r.key);
          } finally {
            await store.batch(all.map((key) => ({ type: 'del' as const, key })));
          }
        }),
        { numRuns: 150 },
      );
    });
  });
}
