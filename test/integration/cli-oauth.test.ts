import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { get as httpsGet } from 'node:https';
import { get as httpGet } from 'node:http';
import { ProxyAgent, request } from 'undici';
import { TestHome, CLI } from '../helpers/cli.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { startFakeOAuth, type FakeOAuth } from '../helpers/fake-oauth.js';

const PROVIDER = {
  name: 'acme',
  displayName: 'Acme (test)',
  docsUrl: 'https://docs.acme.test/auth',
  hosts: [{ host: 'api.acme.test' }],
  fields: ['access_token'],
  inject: [{ type: 'header', name: 'Authorization', template: 'Bearer {{access_token}}' }],
  flows: ['device', 'pkce'],
  oauth: {
    authorizeUrl: 'https://oauth.acme.test/authorize',
    tokenUrl: 'https://oauth.acme.test/token',
    deviceUrl: 'https://oauth.acme.test/device',
    revokeUrl: 'https://oauth.acme.test/revoke',
    scopes: ['read'],
    pkce: true,
    clientAuth: 'client_secret_basic',
  },
};

function authOf(rawHeaders: string[]): string | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2)
    if (rawHeaders[i]!.toLowerCase() === 'authorization') return rawHeaders[i + 1];
  return undefined;
}

describe('OAuth logins through the daemon, refreshed before injection', () => {
  let t: TestHome;
  let up: Upstream;
  let fake: FakeOAuth;
  // Logins issue tokens that live 30 s (inside the 60 s refresh margin: due at once); refreshes may issue longer ones.
  let fakeOpts: {
    tls: { certPem: string; keyPem: string };
    publicBase: string;
    expiresIn: number;
    tokenLatencyMs: number;
  };
  let caPem: string;
  let agent: ProxyAgent;

  beforeAll(async () => {
    const ca = await makeTestCa('oauth test CA');
    caPem = ca.certPem;
    up = await startUpstream({ cert: await ca.issue(['api.acme.test']) });
    fakeOpts = {
      tls: await ca.issue(['oauth.acme.test']),
      publicBase: 'https://oauth.acme.test',
      expiresIn: 30,
      tokenLatencyMs: 50,
    };
    fake = await startFakeOAuth(fakeOpts);
    t = new TestHome();
    const caFile = join(t.dir, 'ca.pem');
    writeFileSync(caFile, caPem);
    writeFileSync(join(t.dir, 'acme.json'), JSON.stringify(PROVIDER));
    t.env['AUTHSOME_RESOLVE'] =
      `api.acme.test:443=127.0.0.1:${up.httpsPort},oauth.acme.test:443=127.0.0.1:${fake.port}`;
    t.env['AUTHSOME_UPSTREAM_CA'] = caFile;
    expect((await t.run(['init'])).code).toBe(0);
    const add = await t.run(['provider', 'add', join(t.dir, 'acme.json')]);
    expect(add.code, add.stderr).toBe(0);
    const client = await t.run(['provider', 'client', 'acme', '--client-id', fake.clientId], {
      input: `${fake.clientSecret}\n`,
    });
    expect(client.code, client.stderr).toBe(0);
    const env = await t.json<{ env: Record<string, string> }>(['proxy', 'env']);
    const u = new URL(env.env['HTTPS_PROXY']!);
    agent = new ProxyAgent({
      uri: `http://${u.host}`,
      token: `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`,
      requestTls: { ca: readFileSync(join(t.home, 'server/ca/ca.pem'), 'utf8') },
    });
  });

  afterAll(async () => {
    await agent?.close();
    await t.cleanup();
    await up.close();
    await fake.close();
  });

  const call = (connection?: string) =>
    request('https://api.acme.test/v1/me', {
      dispatcher: agent,
      headers: connection ? { 'x-authsome-connection': connection } : {},
    }).then(async (r) => ({
      status: r.statusCode,
      body: await r.body.text(),
      error: r.headers['x-authsome-error'],
    }));

  it('device flow: prints the user code, stores the token, and the proxy injects it', async () => {
    fake.script(['authorization_pending', 'success']);
    const r = await t.run(['login', 'acme', '--flow', 'device']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('WDJB-MJHT');
    const res = await call();
    expect(res.status).toBe(200);
    const seen = authOf(up.received.at(-1)!.rawHeaders);
    expect(seen).toMatch(/^Bearer /);
    expect(fake.issued.accessTokens).toContain(seen!.slice(7));
  });

  it('a device login still pending when its profile is deleted stores nothing, even once approved', async () => {
    expect((await t.run(['profile', 'create', 'leaver'])).code).toBe(0);
    const client = await t.run(
      ['provider', 'client', 'acme', '--client-id', fake.clientId, '--profile', 'leaver'],
      {
        input: `${fake.clientSecret}\n`,
      },
    );
    expect(client.code, client.stderr).toBe(0);
    fake.script(['authorization_pending', 'authorization_pending', 'success']);
    const polls = fake.pollTimes.length;
    const issued = fake.issued.accessTokens.length;
    const login = t.run(['login', 'acme', '--flow', 'device', '--connection', 'late', '--profile', 'leaver']);
    await vi
      .waitFor(() => expect(fake.pollTimes.length).toBeGreaterThan(polls), { timeout: 10_000 })
      .catch(async (e: unknown) => {
        throw new Error(`no device poll; login said: ${(await login).stderr}`, { cause: e });
      });
    expect((await t.run(['profile', 'delete', 'leaver'])).code).toBe(0);
    const r = await login;
    expect(r.code).not.toBe(0);
    // Left alone, the daemon would poll on and the provider would approve within ~2 intervals (1 s):
    // wait past that. The deletion ended the flow, so no token was ever issued for it.
    await new Promise((res) => setTimeout(res, 3_500));
    expect(fake.issued.accessTokens.length).toBe(issued);
    // A new profile of the same name starts empty: the approved login did not land under it.
    expect((await t.run(['profile', 'create', 'leaver'])).code).toBe(0);
    const list = await t.json<{ connections: unknown[] }>(['connection', 'list', '--profile', 'leaver']);
    expect(list.connections).toEqual([]);
  });

  it('pkce flow: the browser round trip completes the login (state checked)', async () => {
    const child = spawn(process.execPath, [CLI, 'login', 'acme', '--flow', 'pkce', '--connection', 'web'], {
      env: { ...t.env, DISPLAY: '' },
    });
    let stderr = '';
    const authorizeUrl = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d;
        const m = /(https:\/\/oauth\.acme\.test\/authorize\S+)/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      child.on('exit', () => reject(new Error(`login exited early: ${stderr}`)));
    });
    const u = new URL(authorizeUrl);
    // Be the browser: the fake server redirects straight back to the loopback redirect_uri.
    const location = await new Promise<string>((resolve, reject) =>
      httpsGet(
        {
          host: '127.0.0.1',
          port: fake.port,
          path: u.pathname + u.search,
          servername: 'oauth.acme.test',
          ca: caPem,
        },
        (res) => {
          res.resume();
          resolve(res.headers.location ?? '');
        },
      ).on('error', reject),
    );
    const forged = new URL(location);
    forged.searchParams.set('state', 'forged');
    const forgedStatus = await new Promise<number>((resolve) =>
      httpGet(forged, (res) => (res.resume(), resolve(res.statusCode ?? 0))),
    );
    expect(forgedStatus).toBe(400);
    const okStatus = await new Promise<number>((resolve) =>
      httpGet(location, (res) => (res.resume(), resolve(res.statusCode ?? 0))),
    );
    expect(okStatus).toBe(200);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, stderr).toBe(0);
    expect((await call('web')).status).toBe(200);
  });

  it('refreshes an expiring token once for 50 concurrent requests and persists it', async () => {
    // A fresh login whose token is due, then a refresh that yields an hour-long token: exactly one refresh.
    fake.script(['success']);
    expect((await t.run(['login', 'acme', '--flow', 'device'])).code).toBe(0);
    fakeOpts.expiresIn = 3600;
    const before = fake.counters.refreshes;
    const results = await Promise.all(Array.from({ length: 50 }, () => call()));
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(fake.counters.refreshes - before).toBe(1);
    const audit = await t.json<{ events: Array<{ event: string; connection?: string }> }>([
      'audit',
      '--event',
      'token.refresh',
    ]);
    expect(audit.events.length).toBeGreaterThanOrEqual(1);
  });

  it('a revoked refresh token yields 502 ERR_TOKEN_REFRESH_FAILED naming the fix', async () => {
    fakeOpts.expiresIn = 30;
    fake.script(['success']);
    expect((await t.run(['login', 'acme', '--flow', 'device'])).code).toBe(0);
    for (const rt of fake.issued.refreshTokens) fake.revoke(rt);
    // Let the cached credential pass its refresh point (tokens live 30 s, the margin is 60 s: always due).
    const res = await call();
    expect(res.status).toBe(502);
    expect(res.error).toBe('ERR_TOKEN_REFRESH_FAILED');
    expect(res.body).toContain('authsome login acme --connection default');
    const audit = await t.json<{ events: unknown[] }>(['audit', '--event', 'token.refresh_failed']);
    expect(audit.events.length).toBeGreaterThanOrEqual(1);
  });

  it('logout revokes at the provider and removes the connection', async () => {
    const before = fake.counters.revocations;
    const r = await t.json<{ revokedAtProvider: boolean }>(['logout', 'acme', '--connection', 'web']);
    expect(r.revokedAtProvider).toBe(true);
    expect(fake.counters.revocations - before).toBe(1);
    expect((await call('web')).status).toBe(403);
  });
});
