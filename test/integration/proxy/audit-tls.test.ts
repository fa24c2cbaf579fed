import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { request } from 'undici';
import { bearer } from '../../helpers/fake-deps.js';
import { makeTestCa, type ServerCert } from '../../helpers/test-ca.js';
import { HOSTS, startHarness, type Harness } from './harness.js';

/** Extra origins with bad certificates, each covered by a provider so the proxy would inject. */
const BAD = [
  'selfsigned.test.local',
  'expired.test.local',
  'wrongname.test.local',
  'localca.test.local',
] as const;
const servers: Server[] = [];
const sockets = new Set<Socket>();
const ports: Record<string, number> = {};
let h: Harness;
let deadPort = 0;

async function serve(cert: ServerCert): Promise<number> {
  const srv = createServer({ cert: cert.certPem, key: cert.keyPem }, (_req, res) =>
    res.end('should never be reached'),
  );
  srv.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return (srv.address() as AddressInfo).port;
}

beforeAll(async () => {
  const upstreamCa = await makeTestCa('upstream test CA');
  const localCa = await makeTestCa('authsome local CA (test)');
  const stranger = await makeTestCa('stranger CA');
  ports['selfsigned.test.local'] = await serve(await stranger.issue(['selfsigned.test.local']));
  // Signed by the trusted upstream CA, but expired, or for another name.
  const past = {
    notBefore: new Date(Date.now() - 10 * 86400_000),
    notAfter: new Date(Date.now() - 86400_000),
  };
  ports['expired.test.local'] = await serve(await upstreamCa.issue(['expired.test.local'], past));
  ports['wrongname.test.local'] = await serve(await upstreamCa.issue(['somewhere-else.test.local']));
  // Signed by the local CA: never trusted for the upstream leg.
  ports['localca.test.local'] = await serve(await localCa.issue(['localca.test.local']));
  // A port that was open and is closed again: connection refused.
  deadPort = await serve(await stranger.issue(['dead.test.local']));
  await new Promise((r) => servers.pop()!.close(r));
  const covered = [
    ...BAD.map((host) => ({ host, port: ports[host]! })),
    { host: 'dead.test.local', port: deadPort },
  ];
  h = await startHarness({
    upstreamCa,
    localCa,
    settings: { upstreamHeadersTimeoutMs: 400 },
    extraProviders: () => covered.map((c) => bearer(`p-${c.host.split('.')[0]}`, [c])),
    extraPins: () => covered.map((c): [string, string] => [`${c.host}:${c.port}`, `127.0.0.1:${c.port}`]),
  });
  for (const c of covered)
    h.deps.credentials.set('alice', `p-${c.host.split('.')[0]}`, 'main', { api_key: 'sk-canary-BAD-77' });
});

afterAll(async () => {
  await h.close();
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

describe('audit before send', () => {
  it('the inject record is durable before the upstream sees the request', async () => {
    h.deps.audit.delayMs = 40;
    try {
      const r = await request(h.url('api', '/ordered'), { dispatcher: h.agent() });
      await r.body.text();
    } finally {
      h.deps.audit.delayMs = 0;
    }
    const a = h.order.indexOf('audit:proxy.inject:/ordered');
    const u = h.order.indexOf('upstream:/ordered');
    expect(a).toBeGreaterThanOrEqual(0);
    expect(u).toBeGreaterThan(a);
  });

  it('an audit failure is 503 and the upstream gets nothing', async () => {
    const before = h.upstream.received.length;
    h.deps.audit.fail = true;
    try {
      const r = await request(h.url('api', '/no-audit'), {
        dispatcher: h.agent(),
        method: 'POST',
        body: 'payload',
      });
      expect(r.statusCode).toBe(503);
      expect(r.headers['x-authsome-error']).toBe('ERR_AUDIT_UNAVAILABLE');
      expect(JSON.parse(await r.body.text())).toMatchObject({ error: { code: 'ERR_AUDIT_UNAVAILABLE' } });
    } finally {
      h.deps.audit.fail = false;
    }
    expect(h.upstream.received.length).toBe(before);
  });

  it('a failing audit sink on a denial does not crash the proxy', async () => {
    h.deps.audit.fail = true;
    try {
      const r = await request(h.url('api', '/x'), {
        dispatcher: h.agent(),
        headers: { 'x-authsome-connection': 'nope' },
      });
      expect(r.statusCode).toBe(403);
      await r.body.text();
    } finally {
      h.deps.audit.fail = false;
    }
    const ok = await request(h.url('api', '/after'), { dispatcher: h.agent() });
    expect(ok.statusCode).toBe(200);
    await ok.body.text();
  });
});

/** The request's proxy.inject record is followed by one saying how it failed (same request id). */
function expectFollowUp(requestId: unknown, event: 'proxy.error' | 'proxy.deny', reason: string): void {
  const mine = h.deps.audit.records.filter((r) => r.request_id === requestId);
  expect(mine.map((r) => [r.event, r.reason])).toEqual([
    ['proxy.inject', undefined],
    [event, reason],
  ]);
}

describe('upstream TLS is always verified', () => {
  const saved = process.env['NODE_TLS_REJECT_UNAUTHORIZED'];
  beforeAll(() => {
    process.env['NODE_TLS_REJECT_UNAUTHORIZED'] = '0';
  });
  afterAll(() => {
    if (saved === undefined) delete process.env['NODE_TLS_REJECT_UNAUTHORIZED'];
    else process.env['NODE_TLS_REJECT_UNAUTHORIZED'] = saved;
  });

  for (const host of BAD) {
    it(`${host} → 502 ERR_UPSTREAM_TLS even with NODE_TLS_REJECT_UNAUTHORIZED=0`, async () => {
      const r = await request(`https://${host}:${ports[host]}/secret`, { dispatcher: h.agent() });
      expect(r.statusCode).toBe(502);
      expect(r.headers['x-authsome-error']).toBe('ERR_UPSTREAM_TLS');
      await r.body.text();
      expectFollowUp(r.headers['x-authsome-request-id'], 'proxy.error', 'ERR_UPSTREAM_TLS');
    });
  }
});

describe('upstream failures', () => {
  it('connection refused → 502 ERR_UPSTREAM_FAILED', async () => {
    const r = await request(`https://dead.test.local:${deadPort}/x`, { dispatcher: h.agent() });
    expect(r.statusCode).toBe(502);
    expect(r.headers['x-authsome-error']).toBe('ERR_UPSTREAM_FAILED');
    await r.body.text();
    expectFollowUp(r.headers['x-authsome-request-id'], 'proxy.error', 'ERR_UPSTREAM_FAILED');
  });

  it('no answer in time → 504 ERR_UPSTREAM_TIMEOUT', async () => {
    const r = await request(h.url('api', '/hang'), { dispatcher: h.agent() });
    expect(r.statusCode).toBe(504);
    expect(r.headers['x-authsome-error']).toBe('ERR_UPSTREAM_TIMEOUT');
    await r.body.text();
  });

  it('vault errors surface with their own status (503) and nothing is sent', async () => {
    const { AppError } = await import('../../../src/errors.js');
    const before = h.upstream.received.length;
    h.deps.credentials.fail = new AppError('ERR_VAULT_SEALED', 'the vault is sealed');
    try {
      const r = await request(h.url('api', '/sealed'), { dispatcher: h.agent() });
      expect(r.statusCode).toBe(503);
      expect(r.headers['x-authsome-error']).toBe('ERR_VAULT_SEALED');
      await r.body.text();
    } finally {
      h.deps.credentials.fail = undefined;
    }
    expect(h.upstream.received.length).toBe(before);
    expect(HOSTS.api).toBeDefined();
  });
});
