import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import { HOSTS, rawConnect, startHarness } from './harness.js';

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
