import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import { HOSTS, openProxySocket, rawConnect, readAll, startHarness, tlsOver } from './harness.js';

describe('close() drains', () => {
  it('stops accepting, lets an in-flight stream finish, then closes tunnels', async () => {
    const h = await startHarness();
    try {
      const auth = `Proxy-Authorization: ${h.basic('alice', h.tokens.alice)}`;
      // A plain tunnel that stays open and idle.
      const idle = await rawConnect(h.proxyPort, `${HOSTS.other}:${h.upstream.httpsPort}`, [auth]);
      expect(idle.status).toBe(200);
      const idleClosed = new Promise((r) => idle.socket.once('close', r));
      const r = await request(h.url('api', '/sse?n=4&interval=100'), { dispatcher: h.agent() });
      const body = r.body.text();
      expect(h.proxy.stats().inFlight).toBe(1);
      expect(h.proxy.stats().tunnels).toBe(1);
      const closing = h.proxy.close(3_000);
      expect(await body).toContain('data: event 3');
      await closing;
      await idleClosed;
      expect(h.proxy.server.listening).toBe(false);
      expect(h.proxy.stats()).toMatchObject({ inFlight: 0, tunnels: 0, intercepted: 0 });
    } finally {
      await h.close();
    }
  });
});

describe('slow clients', () => {
  it('a request head that never completes is cut after headersTimeoutMs, outside and inside a tunnel', async () => {
    const h = await startHarness({ settings: { headersTimeoutMs: 600 } });
    try {
      const outer = await openProxySocket(h.proxyPort);
      outer.write('GET http://plain.test.local/ HTTP/1.1\r\nHost: x\r\n');
      // The head deadline answers 400 and closes (the idle timeout, 30 s, would close without a word).
      const outerBytes = await readAll(outer);
      expect(outerBytes.toString()).toMatch(/^HTTP\/1\.1 400/);

      // Inside a tunnel: the TLS handshake completes, then the client goes silent.
      const { socket, status } = await rawConnect(h.proxyPort, `${HOSTS.api}:${h.upstream.httpsPort}`, [
        `Proxy-Authorization: ${h.basic('alice', h.tokens.alice)}`,
      ]);
      expect(status).toBe(200);
      const tls = await tlsOver(socket, { servername: HOSTS.api, ca: h.localCa.certPem });
      tls.write('GET / HTTP/1.1\r\n');
      expect((await readAll(tls)).toString()).toMatch(/^HTTP\/1\.1 400/);
    } finally {
      await h.close();
    }
  });
});

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return cond();
}

describe('the upstream connection is opened at CONNECT', () => {
  it('before the first request, which then uses it; nothing is sent on it before that request', async () => {
    const h = await startHarness();
    try {
      expect(h.upstream.openConnections()).toBe(0);
      const auth = `Proxy-Authorization: ${h.basic('alice', h.tokens.alice)}`;
      const { socket, status } = await rawConnect(h.proxyPort, `${HOSTS.api}:${h.upstream.httpsPort}`, [
        auth,
      ]);
      expect(status).toBe(200);
      const tls = await tlsOver(socket, { servername: HOSTS.api, ca: h.localCa.certPem });
      expect(await until(() => h.upstream.openConnections() > 0, 3_000)).toBe(true);
      expect(h.upstream.received).toHaveLength(0);
      const open = h.upstream.openConnections();
      const answer = readAll(tls);
      tls.write(
        `GET /first HTTP/1.1\r\nHost: ${HOSTS.api}:${h.upstream.httpsPort}\r\nConnection: close\r\n\r\n`,
      );
      expect((await answer).toString('latin1')).toMatch(/^HTTP\/1\.1 200/);
      expect(h.upstream.received.map((r) => r.url)).toEqual(['/first']);
      expect(h.upstream.openConnections()).toBe(open); // no second connection was needed
    } finally {
      await h.close();
    }
  });

  it('one that no request uses is closed after a short while', async () => {
    const h = await startHarness();
    try {
      const auth = `Proxy-Authorization: ${h.basic('alice', h.tokens.alice)}`;
      const { socket } = await rawConnect(h.proxyPort, `${HOSTS.api}:${h.upstream.httpsPort}`, [auth]);
      const tls = await tlsOver(socket, { servername: HOSTS.api, ca: h.localCa.certPem });
      expect(await until(() => h.upstream.openConnections() > 0, 3_000)).toBe(true);
      expect(await until(() => h.upstream.openConnections() === 0, 6_000)).toBe(true);
      expect(h.upstream.received).toHaveLength(0);
      tls.destroy();
    } finally {
      await h.close();
    }
  });
});

describe('upstream connections are pooled per (profile, connection, destination)', () => {
  it('never carries two profiles, or two connections of one profile, on one upstream connection', async () => {
    const h = await startHarness();
    try {
      const alice = h.agent('alice');
      const bob = h.agent('bob', h.tokens.bob);
      const get = async (agent: typeof alice, connection?: string): Promise<number> => {
        const before = h.upstream.received.length;
        const r = await request(h.url('api', `/who-${before}`), {
          dispatcher: agent,
          ...(connection ? { headers: { 'x-authsome-connection': connection } } : {}),
        });
        expect(r.statusCode).toBe(200);
        await r.body.text();
        const rec = h.upstream.received[before]!;
        expect(rec.remotePort).toBeTypeOf('number');
        return rec.remotePort!;
      };
      const personal1 = await get(alice);
      const personal2 = await get(alice);
      const work1 = await get(alice, 'work');
      const work2 = await get(alice, 'work');
      const bob1 = await get(bob);
      const bob2 = await get(bob);
      // Keep-alive reuse within one owner...
      expect(personal2).toBe(personal1);
      expect(work2).toBe(work1);
      expect(bob2).toBe(bob1);
      // ...and three separate upstream connections across owners.
      expect(new Set([personal1, work1, bob1]).size).toBe(3);
      // The credentials that went out on each confirm who was who.
      const auths = h.upstream.received.map(
        (r) =>
          r.rawHeaders[
            r.rawHeaders.findIndex((n, i) => i % 2 === 0 && n.toLowerCase() === 'authorization') + 1
          ],
      );
      expect(new Set(auths).size).toBe(3);
    } finally {
      await h.close();
    }
  });
});
