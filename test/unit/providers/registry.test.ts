import { describe, expect, it } from 'vitest';
import { AppError } from '../../../src/errors.js';
import { ProviderRegistry } from '../../../src/providers/index.js';
import type { HostRule, ProviderDef } from '../../../src/providers/index.js';
import { def } from './fixtures.js';

const p = (name: string, ...hosts: HostRule[]): ProviderDef => def({ name, hosts });
const at = (host: string, path = '/', port = 443) => ({ host, port, path });

function registry(...defs: ProviderDef[]): ProviderRegistry {
  return new ProviderRegistry({ bundled: defs });
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof AppError ? e.code : 'not an AppError';
  }
  return undefined;
}

describe('ProviderRegistry matching', () => {
  it('matches an exact host on its declared port only (default 443)', () => {
    const r = registry(p('a', { host: 'api.example.com' }), p('b', { host: 'api.example.com', port: 8443 }));
    expect(r.match(at('api.example.com'))?.name).toBe('a');
    expect(r.match(at('api.example.com', '/', 8443))?.name).toBe('b');
    expect(r.match(at('api.example.com', '/', 80))).toBeUndefined();
    expect(r.covers('api.example.com', 443)).toBe(true);
    expect(r.covers('api.example.com', 444)).toBe(false);
  });

  it('a wildcard matches exactly one extra label', () => {
    const r = registry(p('w', { host: '*.example.com' }));
    expect(r.match(at('a.example.com'))?.name).toBe('w');
    expect(r.match(at('example.com'))).toBeUndefined();
    expect(r.match(at('a.b.example.com'))).toBeUndefined();
    expect(r.match(at('aexample.com'))).toBeUndefined();
    expect(r.covers('a.example.com', 443)).toBe(true);
    expect(r.covers('a.b.example.com', 443)).toBe(false);
  });

  it('an exact host beats a wildcard', () => {
    const r = registry(p('w', { host: '*.example.com' }), p('e', { host: 'api.example.com' }));
    expect(r.match(at('api.example.com'))?.name).toBe('e');
    expect(r.match(at('www.example.com'))?.name).toBe('w');
  });

  it('longest path prefix wins; "/v1" covers "/v1" and "/v1/…" but not "/v10"', () => {
    const r = registry(
      p('whole', { host: 'api.example.com' }),
      p('v1', { host: 'api.example.com', pathPrefix: '/v1' }),
      p('v1-admin', { host: 'api.example.com', pathPrefix: '/v1/admin' }),
    );
    expect(r.match(at('api.example.com', '/v1'))?.name).toBe('v1');
    expect(r.match(at('api.example.com', '/v1/'))?.name).toBe('v1');
    expect(r.match(at('api.example.com', '/v1/chat?x=/v1/admin'))?.name).toBe('v1');
    expect(r.match(at('api.example.com', '/v1/admin/users'))?.name).toBe('v1-admin');
    expect(r.match(at('api.example.com', '/v1/administrator'))?.name).toBe('v1');
    expect(r.match(at('api.example.com', '/v10'))?.name).toBe('whole');
    expect(r.match(at('api.example.com', '/'))?.name).toBe('whole');
  });

  it('a prefix-only host gives no match outside its prefixes', () => {
    const r = registry(p('gl', { host: 'gitlab.example.com', pathPrefix: '/api' }));
    expect(r.match(at('gitlab.example.com', '/api/v4/projects'))?.name).toBe('gl');
    expect(r.match(at('gitlab.example.com', '/apix'))).toBeUndefined();
    expect(r.match(at('gitlab.example.com', '/users/sign_in'))).toBeUndefined();
    expect(r.covers('gitlab.example.com', 443)).toBe(true);
  });

  it('ambiguous paths never match a prefix rule', () => {
    const r = registry(p('v1', { host: 'api.example.com', pathPrefix: '/v1' }));
    for (const path of [
      '/v1/../admin',
      '/v1/..;/admin',
      '/v1/.;x/y',
      '/v1/...',
      '/v1/..%3B/x',
      '/v1/..%00/x',
      '/v1/..%20/x',
      '/v1/%252e%252e/x',
      '/v1/%u002e%u002e/x',
      '/v1/%c0%ae%c0%ae/x',
      '/v1/./x',
      '/v1/%2e%2e/x',
      '/v1%2fx',
      '/v1\\x',
      'v1/x',
      '*',
    ]) {
      expect(r.match(at('api.example.com', path)), path).toBeUndefined();
    }
    expect(r.match(at('api.example.com', '/v1/files/a%20b'))?.name).toBe('v1');
  });

  it('hosts that are not plain lower-case DNS names never match (the caller canonicalises)', () => {
    const r = registry(p('a', { host: 'api.example.com' }), p('w', { host: '*.example.com' }));
    for (const host of [
      'API.example.com',
      'api.example.com.',
      'api.example.com:443',
      'user@api.example.com',
      '1.2.3.4',
      '[::1]',
      'api%2eexample.com',
      '',
      'x.example.com\u0000',
    ]) {
      expect(r.match(at(host)), host).toBeUndefined();
      expect(r.covers(host, 443), host).toBe(false);
    }
    expect(r.match({ host: 'api.example.com', port: 443.5, path: '/' })).toBeUndefined();
  });

  it('handles very long paths cheaply (bounded by the longest prefix)', () => {
    const r = registry(p('v1', { host: 'api.example.com', pathPrefix: '/v1' }));
    expect(r.match(at('api.example.com', `/v1${'/a'.repeat(100_000)}`))?.name).toBe('v1');
    expect(r.match(at('api.example.com', `/v2${'/a'.repeat(100_000)}`))).toBeUndefined();
  });
});

describe('ProviderRegistry construction', () => {
  it('refuses two providers claiming the same host, port and prefix', () => {
    expect(
      code(() =>
        registry(p('a', { host: 'api.example.com' }), p('b', { host: 'api.example.com', port: 443 })),
      ),
    ).toBe('ERR_PROVIDER_EXISTS');
    expect(
      code(() =>
        registry(
          p('a', { host: '*.example.com', pathPrefix: '/x' }),
          p('b', { host: '*.example.com', pathPrefix: '/x' }),
        ),
      ),
    ).toBe('ERR_PROVIDER_EXISTS');
    // Different prefix or port: no clash.
    expect(
      code(() =>
        registry(p('a', { host: 'api.example.com' }), p('b', { host: 'api.example.com', pathPrefix: '/x' })),
      ),
    ).toBeUndefined();
  });

  it('a custom provider replaces a bundled name only with override', () => {
    const bundled = [p('svc', { host: 'api.example.com' })];
    const custom = p('svc', { host: 'api.example.com', port: 8443 });
    expect(code(() => new ProviderRegistry({ bundled, custom: [{ def: custom, override: false }] }))).toBe(
      'ERR_PROVIDER_EXISTS',
    );
    const r = new ProviderRegistry({ bundled, custom: [{ def: custom, override: true }] });
    expect(r.get('svc')?.hosts[0]?.port).toBe(8443);
    expect(r.origin('svc')).toBe('override');
    // The bundled rules are gone with the bundled definition.
    expect(r.match(at('api.example.com'))).toBeUndefined();
    expect(r.match(at('api.example.com', '/', 8443))?.name).toBe('svc');
  });

  it('a custom provider may not take over a host another provider claims', () => {
    const bundled = [p('svc', { host: 'api.example.com' })];
    expect(
      code(
        () =>
          new ProviderRegistry({
            bundled,
            custom: [{ def: p('mine', { host: 'api.example.com' }), override: false }],
          }),
      ),
    ).toBe('ERR_PROVIDER_EXISTS');
  });

  it('validates what it is given and freezes what it hands out', () => {
    expect(code(() => registry(p('bad', { host: '127.0.0.1' })))).toBe('ERR_PROVIDER_INVALID');
    const r = registry(p('a', { host: 'api.example.com' }));
    const got = r.get('a')!;
    expect(Object.isFrozen(got) && Object.isFrozen(got.hosts[0])).toBe(true);
    expect(r.list().map((d) => d.name)).toEqual(['a']);
    expect(r.get('nope')).toBeUndefined();
  });
});
