import { describe, expect, it } from 'vitest';
import { AppError } from '../../../src/errors.js';
import { checkProviderDef, parseProviderJson, validateProvider } from '../../../src/providers/index.js';
import { def } from './fixtures.js';
import { CA_VARS } from '../../../src/cli/session-env.js';

function refusal(raw: unknown, source = 'custom/bad.json'): AppError {
  try {
    validateProvider(raw, source);
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    expect((e as AppError).code).toBe('ERR_PROVIDER_INVALID');
    return e as AppError;
  }
  throw new Error('definition was accepted');
}

/** The message names the file, the field path and the reason. */
function expectRefused(raw: unknown, path: string, reason: RegExp): void {
  const msg = refusal(raw).message;
  expect(msg).toContain('custom/bad.json');
  const line = msg.split('\n').find((l) => l.includes(`- ${path}: `));
  expect(line, `no line for ${path} in:\n${msg}`).toBeDefined();
  expect(line).toMatch(reason);
}

describe('validateProvider', () => {
  it('accepts a minimal definition and strips $schema', () => {
    const out = validateProvider({ $schema: '../schema/provider.schema.json', ...def() }, 'x.json');
    expect(out).toEqual(def());
    expect('$schema' in out).toBe(false);
  });

  it.each([
    ['port inside the host', 'api.example.com:8443', /port/],
    ['IPv4 literal', '10.0.0.1', /IP literal/],
    ['IPv6 literal', '[::1]', /IP literal/],
    ['double wildcard', '*.*.example.com', /one wildcard/],
    ['wildcard not leftmost', 'a.*.example.com', /one wildcard/],
    ['partial-label wildcard', '*api.example.com', /one wildcard/],
    ['wildcard over a TLD', '*.com', /two labels/],
    ['upper case', 'API.example.com', /lower-case/],
    ['trailing dot', 'api.example.com.', /dot/],
    ['userinfo', 'user@api.example.com', /userinfo/],
    ['a URL', 'https://api.example.com', /not a URL/],
    ['single label', 'localhost', /two or more labels/],
    ['underscore', 'api_x.example.com', /DNS name/],
  ])('refuses a host with %s', (_what, host, reason) => {
    expectRefused(def({ hosts: [{ host }] }), 'hosts[0].host', reason);
  });

  it.each([
    ['no leading slash', 'v1', /start with '\/'/],
    ['trailing slash', '/v1/', /end with '\/'/],
    ['dot segment', '/v1/../x', /'\.\.'/],
    ['percent-encoding', '/v%31', /percent/],
    ['query', '/v1?x=1', /query/],
  ])('refuses a pathPrefix with %s', (_what, pathPrefix, reason) => {
    expectRefused(def({ hosts: [{ host: 'api.example.com', pathPrefix }] }), 'hosts[0].pathPrefix', reason);
  });

  it('refuses ports outside 1-65535 and duplicate host rules', () => {
    expectRefused(def({ hosts: [{ host: 'api.example.com', port: 0 }] }), 'hosts[0].port', /must be >= 1/);
    expectRefused(
      def({ hosts: [{ host: 'api.example.com', port: 70000 }] }),
      'hosts[0].port',
      /must be <= 65535/,
    );
    expectRefused(
      def({ hosts: [{ host: 'api.example.com' }, { host: 'api.example.com', port: 443 }] }),
      'hosts[1]',
      /repeats hosts\[0\]/,
    );
  });

  it('refuses a template naming an unknown field', () => {
    expectRefused(
      def({ inject: [{ type: 'header', name: 'Authorization', template: 'Bearer {{apikey}}' }] }),
      'inject[0].template',
      /unknown field "apikey".*api_key/,
    );
  });

  it.each([
    ['no placeholder', 'Bearer sk-live-123', /at least one field/],
    ['unclosed placeholder', 'Bearer {{api_key', /never closed/],
    ['expression', '{{api_key + 1}}', /placeholder must be/],
    ['stray brace', 'Bearer {api_key}', /single '\{'/],
    ['base64 without fields', "{{base64('a', 'b')}}", /at least one field/],
    ['base64 with a trailing comma', '{{base64(api_key,)}}', /trailing comma/],
    ['leading whitespace', ' {{api_key}}', /whitespace/],
  ])('refuses a template with %s, without quoting it', (_what, template, reason) => {
    const raw = def({ inject: [{ type: 'header', name: 'X-Key', template }] });
    expectRefused(raw, 'inject[0].template', reason);
    if (template.includes('sk-live')) expect(refusal(raw).message).not.toContain('sk-live-123');
  });

  it.each([
    ['Host', /set by the proxy/],
    ['Content-Length', /set by the proxy/],
    ['Transfer-Encoding', /hop-by-hop/],
    ['Connection', /hop-by-hop/],
    ['Proxy-Authorization', /Proxy-\*/],
    ['X-Authsome-Connection', /X-Authsome-\*/],
    ['Cookie', /cookies/],
    ['Bad Header', /token characters/],
  ])('refuses header name %s', (name, reason) => {
    expectRefused(
      def({ inject: [{ type: 'header', name, template: '{{api_key}}' }] }),
      'inject[0].name',
      reason,
    );
  });

  it('refuses the same header injected twice, case-insensitively', () => {
    const inject = [
      { type: 'header', name: 'X-Key', template: '{{api_key}}' },
      { type: 'header', name: 'x-key', template: '{{api_key}}' },
    ] as const;
    expectRefused(def({ inject: [...inject] }), 'inject[1].name', /twice/);
  });

  it('refuses http and userinfo OAuth URLs', () => {
    const oauth = {
      tokenUrl: 'http://auth.example.com/token',
      authorizeUrl: 'https://u:p@auth.example.com/a',
    };
    const raw = def({
      fields: ['access_token'],
      inject: [{ type: 'header', name: 'Authorization', template: 'Bearer {{access_token}}' }],
      flows: ['pkce'],
      oauth,
    });
    expectRefused(raw, 'oauth.tokenUrl', /https/);
    expectRefused(raw, 'oauth.authorizeUrl', /userinfo/);
  });

  it('checks flows against oauth endpoints and fields', () => {
    expectRefused(
      def({ flows: ['device'], oauth: { tokenUrl: 'https://a.example.com/t' } }),
      'oauth.deviceUrl',
      /required/,
    );
    expectRefused(
      def({
        flows: ['device'],
        oauth: { tokenUrl: 'https://a.example.com/t', deviceUrl: 'https://a.example.com/d' },
      }),
      'fields',
      /access_token/,
    );
    expectRefused(def({ oauth: { tokenUrl: 'https://a.example.com/t' } }), 'oauth', /neither/);
  });

  it('refuses unknown properties, bad names, unused fields and reserved env vars', () => {
    expectRefused(def({ colour: 'red' }), 'colour', /not an allowed property/);
    expectRefused(
      def({ inject: [{ type: 'header', name: 'X', template: '{{api_key}}', extra: 1 } as never] }),
      'inject[0].extra',
      /not an allowed/,
    );
    expectRefused(def({ name: 'Open AI' }), 'name', /a-z/);
    expectRefused(def({ fields: ['api_key', 'secret'] }), 'fields[1]', /no inject template uses it/);
    expectRefused(def({ env: ['HTTPS_PROXY'] }), 'env[0]', /set by authsome/);
    expectRefused(def({ docsUrl: 'http://docs.example.com' }), 'docsUrl', /https/);
    expectRefused({ name: 'x' }, 'hosts', /is required/);
  });

  it('refuses every variable `run` sets as a placeholder name (trust variables, JVM options)', () => {
    for (const name of [
      ...CA_VARS,
      'NODE_EXTRA_CA_CERTS',
      'NODE_USE_ENV_PROXY',
      'JAVA_TOOL_OPTIONS',
      'HTTP_PROXY',
    ])
      expectRefused(def({ env: [name] }), 'env[0]', /set by authsome/);
  });

  it('collects every problem, not just the first', () => {
    const problems = checkProviderDef(
      def({
        name: 'BAD',
        hosts: [{ host: '1.2.3.4' }, { host: 'a.example.com:80' }],
        inject: [{ type: 'header', name: 'Host', template: '{{nope}}' }],
      }),
    );
    expect(problems.map((p) => p.path)).toEqual(
      expect.arrayContaining([
        'name',
        'hosts[0].host',
        'hosts[1].host',
        'inject[0].name',
        'inject[0].template',
      ]),
    );
  });

  it('reports JSON syntax errors with the file name but not the text', () => {
    let err: unknown;
    try {
      parseProviderJson('{"name": "x", "template": "sk-live-secret"', 'my.json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).message).toMatch(/^my\.json: not valid JSON/);
    expect((err as AppError).message).not.toContain('sk-live-secret');
  });
});
