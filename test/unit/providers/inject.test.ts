import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inspect } from 'node:util';
import { AppError } from '../../../src/errors.js';
import { Secret } from '../../../src/secret.js';
import { applyInjection, injectedHeaderNames, planInjection } from '../../../src/providers/index.js';
import { canaryForms } from '../../helpers/canary.js';
import { def, fields } from './fixtures.js';

function thrown(fn: () => unknown): AppError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    return e as AppError;
  }
  throw new Error('did not throw');
}

describe('applyInjection', () => {
  it('removes every caller copy of injected headers (any case) and appends the provider header', () => {
    const d = def();
    const out = applyInjection(
      d,
      fields({ api_key: 'sk-1' }),
      [
        ['Accept', 'application/json'],
        ['authorization', 'Bearer caller'],
        ['AUTHORIZATION', 'Basic x'],
      ],
      '/v1/models',
    );
    expect(out.headers).toEqual([
      ['Accept', 'application/json'],
      ['Authorization', 'Bearer sk-1'],
    ]);
    expect(out.target).toBe('/v1/models');
  });

  it('sets query parameters, replacing caller copies (decoded, any case) and keeping the rest byte for byte', () => {
    const d = def({ inject: [{ type: 'query', name: 'api_key', template: '{{api_key}}' }] });
    const out = applyInjection(
      d,
      fields({ api_key: 'a b&c' }),
      [],
      '/search?q=x%20y&api%5Fkey=caller&API_KEY=2&engine=google',
    );
    expect(out.target).toBe('/search?q=x%20y&engine=google&api_key=a%20b%26c');
    expect(applyInjection(d, fields({ api_key: 'k' }), [], '/search').target).toBe('/search?api_key=k');
    expect(thrown(() => applyInjection(d, fields({ api_key: 'k' }), [], '/s?%zz=1')).code).toBe(
      'ERR_PROXY_BAD_REQUEST',
    );
  });

  it('does not modify its inputs', () => {
    const headers: Array<[string, string]> = [['Authorization', 'x']];
    applyInjection(def(), fields({ api_key: 'k' }), headers, '/');
    expect(headers).toEqual([['Authorization', 'x']]);
  });

  it('lists injected header names without needing secrets', () => {
    const d = def({
      fields: ['a', 'b'],
      inject: [
        { type: 'header', name: 'DD-API-KEY', template: '{{a}}' },
        { type: 'header', name: 'DD-APPLICATION-KEY', template: '{{b}}' },
      ],
    });
    expect(injectedHeaderNames(d)).toEqual(['dd-api-key', 'dd-application-key']);
  });
});

describe('planInjection refusals', () => {
  it('names a missing field without any value', () => {
    const e = thrown(() => planInjection(def(), fields({ other: 'sk-secret-value' })));
    expect(e.code).toBe('ERR_PROVIDER_INVALID');
    expect(e.message).toBe('connection lacks field "api_key" required by provider "example"');
  });

  it.each([
    ['CR LF', 'sk-1\r\nX-Evil: 1'],
    ['LF', 'sk-1\n'],
    ['NUL', 'sk\u00001'],
    ['non-ASCII', 'sk-é'],
    ['surrounding space', ' sk-1'],
    ['empty', ''],
  ])('refuses a header value with %s', (_what, v) => {
    const e = thrown(() => planInjection(def(), fields({ api_key: v })));
    expect(e.code).toBe('ERR_PROVIDER_INVALID');
    expect(e.message).toContain('"api_key"');
  });

  it("refuses a ':' in a Basic user-id but allows it in the password", () => {
    const d = def({
      fields: ['user', 'pass'],
      inject: [{ type: 'header', name: 'Authorization', template: "Basic {{base64(user, ':', pass)}}" }],
    });
    expect(thrown(() => planInjection(d, fields({ user: 'a:b', pass: 'p' }))).message).toContain('"user"');
    const ok = planInjection(d, fields({ user: 'a', pass: 'p:q' }));
    expect(ok.setHeaders).toEqual([['Authorization', `Basic ${Buffer.from('a:p:q').toString('base64')}`]]);
  });

  it('refuses control characters in query values', () => {
    const d = def({ inject: [{ type: 'query', name: 'key', template: '{{api_key}}' }] });
    expect(thrown(() => planInjection(d, fields({ api_key: 'a\nb' }))).code).toBe('ERR_PROVIDER_INVALID');
    expect(thrown(() => planInjection(d, fields({ api_key: 'a\ud800' }))).message).toContain('Unicode');
  });
});

describe('secrets stay in injected values', () => {
  const d = def({
    fields: ['api_key', 'user'],
    inject: [
      { type: 'header', name: 'X-Key', template: 'Key {{api_key}}' },
      { type: 'header', name: 'Authorization', template: "Basic {{base64(user, ':', api_key)}}" },
      { type: 'query', name: 'k', template: '{{api_key}}' },
    ],
  });
  // Printable, distinctive, long enough not to occur by chance.
  const secretArb = fc.string({
    minLength: 12,
    maxLength: 40,
    unit: fc.constantFrom(...'abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-_'),
  });

  it('a secret appears only in returned header/query values, never in errors or names', () => {
    fc.assert(
      fc.property(secretArb, fc.constantFrom('missing', 'crlf', 'colon-user', 'ok'), (secret, mode) => {
        const f =
          mode === 'missing'
            ? fields({ user: secret })
            : mode === 'crlf'
              ? fields({ api_key: `${secret}\r\n`, user: 'u' })
              : mode === 'colon-user'
                ? fields({ api_key: 'k-0000000000', user: `${secret}:x` })
                : fields({ api_key: secret, user: 'u' });
        let result: ReturnType<typeof applyInjection> | undefined;
        let error: unknown;
        try {
          result = applyInjection(d, f, [['Accept', '*/*']], '/p?x=1');
        } catch (e) {
          error = e;
        }
        if (mode === 'ok') {
          expect(result).toBeDefined();
          expect(result!.headers.find(([n]) => n === 'X-Key')?.[1]).toBe(`Key ${secret}`);
          expect(result!.target).toBe(`/p?x=1&k=${encodeURIComponent(secret)}`);
          // Names never carry it.
          for (const [n] of result!.headers)
            expect(canaryForms(secret).some((c) => n.includes(c))).toBe(false);
          return;
        }
        expect(error).toBeInstanceOf(AppError);
        const e = error as AppError;
        const surfaces = [e.message, e.hint ?? '', JSON.stringify(e), inspect(e), String(e.stack)];
        for (const s of surfaces)
          for (const form of canaryForms(secret)) expect(s.includes(form)).toBe(false);
      }),
      { numRuns: 200 },
    );
  });

  it('Secret objects in fields print as redacted', () => {
    const f = fields({ api_key: 'sk-very-secret-123' });
    expect(JSON.stringify(f)).not.toContain('sk-very');
    expect(inspect(f)).not.toContain('sk-very');
    expect(f['api_key']).toBeInstanceOf(Secret);
  });
});
