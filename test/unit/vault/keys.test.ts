import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AUDIT_HEAD_KEY,
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

const name = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,63}$/);
const hash = 'ab'.repeat(32);

/** A small shared pool makes equal and prefix-related names (a, a2, a.b) common in pairs. */
const anyName = fc.oneof(name, fc.constantFrom('a', 'a2', 'a.b', 'a-', 'alice', 'alice2', 'conn', 'default'));
const hex = fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), fc.constant(hash));

type Spec = NonNullable<ReturnType<typeof parseKey>>;
const spec: fc.Arbitrary<Spec> = fc.oneof(
  fc.record({
    kind: fc.constant('connection' as const),
    handle: anyName,
    provider: anyName,
    connection: anyName,
  }),
  fc.record({ kind: fc.constant('default' as const), handle: anyName, provider: anyName }),
  fc.record({ kind: fc.constant('oauth-client' as const), handle: anyName, provider: anyName }),
  fc.record({ kind: fc.constant('registry' as const), handle: anyName }),
  fc.record({ kind: fc.constant('session' as const), hash: hex }),
  fc.record({ kind: fc.constant('provider' as const), name: anyName }),
  fc.constant({ kind: 'keycheck' as const }),
  fc.constant({ kind: 'audit-head' as const }),
);

function build(s: Spec): string {
  switch (s.kind) {
    case 'connection':
      return connectionKey(s.handle, s.provider, s.connection);
    case 'default':
      return defaultKey(s.handle, s.provider);
    case 'oauth-client':
      return oauthClientKey(s.handle, s.provider);
    case 'registry':
      return registryKey(s.handle);
    case 'session':
      return sessionKey(s.hash);
    case 'provider':
      return providerKey(s.name);
    case 'keycheck':
      return KEYCHECK_KEY;
    case 'audit-head':
      return AUDIT_HEAD_KEY;
  }
}

/** LevelDB's default comparator: bytewise over the UTF-8 encoding. */
function inRange(key: string, range: { gte: string; lt: string }): boolean {
  const k = Buffer.from(key);
  return Buffer.compare(k, Buffer.from(range.gte)) >= 0 && Buffer.compare(k, Buffer.from(range.lt)) < 0;
}

/** Every kind of key a profile can own, plus the global ones. */
function allKeys(h: string, p: string, c: string): string[] {
  return [
    connectionKey(h, p, c),
    defaultKey(h, p),
    oauthClientKey(h, p),
    registryKey(h),
    providerKey(p),
    sessionKey(hash),
    KEYCHECK_KEY,
    AUDIT_HEAD_KEY,
  ];
}

describe('record keys', () => {
  it('builds the documented shapes', () => {
    expect(connectionKey('alice', 'github', 'work')).toBe('profile/alice/conn/github/work');
    expect(defaultKey('alice', 'github')).toBe('profile/alice/default/github');
    expect(oauthClientKey('alice', 'github')).toBe('profile/alice/oauth-client/github');
    expect(registryKey('alice')).toBe('registry/alice');
    expect(sessionKey(hash)).toBe(`session/${hash}`);
    expect(providerKey('github')).toBe('provider/github');
    expect(profilePrefix('alice')).toBe('profile/alice/');
  });

  it('parses every built key back to its parts', () => {
    expect(parseKey(connectionKey('a.b', 'p-1', 'c_2'))).toEqual({
      kind: 'connection',
      handle: 'a.b',
      provider: 'p-1',
      connection: 'c_2',
    });
    expect(parseKey(defaultKey('a', 'p'))).toEqual({ kind: 'default', handle: 'a', provider: 'p' });
    expect(parseKey(oauthClientKey('a', 'p'))).toEqual({ kind: 'oauth-client', handle: 'a', provider: 'p' });
    expect(parseKey(registryKey('a'))).toEqual({ kind: 'registry', handle: 'a' });
    expect(parseKey(sessionKey(hash))).toEqual({ kind: 'session', hash });
    expect(parseKey(providerKey('p'))).toEqual({ kind: 'provider', name: 'p' });
    expect(parseKey(KEYCHECK_KEY)).toEqual({ kind: 'keycheck' });
  });

  it.each([
    '',
    'profile/alice',
    'profile/alice/conn/github',
    'profile/alice/conn/github/work/extra',
    'profile/Alice/default/github',
    'profile/alice/other/github',
    'profile//default/github',
    'registry/alice/x',
    'session/ABCD',
    'provider/',
    'meta/other',
  ])('rejects the malformed key %j', (key) => {
    expect(parseKey(key)).toBeUndefined();
  });

  it.each(['', 'Alice', 'a/b', '../x', '-a', 'a'.repeat(65), 'a b'])('refuses the name %j', (bad) => {
    expect(() => profilePrefix(bad)).toThrow(expect.objectContaining({ code: 'ERR_NAME_INVALID' }));
    expect(() => connectionKey('alice', bad, 'work')).toThrow(
      expect.objectContaining({ code: 'ERR_NAME_INVALID' }),
    );
    expect(() => connectionKey('alice', 'github', bad)).toThrow(
      expect.objectContaining({ code: 'ERR_NAME_INVALID' }),
    );
  });

  it('refuses a session hash that is not lowercase sha256 hex', () => {
    expect(() => sessionKey('AB'.repeat(32))).toThrow(TypeError);
    expect(() => sessionKey('ab')).toThrow(TypeError);
  });

  it('gives prefix bounds that stop before the sibling profile', () => {
    const r = prefixRange(profilePrefix('alice'));
    expect(r).toEqual({ gte: 'profile/alice/', lt: 'profile/alice0' });
    expect(inRange(connectionKey('alice', 'p', 'c'), r)).toBe(true);
    expect(inRange(connectionKey('alice2', 'p', 'c'), r)).toBe(false);
    expect(inRange(connectionKey('alice.x', 'p', 'c'), r)).toBe(false);
    expect(() => prefixRange('profile/alice')).toThrow(TypeError);
  });

  it('is injective and round-trips for arbitrary valid names', () => {
    fc.assert(
      fc.property(spec, spec, (a, b) => {
        const ka = build(a);
        expect(parseKey(ka)).toEqual(a);
        // Equal keys if and only if equal (kind, parts): the encoding loses nothing.
        expect(ka === build(b)).toBe(JSON.stringify(a) === JSON.stringify(b));
      }),
      { numRuns: 2000 },
    );
  });

  it("never lets one profile's prefix range include another profile's keys", () => {
    fc.assert(
      fc.property(name, name, name, name, (h1, h2, p, c) => {
        fc.pre(h1 !== h2);
        const range = prefixRange(profilePrefix(h1));
        for (const key of allKeys(h2, p, c)) expect(inRange(key, range)).toBe(false);
        for (const key of allKeys(h1, p, c).slice(0, 3)) expect(inRange(key, range)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('finds the hard cases: a handle that is a prefix of another', () => {
    fc.assert(
      fc.property(name, fc.stringMatching(/^[a-z0-9._-]{1,10}$/), name, (h, suffix, p) => {
        const longer = (h + suffix).slice(0, 64);
        fc.pre(longer !== h);
        expect(inRange(defaultKey(longer, p), prefixRange(profilePrefix(h)))).toBe(false);
      }),
      { numRuns: 500 },
    );
  });
});
