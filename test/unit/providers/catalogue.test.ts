import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  BUNDLED_PROVIDERS_DIR,
  ProviderRegistry,
  applyInjection,
  loadBundledProviders,
} from '../../../src/providers/index.js';
import type { ProviderDef } from '../../../src/providers/index.js';
import { fields } from './fixtures.js';

const bundled = loadBundledProviders();
const byName = new Map(bundled.map((d) => [d.name, d]));
const registry = new ProviderRegistry({ bundled });

function get(name: string): ProviderDef {
  const d = byName.get(name);
  if (!d) throw new Error(`no bundled provider ${name}`);
  return d;
}

describe('bundled catalogue', () => {
  it('every file in config/providers loads and validates, and there are at least 55', () => {
    const files = readdirSync(BUNDLED_PROVIDERS_DIR).filter((f) => f.endsWith('.json'));
    expect(bundled.length).toBe(files.length);
    expect(bundled.length).toBeGreaterThanOrEqual(55);
  });

  it('builds one registry without host clashes, and every declared host matches its own provider', () => {
    for (const d of bundled) {
      for (const rule of d.hosts) {
        const host = rule.host.startsWith('*.') ? `tenant${rule.host.slice(1)}` : rule.host;
        const path = rule.pathPrefix ? `${rule.pathPrefix}/x` : '/x';
        expect(registry.match({ host, port: rule.port ?? 443, path })?.name, `${d.name} ${host}${path}`).toBe(
          d.name,
        );
      }
    }
  });

  it.each([
    'openai',
    'anthropic',
    'google-gemini',
    'mistral',
    'groq',
    'together',
    'fireworks',
    'openrouter',
    'cohere',
    'deepseek',
    'xai',
    'perplexity',
    'huggingface',
    'replicate',
    'elevenlabs',
    'github',
    'github-git',
    'gitlab',
    'bitbucket',
    'linear',
    'atlassian',
    'sentry',
    'vercel',
    'netlify',
    'cloudflare',
    'digitalocean',
    'slack',
    'notion',
    'stripe',
    'twilio',
    'sendgrid',
    'resend',
    'postmark',
    'mailgun',
    'airtable',
    'hubspot',
    'shopify',
    'datadog',
    'brave',
    'tavily',
    'exa',
    'serpapi',
  ])('includes %s with an https docs URL', (name) => {
    expect(get(name).docsUrl).toMatch(/^https:\/\//);
  });

  const b64 = (s: string) => Buffer.from(s).toString('base64');
  // [provider, connection fields, destination host + path, headers it must add, resulting target]
  const cases: Array<[string, Record<string, string>, string, Array<[string, string]>, string?]> = [
    ['openai', { api_key: 'sk-A' }, 'api.openai.com/v1/models', [['Authorization', 'Bearer sk-A']]],
    ['anthropic', { api_key: 'sk-ant-A' }, 'api.anthropic.com/v1/messages', [['x-api-key', 'sk-ant-A']]],
    [
      'google-gemini',
      { api_key: 'AIza' },
      'generativelanguage.googleapis.com/v1beta/models',
      [['x-goog-api-key', 'AIza']],
    ],
    ['elevenlabs', { api_key: 'el' }, 'api.elevenlabs.io/v1/voices', [['xi-api-key', 'el']]],
    ['github', { access_token: 'ghp_A' }, 'api.github.com/user', [['Authorization', 'Bearer ghp_A']]],
    [
      'github-git',
      { token: 'ghp_A' },
      'github.com/o/r.git/info/refs',
      [['Authorization', `Basic ${b64('x-access-token:ghp_A')}`]],
    ],
    ['gitlab', { token: 'glpat' }, 'gitlab.com/api/v4/user', [['PRIVATE-TOKEN', 'glpat']]],
    ['linear', { api_key: 'lin_api_A' }, 'api.linear.app/graphql', [['Authorization', 'lin_api_A']]],
    [
      'atlassian',
      { email: 'me@example.com', api_token: 'AT' },
      'acme.atlassian.net/rest/api/3/myself',
      [['Authorization', `Basic ${b64('me@example.com:AT')}`]],
    ],
    [
      'twilio',
      { account_sid: 'AC1', auth_token: 'tok' },
      'api.twilio.com/2010-04-01/Accounts.json',
      [['Authorization', `Basic ${b64('AC1:tok')}`]],
    ],
    [
      'mailgun',
      { api_key: 'key-1' },
      'api.mailgun.net/v3/domains',
      [['Authorization', `Basic ${b64('api:key-1')}`]],
    ],
    [
      'zendesk',
      { email: 'me@example.com', api_token: 'zd' },
      'acme.zendesk.com/api/v2/users/me',
      [['Authorization', `Basic ${b64('me@example.com/token:zd')}`]],
    ],
    ['postmark', { server_token: 'pm' }, 'api.postmarkapp.com/email', [['X-Postmark-Server-Token', 'pm']]],
    [
      'shopify',
      { access_token: 'shpat' },
      'shop.myshopify.com/admin/api/2024-10/shop.json',
      [['X-Shopify-Access-Token', 'shpat']],
    ],
    [
      'datadog',
      { api_key: 'dd1', application_key: 'dd2' },
      'api.datadoghq.com/api/v1/validate',
      [
        ['DD-API-KEY', 'dd1'],
        ['DD-APPLICATION-KEY', 'dd2'],
      ],
    ],
    ['deepgram', { api_key: 'dg' }, 'api.deepgram.com/v1/listen', [['Authorization', 'Token dg']]],
    ['pagerduty', { api_key: 'pd' }, 'api.pagerduty.com/users/me', [['Authorization', 'Token token=pd']]],
    [
      'planetscale',
      { service_token_id: 'id1', service_token: 'tok' },
      'api.planetscale.com/v1/organizations',
      [['Authorization', 'id1:tok']],
    ],
    [
      'brave',
      { api_key: 'bsa' },
      'api.search.brave.com/res/v1/web/search?q=x',
      [['X-Subscription-Token', 'bsa']],
    ],
    ['exa', { api_key: 'exa' }, 'api.exa.ai/search', [['x-api-key', 'exa']]],
    [
      'algolia',
      { application_id: 'APP', api_key: 'alg' },
      'app-dsn.algolia.net/1/indexes',
      [
        ['X-Algolia-Application-Id', 'APP'],
        ['X-Algolia-API-Key', 'alg'],
      ],
    ],
    ['serpapi', { api_key: 'serp' }, 'serpapi.com/search?q=x&api_key=caller', [], '/search?q=x&api_key=serp'],
    [
      'trello',
      { api_key: 'k1', token: 't1' },
      'api.trello.com/1/members/me',
      [],
      '/1/members/me?key=k1&token=t1',
    ],
  ];

  it.each(cases)('%s injects exactly its documented format', (name, values, url, added, target) => {
    const slash = url.indexOf('/');
    const host = url.slice(0, slash);
    const start = url.slice(slash);
    expect(registry.match({ host, port: 443, path: start })?.name).toBe(name);
    const out = applyInjection(
      get(name),
      fields(values),
      [
        ['authorization', 'caller'],
        ['User-Agent', 'ua'],
      ],
      start,
    );
    const replaced = added.some(([n]) => n.toLowerCase() === 'authorization');
    expect(out.headers).toEqual([
      ...(replaced ? [] : [['authorization', 'caller']]),
      ['User-Agent', 'ua'],
      ...added,
    ]);
    expect(out.target).toBe(target ?? start);
  });

  it('OAuth providers declare https endpoints and an access_token field', () => {
    const oauth = bundled.filter((d) => d.oauth);
    expect(oauth.map((d) => d.name)).toEqual(expect.arrayContaining(['github']));
    for (const d of oauth) expect(d.fields).toContain('access_token');
  });
});
