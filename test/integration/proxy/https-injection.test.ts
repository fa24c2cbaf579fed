import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { canaryForms } from '../../helpers/fake-deps.js';
import { rawValues } from '../../../src/proxy/headers.js';
import { HOSTS, SECRETS, rawTlsExchange, startHarness, type Harness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

const last = () => h.upstream.received[h.upstream.received.length - 1]!;
const clientBytes: string[] = [];

async function get(url: string, headers: Record<string, string | string[]> = {}, agent = h.agent()) {
  const res = await request(url, { dispatcher: agent, headers });
  const body = await res.body.text();
  clientBytes.push(JSON.stringify(res.headers), body);
  return { status: res.statusCode, headers: res.headers, body };
}

describe('HTTPS through CONNECT with interception', () => {
  it('injects the default connection as a bearer token', async () => {
    const r = await get(h.url('api', '/v1/models?x=1'));
    expect(r.status).toBe(200);
    expect(rawValues(last().rawHeaders, 'authorization')).toEqual([`Bearer ${SECRETS.alicePersonal}`]);
    expect(last().secure).toBe(true);
    expect(last().url).toBe('/v1/models?x=1');
    expect(r.headers['x-authsome-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const rec = h.deps.audit.events('proxy.inject').at(-1)!;
    expect(rec).toMatchObject({
      profile: 'alice',
      provider: 'acme',
      connection: 'personal',
      method: 'GET',
      host: HOSTS.api,
      path: '/v1/models',
      request_id: r.headers['x-authsome-request-id'],
    });
  });

  it('X-Authsome-Connection picks the named connection and never reaches upstream', async () => {
    await get(h.url('api', '/work'), { 'X-Authsome-Connection': 'work' });
    expect(rawValues(last().rawHeaders, 'authorization')).toEqual([`Bearer ${SECRETS.aliceWork}`]);
    expect(rawValues(last().rawHeaders, 'x-authsome-connection')).toEqual([]);
  });

  it('strips every caller copy of the injected header', async () => {
    await get(h.url('api', '/strip'), {
      authorization: 'Bearer caller-1',
      AUTHORIZATION: 'Bearer caller-2',
    } as never);
    expect(rawValues(last().rawHeaders, 'authorization')).toEqual([`Bearer ${SECRETS.alicePersonal}`]);
  });

  it('injects a raw key header and a query parameter, replacing caller copies', async () => {
    await get(h.url('keys', '/k'), { 'x-api-key': 'caller' });
    expect(rawValues(last().rawHeaders, 'x-api-key')).toEqual([SECRETS.key]);
    await get(h.url('query', '/q?key=caller&a=1'));
    expect(last().url).toBe(`/q?a=1&key=${encodeURIComponent(SECRETS.query)}`);
    expect(h.deps.audit.events('proxy.inject').at(-1)!.path).toBe('/q');
  });

  it('strips hop-by-hop, Proxy-* and X-Authsome-* headers', async () => {
    const host = `${HOSTS.api}:${h.upstream.httpsPort}`;
    const out = await rawTlsExchange(
      h,
      'api',
      `GET /hop HTTP/1.1\nHost: ${host}\nX-Authsome-Whatever: 1\nX-Drop-Me: y\nConnection: close, X-Drop-Me\nProxy-Foo: bar\nKeep-Alive: timeout=5\nTE: trailers\nAuthorization: Basic Y2FsbGVyOng=\n\n`,
    );
    clientBytes.push(out);
    expect(out).toMatch(/^HTTP\/1\.1 200/);
    const names = last()
      .rawHeaders.filter((_, i) => i % 2 === 0)
      .map((n) => n.toLowerCase());
    for (const n of ['x-authsome-whatever', 'x-drop-me', 'proxy-foo', 'keep-alive', 'te'])
      expect(names).not.toContain(n);
    expect(rawValues(last().rawHeaders, 'host')).toEqual([host]);
    expect(rawValues(last().rawHeaders, 'authorization')).toEqual([`Bearer ${SECRETS.alicePersonal}`]);
  });

  it('passes redirects back without following them', async () => {
    const before = h.upstream.received.length;
    const r = await get(h.url('api', '/redirect'));
    expect(r.status).toBe(302);
    expect(r.headers['location']).toBe('https://elsewhere.test/landing');
    expect(h.upstream.received.length).toBe(before + 1);
  });

  it('a connection that does not exist and another profile’s look the same (403)', async () => {
    const a = await get(h.url('api', '/x'), { 'x-authsome-connection': 'bobconn' });
    const b = await get(h.url('api', '/x'), { 'x-authsome-connection': 'nope' });
    expect(a.status).toBe(403);
    expect(b.status).toBe(403);
    expect(a.headers['x-authsome-error']).toBe('ERR_PROXY_CONNECTION_DENIED');
    expect(JSON.parse(a.body).error.message.replace('bobconn', 'N')).toBe(
      JSON.parse(b.body).error.message.replace('nope', 'N'),
    );
  });

  it('a second profile’s session never gets the first profile’s credential', async () => {
    const bob = h.agent('bob', h.tokens.bob);
    await get(h.url('api', '/bob'), {}, bob);
    expect(rawValues(last().rawHeaders, 'authorization')).toEqual([`Bearer ${SECRETS.bob}`]);
    const r = await get(h.url('api', '/bob'), { 'x-authsome-connection': 'personal' }, bob);
    expect(r.status).toBe(403);
  });

  it('an allow-limited session is denied other providers', async () => {
    const limited = h.agent('alice', h.tokens.aliceKeysOnly);
    const denied = await get(h.url('api', '/limited'), {}, limited);
    expect(denied.status).toBe(403);
    expect(denied.headers['x-authsome-error']).toBe('ERR_PROXY_CONNECTION_DENIED');
    const ok = await get(h.url('keys', '/limited'), {}, limited);
    expect(ok.status).toBe(200);
    expect(
      h.deps.audit
        .events('proxy.deny')
        .some((r) => r.reason === 'ERR_PROXY_CONNECTION_DENIED' && r.provider === 'acme'),
    ).toBe(true);
  });

  it('rejects a malformed or duplicated connection header with 400', async () => {
    const bad = await get(h.url('api', '/x'), { 'x-authsome-connection': 'Work' });
    expect(bad.status).toBe(400);
    const dup = await get(h.url('api', '/x'), { 'x-authsome-connection': ['work', 'personal'] });
    expect(dup.status).toBe(400);
  });

  it('the canary secrets never appear in anything the client received', () => {
    const all = clientBytes.join('\n');
    for (const s of Object.values(SECRETS))
      for (const form of canaryForms(s)) expect(all).not.toContain(form);
  });
});
