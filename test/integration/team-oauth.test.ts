import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgUrl } from '../helpers/pg.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { startFakeOAuth, type FakeOAuth } from '../helpers/fake-oauth.js';
import { freshDatabase, header, TeamNode, viaProxy, type TestDatabase } from '../helpers/team.js';

/**
 * SPEC section 10, "an OAuth refresh happens once per connection (the others wait and use its result)":
 * 20 concurrent requests, half through each of two nodes, all needing the same due token, make exactly
 * one call to the token endpoint; every request is injected with the refreshed token.
 */
const url = pgUrl();
const PROVIDER = {
  name: 'acme',
  displayName: 'Acme (test)',
  docsUrl: 'https://docs.acme.test/auth',
  hosts: [{ host: 'api.acme.test' }],
  fields: ['access_token'],
  inject: [{ type: 'header', name: 'Authorization', template: 'Bearer {{access_token}}' }],
  flows: ['device'],
  oauth: {
    authorizeUrl: 'https://oauth.acme.test/authorize',
    tokenUrl: 'https://oauth.acme.test/token',
    deviceUrl: 'https://oauth.acme.test/device',
    scopes: ['read'],
    clientAuth: 'client_secret_basic',
  },
};

describe.skipIf(url === undefined)('team mode: OAuth refresh once across nodes', () => {
  let db: TestDatabase;
  let up: Upstream;
  let fake: FakeOAuth;
  let a: TeamNode;
  let b: TeamNode;
  const fakeOpts = {
    tls: { certPem: '', keyPem: '' },
    publicBase: 'https://oauth.acme.test',
    expiresIn: 30, // inside the 60 s refresh margin: due at once
    tokenLatencyMs: 400, // the refresh is slow, so every request arrives while it runs
    rotateRefreshTokens: true, // a second use of the old refresh token would fail
  };

  beforeAll(async () => {
    db = await freshDatabase(url!);
    const ca = await makeTestCa('team oauth test CA');
    up = await startUpstream({ cert: await ca.issue(['api.acme.test']) });
    fakeOpts.tls = await ca.issue(['oauth.acme.test']);
    fake = await startFakeOAuth(fakeOpts);
    a = new TeamNode('a');
    const caFile = join(a.t.dir, 'upstream-ca.pem');
    writeFileSync(caFile, ca.certPem);
    const env = {
      AUTHSOME_RESOLVE: `api.acme.test:443=127.0.0.1:${up.httpsPort},oauth.acme.test:443=127.0.0.1:${fake.port}`,
      AUTHSOME_UPSTREAM_CA: caFile,
    };
    Object.assign(a.t.env, env);
    await a.ok(['init', '--store', db.url, '--node', 'a']);
    writeFileSync(join(a.t.dir, 'acme.json'), JSON.stringify(PROVIDER));
    await a.ok(['provider', 'add', join(a.t.dir, 'acme.json')]);
    await a.ok(['provider', 'client', 'acme', '--client-id', fake.clientId], `${fake.clientSecret}\n`);
    fake.script(['success']);
    await a.ok(['login', 'acme', '--flow', 'device']);
    b = new TeamNode('b', env);
    await b.ok(['init', '--join', db.url, '--master-key', a.masterKeyFile, '--node', 'b']);
    await b.ok(['daemon', 'start']);
  }, 120_000);

  afterAll(async () => {
    await b?.cleanup();
    await a?.cleanup();
    await fake?.close();
    await up?.close();
    await db?.drop();
  });

  it('20 concurrent requests through two nodes needing one refresh make exactly one refresh call', async () => {
    fakeOpts.expiresIn = 3600;
    const s = await a.mint();
    const ports = [a.info().proxyPort, b.info().proxyPort];
    const before = fake.counters.refreshes;
    const seenBefore = up.received.length;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        viaProxy(ports[i % 2]!, s, 'https://api.acme.test/v1/me', a.caPem),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(fake.counters.refreshes - before).toBe(1);
    // Every request carried the one refreshed token, whichever node forwarded it.
    const latest = fake.issued.accessTokens.at(-1)!;
    const sent = up.received.slice(seenBefore).map((r) => header(r.rawHeaders, 'authorization'));
    expect(sent).toEqual(Array(20).fill(`Bearer ${latest}`));
  });
});
