import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestHome } from '../helpers/cli.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

const HOSTS = [
  'api.anthropic.com',
  'api.twilio.com',
  'api.datadoghq.com',
  'serpapi.com',
  'api.openai.com',
  'api.custom.test',
  'my-shop.myshopify.com',
  'their-shop.myshopify.com',
  'api.atlassian.com',
  'acme.atlassian.net',
];

function headers(raw: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i < raw.length; i += 2) (out[raw[i]!.toLowerCase()] ??= []).push(raw[i + 1]!);
  return out;
}

describe('providers through the real daemon: documented formats, custom files', () => {
  let t: TestHome;
  let up: Upstream;

  beforeAll(async () => {
    const ca = await makeTestCa('providers test CA');
    up = await startUpstream({ cert: await ca.issue(HOSTS) });
    t = new TestHome();
    writeFileSync(join(t.dir, 'ca.pem'), ca.certPem);
    t.env['AUTHSOME_RESOLVE'] = HOSTS.map((h) => `${h}:443=127.0.0.1:${up.httpsPort}`).join(',');
    t.env['AUTHSOME_UPSTREAM_CA'] = join(t.dir, 'ca.pem');
    expect((await t.run(['init'])).code).toBe(0);
    const logins: Array<[string, string]> = [
      ['anthropic', 'sk-ant-test-1\n'],
      ['twilio', 'ACsid123\nauthtok456\n'],
      ['datadog', 'ddapi789\nddapp000\n'],
      ['serpapi', 'serpkey42\n'],
    ];
    for (const [p, input] of logins) {
      const r = await t.run(['login', p], { input });
      expect(r.code, `${p}: ${r.stderr}`).toBe(0);
    }
  });

  afterAll(async () => {
    await t.cleanup();
    await up.close();
  });

  /** curl under `authsome run`, printing only the status code. */
  const runCurl = async (url: string, extra = '') =>
    t.run(['run', '--', 'sh', '-c', `curl -sS -o /dev/null -w '%{http_code}' ${extra} '${url}'`]);
  /** A request the proxy must refuse (403) without sending anything upstream. */
  const refused = async (url: string): Promise<void> => {
    const before = up.received.length;
    const r = await runCurl(url);
    expect(r.stdout, r.stderr).toBe('403');
    expect(up.received.length).toBe(before);
  };
  const curl = async (url: string, extra = '') => {
    const r = await runCurl(url, extra);
    expect(r.stdout, r.stderr).toBe('200');
    return up.received.at(-1)!;
  };

  it('anthropic: raw x-api-key, a caller copy removed', async () => {
    const rec = await curl(
      'https://api.anthropic.com/v1/messages',
      "-H 'X-Api-Key: caller-guess' -H 'anthropic-version: 2023-06-01'",
    );
    const h = headers(rec.rawHeaders);
    expect(h['x-api-key']).toEqual(['sk-ant-test-1']);
    expect(h['anthropic-version']).toEqual(['2023-06-01']);
  });

  it('twilio: HTTP Basic from account_sid and auth_token', async () => {
    const rec = await curl('https://api.twilio.com/2010-04-01/Accounts.json');
    expect(headers(rec.rawHeaders)['authorization']).toEqual([
      `Basic ${Buffer.from('ACsid123:authtok456').toString('base64')}`,
    ]);
  });

  it('datadog: two headers at once', async () => {
    const h = headers((await curl('https://api.datadoghq.com/api/v1/validate')).rawHeaders);
    expect(h['dd-api-key']).toEqual(['ddapi789']);
    expect(h['dd-application-key']).toEqual(['ddapp000']);
  });

  it('serpapi: a query parameter, caller copy replaced', async () => {
    const rec = await curl('https://serpapi.com/search?q=coffee&api_key=caller');
    const u = new URL(rec.url, 'https://serpapi.com');
    expect(u.searchParams.getAll('api_key')).toEqual(['serpkey42']);
    expect(u.searchParams.get('q')).toBe('coffee');
  });

  it('openai without a connection: forwarded without any secret', async () => {
    const h = headers((await curl('https://api.openai.com/v1/models')).rawHeaders);
    expect(h['authorization']).toBeUndefined();
  });

  it('shopify (a wildcard host of many tenants): the connection is bound to its own shop', async () => {
    const unboundHint = await t.json<{ hint?: string }>(['explain', 'https://my-shop.myshopify.com/admin/x']);
    expect(unboundHint.hint).toBe('authsome login shopify --host <your host>');
    const unbound = await t.run(['login', 'shopify'], { input: 'shpat_never_read\n' });
    expect(unbound.code).toBe(2);
    expect(unbound.stderr).toContain('--host');
    const wrong = await t.run(['login', 'shopify', '--host', 'my-shop.example.com'], { input: 'shpat_x\n' });
    expect(wrong.code).toBe(2);
    const ok = await t.run(['login', 'shopify', '--host', 'my-shop.myshopify.com'], {
      input: 'shpat_mine123\n',
    });
    expect(ok.code, ok.stderr).toBe(0);
    const shown = await t.json<{ hosts: string[] }>(['connection', 'show', 'shopify']);
    expect(shown.hosts).toEqual(['my-shop.myshopify.com']);
    expect(
      headers((await curl('https://my-shop.myshopify.com/admin/api/shop.json')).rawHeaders),
    ).toMatchObject({
      'x-shopify-access-token': ['shpat_mine123'],
    });
    // Another tenant's shop under the same wildcard: refused, nothing sent there.
    await refused('https://their-shop.myshopify.com/admin/api/shop.json');
    const e = await t.run(['explain', 'https://their-shop.myshopify.com/admin/x', '--json']);
    expect(e.code).toBe(5);
    expect(JSON.parse(e.stdout)).toMatchObject({ decision: 'denied' });
    // --host may be repeated; it is for the api-key flow only.
    const two = await t.run(
      ['login', 'shopify', '--connection', 'two', '--host', 'a1.myshopify.com', '--host', 'a2.myshopify.com'],
      { input: 'shpat_two\n' },
    );
    expect(two.code, two.stderr).toBe(0);
    expect(
      (await t.json<{ hosts: string[] }>(['connection', 'show', 'shopify', '--connection', 'two'])).hosts,
    ).toEqual(['a1.myshopify.com', 'a2.myshopify.com']);
    const oauth = await t.run(['login', 'shopify', '--flow', 'device', '--host', 'a1.myshopify.com']);
    expect(oauth.code).toBe(2);
    expect(oauth.stderr).toContain('--host is for --flow api-key only');
    // A provider with fixed hosts takes no --host.
    const fixed = await t.run(['login', 'serpapi', '--host', 'serpapi.com'], { input: 'k\n' });
    expect(fixed.code).toBe(2);
  });

  it('atlassian (a wildcard and an exact host): without --host the connection is used on the exact host only', async () => {
    const r = await t.run(['login', 'atlassian'], { input: 'me@example.com\natl-token-123\n' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('It is used for api.atlassian.com only');
    expect(
      headers((await curl('https://api.atlassian.com/ex/jira/cloud-1/rest/api/3/myself')).rawHeaders),
    ).toMatchObject({
      authorization: [`Basic ${Buffer.from('me@example.com:atl-token-123').toString('base64')}`],
    });
    await refused('https://acme.atlassian.net/rest/api/3/myself');
    // Bound later with --host; a new key given without --host keeps that binding.
    const bound = await t.run(['login', 'atlassian', '--host', 'acme.atlassian.net'], {
      input: 'me@example.com\natl-token-456\n',
    });
    expect(bound.code, bound.stderr).toBe(0);
    const rotated = await t.run(['login', 'atlassian'], { input: 'me@example.com\natl-token-789\n' });
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stdout).not.toContain('only');
    expect((await t.json<{ hosts: string[] }>(['connection', 'show', 'atlassian'])).hosts).toEqual([
      'acme.atlassian.net',
    ]);
  });

  it('refuses a custom provider file with mistakes, naming the field and the reason', async () => {
    const bad = {
      name: 'custom',
      displayName: 'C',
      docsUrl: 'https://c.test',
      hosts: [{ host: 'api.custom.test:8443' }],
      fields: ['key'],
      inject: [{ type: 'header', name: 'Host', template: 'Bearer {{token}}' }],
    };
    writeFileSync(join(t.dir, 'bad.json'), JSON.stringify(bad));
    const r = await t.run(['provider', 'add', join(t.dir, 'bad.json')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('ERR_PROVIDER_INVALID');
    expect(r.stderr).toContain('hosts[0]');
    expect(r.stderr).toContain('inject[0].name');
    expect(r.stderr).toContain('inject[0].template');
  });

  it('adds, lists, uses and removes a custom provider; a bundled name needs --force', async () => {
    const def = {
      name: 'custom',
      displayName: 'Custom',
      docsUrl: 'https://c.test/docs',
      hosts: [{ host: 'api.custom.test' }],
      fields: ['key'],
      inject: [{ type: 'header', name: 'X-Custom-Key', template: 'Key {{key}}' }],
      env: ['CUSTOM_KEY'],
    };
    writeFileSync(join(t.dir, 'custom.json'), JSON.stringify(def));
    expect((await t.run(['provider', 'add', join(t.dir, 'custom.json')])).code).toBe(0);
    expect((await t.run(['login', 'custom'], { input: 'k-1\n' })).code).toBe(0);
    const list = await t.json<{ providers: Array<{ name: string; source: string; connections: string[] }> }>([
      'provider',
      'list',
    ]);
    expect(list.providers.find((p) => p.name === 'custom')).toMatchObject({
      source: 'custom',
      connections: ['default'],
    });
    expect(list.providers.length).toBeGreaterThanOrEqual(50);
    expect(headers((await curl('https://api.custom.test/x')).rawHeaders)['x-custom-key']).toEqual([
      'Key k-1',
    ]);

    writeFileSync(
      join(t.dir, 'openai.json'),
      JSON.stringify({ ...def, name: 'openai', hosts: [{ host: 'api.openai.com' }] }),
    );
    const clash = await t.run(['provider', 'add', join(t.dir, 'openai.json')]);
    expect(clash.code).toBe(3);
    expect(clash.stderr).toContain('--force');
    expect((await t.run(['provider', 'add', join(t.dir, 'openai.json'), '--force'])).code).toBe(0);
    const shown = await t.json<{ source: string }>(['provider', 'show', 'openai']);
    expect(shown.source).toBe('custom (overrides bundled)');
    expect((await t.run(['provider', 'remove', 'openai'])).code).toBe(0);
    expect((await t.json<{ source: string }>(['provider', 'show', 'openai'])).source).toBe('bundled');

    // Adding "custom" again (other hosts) replaces it only with --force.
    writeFileSync(
      join(t.dir, 'custom2.json'),
      JSON.stringify({ ...def, hosts: [{ host: 'api2.custom.test' }] }),
    );
    const again = await t.run(['provider', 'add', join(t.dir, 'custom2.json')]);
    expect(again.code).toBe(3);
    expect(again.stderr).toContain('already a custom provider');
    expect(again.stderr).toContain('--force');
    expect((await t.json<{ hosts: unknown[] }>(['provider', 'show', 'custom'])).hosts).toEqual([
      { host: 'api.custom.test' },
    ]);
    expect((await t.run(['provider', 'add', join(t.dir, 'custom2.json'), '--force'])).code).toBe(0);
    expect((await t.run(['provider', 'remove', 'custom'])).code).toBe(0);
  });

  it('a custom provider that would take requests from another provider’s host needs --force', async () => {
    const shadow = {
      name: 'shadow',
      displayName: 'Shadow',
      docsUrl: 'https://s.test/docs',
      hosts: [{ host: 'api.openai.com', pathPrefix: '/v1' }],
      fields: ['key'],
      inject: [{ type: 'header', name: 'Authorization', template: 'Bearer {{key}}' }],
      env: [],
    };
    writeFileSync(join(t.dir, 'shadow.json'), JSON.stringify(shadow));
    const r = await t.run(['provider', 'add', join(t.dir, 'shadow.json')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('provider "openai" already covers api.openai.com:443');
    const explained = await t.json<{ provider?: { name: string } }>([
      'explain',
      'https://api.openai.com/v1/models',
    ]);
    expect(explained.provider?.name).toBe('openai');
    // An exact host under another provider's wildcard is the same kind of take-over.
    writeFileSync(
      join(t.dir, 'wild.json'),
      JSON.stringify({ ...shadow, name: 'wild', hosts: [{ host: '*.wild.test' }] }),
    );
    writeFileSync(
      join(t.dir, 'under.json'),
      JSON.stringify({ ...shadow, name: 'under', hosts: [{ host: 'x.wild.test' }] }),
    );
    expect((await t.run(['provider', 'add', join(t.dir, 'wild.json')])).code).toBe(0);
    const under = await t.run(['provider', 'add', join(t.dir, 'under.json')]);
    expect(under.code).toBe(3);
    expect(under.stderr).toContain('provider "wild" already covers x.wild.test:443');
    expect((await t.run(['provider', 'remove', 'wild'])).code).toBe(0);
    expect((await t.run(['provider', 'add', join(t.dir, 'shadow.json'), '--force'])).code).toBe(0);
    expect((await t.run(['provider', 'remove', 'shadow'])).code).toBe(0);
  });

  it('only the owner changes providers and profiles', async () => {
    expect((await t.run(['profile', 'create', 'agent'])).code).toBe(0);
    writeFileSync(
      join(t.dir, 'x.json'),
      JSON.stringify({
        name: 'xprov',
        displayName: 'X',
        docsUrl: 'https://x.test',
        hosts: [{ host: 'api.x.test' }],
        fields: ['k'],
        inject: [{ type: 'header', name: 'X-K', template: '{{k}}' }],
      }),
    );
    const add = await t.run(['provider', 'add', join(t.dir, 'x.json'), '--profile', 'agent']);
    expect(add.code).toBe(5);
    expect(add.stderr).toContain('ERR_AUTH_NOT_OWNER');
    const create = await t.run(['profile', 'create', 'sneaky', '--profile', 'agent']);
    expect(create.code).toBe(5);
    const del = await t.run(['profile', 'delete', 'default', '--profile', 'agent']);
    expect(del.code).not.toBe(0);
    expect(
      (await t.json<{ profiles: Array<{ handle: string }> }>(['profile', 'list'])).profiles
        .map((p) => p.handle)
        .sort(),
    ).toEqual(['agent', 'default']);
  });
});
