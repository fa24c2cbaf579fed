import { domainToASCII } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalise, parseAuthority } from '../../src/proxy/destination.js';
import { ProviderRegistry } from '../../src/providers/registry.js';
import type { ProviderDef } from '../../src/providers/types.js';

/**
 * Issue 6 item 7 (canonicaliser part; the one-byte-flip property of PoP tokens lives in
 * test/unit/identity/pop.test.ts "for random positions and masks (fast-check)", and is exercised over
 * HTTP in identity.test.ts "any single byte flipped is refused").
 */
const HOST = 'api.example.com';
const def: ProviderDef = {
  name: 'ex',
  displayName: 'ex',
  docsUrl: 'https://example.test',
  hosts: [{ host: HOST }, { host: 'alt.example.com', port: 8443 }],
  fields: ['api_key'],
  inject: [{ type: 'header', name: 'Authorization', template: 'Bearer {{api_key}}' }],
};
const registry = new ProviderRegistry({ bundled: [def] });

const tricky = [
  '@',
  '%',
  '%2e',
  '\\',
  ':',
  '.',
  '..',
  '[',
  ']',
  ' ',
  '\t',
  '\0',
  '/',
  '?',
  '#',
  '_',
  '-',
  'ı',
  'ａ',
  'İ',
  'xn--',
  '0x7f',
  '127.0.0.1',
  '::1',
  'user:pw@',
  'API',
  'EXAMPLE',
  '\u200b',
  '。',
];
/** Mutations of the provider host: case flips, dots, inserted tricky fragments, ports. */
const variant = fc
  .tuple(
    fc.array(fc.boolean(), { minLength: HOST.length, maxLength: HOST.length }),
    fc.array(fc.tuple(fc.nat({ max: HOST.length }), fc.constantFrom(...tricky)), { maxLength: 2 }),
    fc.constantFrom('', '.', '..'),
    fc.constantFrom('', ':443', ':0443', ':8443', ':443:443', ':', ':+443', ':65979'),
  )
  .map(([flips, inserts, dot, port]) => {
    let h = [...HOST].map((c, i) => (flips[i] ? c.toUpperCase() : c)).join('');
    for (const [at, frag] of inserts) h = h.slice(0, at) + frag + h.slice(at);
    return h + dot + port;
  });
const anything = fc.oneof(
  variant,
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
);

describe('the destination canonicaliser', () => {
  it('is idempotent, and its output is a fixed point of the WHATWG URL host parser', () => {
    fc.assert(
      fc.property(anything, (raw) => {
        let out: string;
        try {
          out = canonicalise(raw, 443);
        } catch {
          return;
        }
        expect(canonicalise(out)).toBe(out);
        const a = parseAuthority(out);
        if (a.kind === 'name') {
          // A client library (undici's origin) would see exactly this host, not a rewritten one.
          expect(new URL(`https://${a.host}:${a.port}/`).hostname).toBe(a.host);
          expect(domainToASCII(a.host)).toBe(a.host);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('only case and one trailing dot may differ from the provider host and still match', () => {
    fc.assert(
      fc.property(variant, (raw) => {
        let a;
        try {
          a = parseAuthority(raw, 443);
        } catch {
          return;
        }
        const matched = registry.match({ host: a.host, port: a.port, path: '/' }) !== undefined;
        expect(matched).toBe(/^api\.example\.com\.?(:443)?$/i.test(raw));
      }),
      { numRuns: 5000 },
    );
  });

  it('a declared non-default port matches only itself', () => {
    for (const raw of ['alt.example.com:8443', 'ALT.example.com.:8443']) {
      const a = parseAuthority(raw);
      expect(registry.match({ host: a.host, port: a.port, path: '/' })?.name).toBe('ex');
    }
    for (const raw of ['alt.example.com:443', 'alt.example.com:08443', 'alt.example.com:8444']) {
      let a;
      try {
        a = parseAuthority(raw);
      } catch {
        continue;
      }
      expect(registry.match({ host: a.host, port: a.port, path: '/' })).toBeUndefined();
    }
  });

  it('accepted output never carries userinfo, percent-encoding, backslashes, spaces or non-ASCII', () => {
    fc.assert(
      fc.property(anything, (raw) => {
        let out: string;
        try {
          out = canonicalise(raw, 443);
        } catch {
          return;
        }
        expect(out).toMatch(/^[a-z0-9._\-[\]:]+$/);
        expect(out).not.toMatch(/\.:|\.\.|^\.|@|%|\\/);
      }),
      { numRuns: 5000 },
    );
  });
});
