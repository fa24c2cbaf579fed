import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  KEYCHECK_KEY,
  connectionKey,
  defaultKey,
  oauthClientKey,
  parseKey,
  prefixRange,
  profilePrefix,
  providerKey,
  registryKey,
  sessionKey,
} from '../../../src/vault/keys.js';
import { memoryStore } from '../../../src/vault/memory-store.js';
import { profileScope } from '../../../src/vault/scope.js';

/**
 * Issue 6, item 7: the key encoding is injective and prefix-disjoint across profiles. keys.test.ts checks
 * the shapes; these properties attack the encoding with names built to collide: one handle a prefix of
 * another (alice / alice2 / alice.x), names that look like structure (conn, default), and arbitrary
 * strings that try to smuggle a separator.
 */

const valid = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,63}$/);
const tricky = fc.constantFrom(
  'a',
  'a0',
  'a.',
  'a-',
  'a_',
  'alice',
  'alice2',
  'alice.x',
  'conn',
  'default',
  'oauth-client',
  'profile',
  '0',
);
/** A handle and a sibling made by extending or truncating it: the pairs where a naive prefix leaks. */
const siblings = fc
  .tuple(valid, fc.stringMatching(/^[a-z0-9._-]{1,6}$/))
  .map(([h, tail]) => [h, (h + tail).slice(0, 64)] as const)
  .filter(([x, y]) => x !== y);
const handlePair = fc.oneof(
  siblings,
  fc.tuple(tricky, tricky),
  fc.tuple(valid, tricky),
  fc.tuple(valid, valid),
);
const part = fc.oneof(valid, tricky);

/** Every key a profile owns. */
const profileKeys = (h: string, p: string, c: string): string[] => [
  connectionKey(h, p, c),
  defaultKey(h, p),
  oauthClientKey(h, p),
];

/** LevelDB's default comparator is bytewise over UTF-8. */
const within = (key: string, r: { gte: string; lt: string }): boolean =>
  Buffer.compare(Buffer.from(key), Buffer.from(r.gte)) >= 0 &&
  Buffer.compare(Buffer.from(key), Buffer.from(r.lt)) < 0;

describe('key encoding properties (fast-check)', () => {
  it('profile prefixes are prefix-free: neither of two handles’ prefixes starts the other', () => {
    fc.assert(
      fc.property(handlePair, ([h1, h2]) => {
        fc.pre(h1 !== h2);
        expect(profilePrefix(h1).startsWith(profilePrefix(h2))).toBe(false);
        expect(profilePrefix(h2).startsWith(profilePrefix(h1))).toBe(false);
      }),
      { numRuns: 3000 },
    );
  });

  it('a profile’s scan range holds all of its keys and none of another profile’s, nor any global key', () => {
    fc.assert(
      fc.property(handlePair, part, part, fc.stringMatching(/^[0-9a-f]{64}$/), (pair, p, c, hash) => {
        const [h1, h2] = pair;
        fc.pre(h1 !== h2);
        const r1 = prefixRange(profilePrefix(h1));
        const globals = [registryKey(h1), registryKey(h2), providerKey(p), sessionKey(hash), KEYCHECK_KEY];
        for (const k of profileKeys(h1, p, c)) expect(within(k, r1), k).toBe(true);
        for (const k of [...profileKeys(h2, p, c), ...globals]) expect(within(k, r1), k).toBe(false);
      }),
      { numRuns: 3000 },
    );
  });

  it('is injective across kinds and profiles: equal keys only from equal parts', () => {
    const spec = fc.tuple(
      fc.constantFrom('conn', 'default', 'oauth', 'registry', 'provider'),
      part,
      part,
      part,
    );
    const build = ([kind, h, p, c]: readonly [string, string, string, string]): string =>
      kind === 'conn'
        ? connectionKey(h, p, c)
        : kind === 'default'
          ? defaultKey(h, p)
          : kind === 'oauth'
            ? oauthClientKey(h, p)
            : kind === 'registry'
              ? registryKey(h)
              : providerKey(p);
    /** The parts that kind actually encodes. */
    const significant = ([kind, h, p, c]: readonly [string, string, string, string]): string =>
      JSON.stringify(
        kind === 'conn'
          ? [kind, h, p, c]
          : kind === 'registry'
            ? [kind, h]
            : kind === 'provider'
              ? [kind, p]
              : [kind, h, p],
      );
    fc.assert(
      fc.property(spec, spec, (s1, s2) => {
        expect(build(s1) === build(s2)).toBe(significant(s1) === significant(s2));
      }),
      { numRuns: 5000 },
    );
  });

  it('any string is either refused as a name or encodes to a key that parses back to exactly itself', () => {
    // Separators, dots, upper case, NUL, non-ASCII look-alikes: nothing may be normalised or smuggled.
    const hostile = fc.oneof(
      fc.string({ maxLength: 70 }),
      fc.string({
        unit: fc.constantFrom('a', '/', '.', '\\', '%', '2', 'f', 'A', '\u0000', '\u2044', ' ', '-'),
        maxLength: 12,
      }),
      fc.constantFrom('..', '.', 'a/b', 'a%2fb', 'A', 'a\u0000', 'ａ', 'alice/', '/alice'),
    );
    fc.assert(
      fc.property(hostile, hostile, hostile, (h, p, c) => {
        let key: string;
        try {
          key = connectionKey(h, p, c);
        } catch (e) {
          expect((e as { code?: string }).code).toBe('ERR_NAME_INVALID');
          return;
        }
        expect(parseKey(key)).toEqual({ kind: 'connection', handle: h, provider: p, connection: c });
      }),
      { numRuns: 3000 },
    );
  });

  it('a profile scope, given any relative key, stays inside its own prefix or refuses', async () => {
    const rel = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.string({ unit: fc.constantFrom('a', '/', '.', '..', 'conn', '2'), maxLength: 8 }),
    );
    await fc.assert(
      fc.asyncProperty(handlePair, rel, async ([h1, h2], r) => {
        fc.pre(h1 !== h2);
        const store = memoryStore();
        try {
          await profileScope(store, h1).put(r, { v: 1 });
        } catch (e) {
          expect(e).toBeInstanceOf(TypeError);
          return;
        }
        expect(await store.keys(profilePrefix(h1))).toEqual([profilePrefix(h1) + r]);
        expect(await store.keys(profilePrefix(h2))).toEqual([]);
        expect(await profileScope(store, h2).list('')).toEqual([]);
      }),
      { numRuns: 2000 },
    );
  });
});
