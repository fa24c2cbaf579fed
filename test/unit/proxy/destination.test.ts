import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  canonicalise,
  parseAbsoluteHttp,
  parseAuthority,
  parseOriginTarget,
} from '../../../src/proxy/destination.js';

describe('parseAuthority', () => {
  it.each([
    ['API.Example.COM:443', 'api.example.com:443'],
    ['api.example.com.:443', 'api.example.com:443'],
    ['api.example.com', 'api.example.com:443'],
    ['127.0.0.1:8080', '127.0.0.1:8080'],
    ['[::1]:443', '[::1]:443'],
    ['[FE80::1]:443', '[fe80::1]:443'],
    ['xn--bcher-kva.example:443', 'xn--bcher-kva.example:443'],
  ])('%s → %s', (input, out) => {
    expect(canonicalise(input, 443)).toBe(out);
  });

  it('classifies IP literals', () => {
    expect(parseAuthority('10.1.2.3:1').kind).toBe('ipv4');
    expect(parseAuthority('[::1]:1').kind).toBe('ipv6');
    expect(parseAuthority('a.b:1').kind).toBe('name');
  });

  it.each([
    ['', 'empty'],
    [':443', 'empty host'],
    ['user@api.example.com:443', 'userinfo'],
    ['api%2eexample.com:443', 'percent-encoding'],
    ['api.example.com\\@evil:443', 'backslash'],
    ['api.example.com..:443', 'two trailing dots'],
    ['.api.example.com:443', 'empty label'],
    ['api..example.com:443', 'empty label'],
    ['-api.example.com:443', 'edge hyphen'],
    ['api.example.com:0', 'port 0'],
    ['api.example.com:65536', 'port too big'],
    ['api.example.com:+443', 'signed port'],
    ['api.example.com:0443', 'leading zero'],
    ['api.example.com:', 'empty port'],
    ['::1:443', 'bare IPv6'],
    ['[::1', 'unclosed bracket'],
    ['[::1]x:443', 'junk after bracket'],
    ['[fe80::1%25eth0]:443', 'zone id'],
    ['2130706433:443', 'numeric host'],
    ['0x7f.1:443', 'hex host'],
    ['127.1:443', 'short IPv4'],
    ['010.0.0.1:443', 'octal-looking IPv4'],
    ['bücher.example:443', 'unicode'],
    ['a b:443', 'space'],
    [`${'a'.repeat(64)}.com:443`, 'label too long'],
  ])('refuses %s (%s)', (input) => {
    expect(() => canonicalise(input, 443)).toThrow(
      expect.objectContaining({ code: 'ERR_PROXY_BAD_REQUEST' }),
    );
  });

  it('answers a repeated spelling from memory with the same frozen result, and refuses a bad one every time', () => {
    const a = parseAuthority('Memo.Example.com', 80);
    expect(parseAuthority('Memo.Example.com', 80)).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    // The default port is part of the key: the same bytes with another default are another answer.
    expect(parseAuthority('Memo.Example.com', 443)).toEqual({
      host: 'memo.example.com',
      port: 443,
      kind: 'name',
    });
    for (let i = 0; i < 2; i++) {
      expect(() => parseAuthority('user@memo.example.com', 80)).toThrow(
        expect.objectContaining({ code: 'ERR_PROXY_BAD_REQUEST' }),
      );
    }
  });

  it('requires a port when there is no default (CONNECT)', () => {
    expect(() => parseAuthority('api.example.com')).toThrow();
    expect(parseAuthority('api.example.com:8443').port).toBe(8443);
  });

  it('never echoes the input in its error (it may hold userinfo)', () => {
    try {
      parseAuthority('user:sk-secret@host:443');
    } catch (e) {
      expect(String((e as Error).message)).not.toContain('sk-secret');
    }
  });
});

describe('canonicalise is idempotent (property)', () => {
  const label = fc.stringMatching(/^[a-zA-Z0-9_-]{1,12}$/);
  const host = fc.oneof(
    fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.')),
    fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => `${l.join('.')}.`),
    fc.ipV4(),
    fc.ipV6().map((v) => `[${v}]`),
    fc.string({ maxLength: 20 }),
  );
  const authority = fc.tuple(
    host,
    fc.oneof(
      fc.constant(''),
      fc.integer({ min: 0, max: 70000 }).map((p) => `:${p}`),
      fc.string({ maxLength: 6 }),
    ),
  );

  it('canonicalise(canonicalise(x)) === canonicalise(x) whenever x is accepted', () => {
    fc.assert(
      fc.property(authority, ([hst, port]) => {
        let once: string;
        try {
          once = canonicalise(hst + port, 443);
        } catch {
          return true;
        }
        expect(canonicalise(once, 443)).toBe(once);
        expect(canonicalise(once)).toBe(once);
        return true;
      }),
      { numRuns: 3000 },
    );
  });

  it('accepted output never contains what matching would treat differently', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        let out: string;
        try {
          out = canonicalise(s, 443);
        } catch {
          return true;
        }
        expect(out).toBe(out.toLowerCase());
        expect(out).not.toMatch(/[@%\\\s]|\.:/);
        return true;
      }),
      { numRuns: 3000 },
    );
  });
});

describe('request targets', () => {
  it('splits absolute http:// targets without repairing them', () => {
    expect(parseAbsoluteHttp('http://Api.Example.com/v1/x?q=1')).toMatchObject({
      authority: { host: 'api.example.com', port: 80 },
      target: { path: '/v1/x', pathAndQuery: '/v1/x?q=1' },
    });
    expect(parseAbsoluteHttp('http://a.example:8080').target.pathAndQuery).toBe('/');
    expect(parseAbsoluteHttp('http://a.example?x=1').target.pathAndQuery).toBe('/?x=1');
  });

  it.each([
    'https://a.example/',
    'ftp://a.example/',
    'http://user@a.example/',
    'http://a.example\\b/',
    'http:/a.example/',
    'http://a.example/#frag',
  ])('refuses %s', (t) => {
    expect(() => parseAbsoluteHttp(t)).toThrow();
  });

  it.each(['/a/../b', '/a/./b', '/a/%2e%2E/b', '/..', '/a\\b'])(
    'refuses dot segments and backslashes: %s',
    (t) => {
      expect(() => parseOriginTarget(t)).toThrow();
    },
  );

  it('keeps ordinary paths', () => {
    expect(parseOriginTarget('/v1/a.b/..c?x=../y')).toEqual({
      path: '/v1/a.b/..c',
      pathAndQuery: '/v1/a.b/..c?x=../y',
    });
  });
});
