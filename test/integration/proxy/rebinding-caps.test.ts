import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxySettings } from '../../../src/config/settings.js';
import type { ProxyLimits } from '../../../src/proxy/limits.js';
import { bearer } from '../../helpers/fake-deps.js';
import { openProxySocket, rawConnect, readAll, startHarness, tlsOver, type Harness } from './harness.js';

/**
 * DNS rebinding at the proxy level (the dialled address is the checked one) and the connection caps.
 * The address filter is a test seam here: 127.0.0.1 (where the upstream listens) counts as public and
 * 127.0.0.3/.4 as internal, so a second lookup would be visible without any traffic leaving loopback.
 */
const NAMES = ['rebind-a.test.local', 'rebind-b.test.local', 'rebind-c.test.local'];

describe('DNS rebinding', () => {
  let h: Harness;
  const calls = new Map<string, number>();
  beforeAll(async () => {
    h = await startHarness({
      names: NAMES,
      extraProviders: (up) => [
        bearer(
          'rebind',
          NAMES.map((host) => ({ host, port: up.httpsPort })),
        ),
      ],
      forbidden: (a) => a === '127.0.0.3' || a === '127.0.0.4',
      lookup: async (host) => {
        const n = (calls.get(host) ?? 0) + 1;
        calls.set(host, n);
        if (host === NAMES[0]) return [{ address: n === 1 ? '127.0.0.1' : '127.0.0.3', family: 4 }];
        if (host === NAMES[1]) return [{ address: n === 1 ? '127.0.0.3' : '127.0.0.1', family: 4 }];
        return [
          { address: '127.0.0.1', family: 4 },
          { address: '127.0.0.4', family: 4 },
        ];
      },
    });
    h.deps.credentials.set('alice', 'rebind', 'main', { api_key: 'sk-canary-REBIND-1' });
  });
  afterAll(async () => {
    await h.close();
  });

  const exchange = async (host: string): Promise<string> => {
    const r = await rawConnect(h.proxyPort, `${host}:${h.upstream.httpsPort}`, [
      `Proxy-Authorization: ${h.basic('alice', h.tokens.alice)}`,
    ]);
    const tls = await tlsOver(r.socket, { servername: host, ca: h.localCa.certPem });
    const all = readAll(tls);
    tls.write(`GET /r HTTP/1.1\r\nHost: ${host}:${h.upstream.httpsPort}\r\nConnection: close\r\n\r\n`);
    return (await all).toString('latin1');
  };

  it('dials the address it checked: a second answer (internal) is never asked for or used', async () => {
    const before = h.upstream.received.length;
    const out = await exchange(NAMES[0]!);
    expect(out).toMatch(/^HTTP\/1\.1 200/);
    expect(calls.get(NAMES[0]!)).toBe(1);
    expect(h.upstream.received.length).toBe(before + 1);
  });

  it('refuses when the checked answer is internal, whatever a later lookup would say', async () => {
    const before = h.upstream.received.length;
    const out = await exchange(NAMES[1]!);
    expect(out).toMatch(/^HTTP\/1\.1 403/);
    expect(out).toMatch(/ERR_PROXY_DESTINATION_DENIED/);
    expect(h.upstream.received.length).toBe(before);
  });

  it('refuses a name that mixes public and internal answers, whole', async () => {
    const out = await exchange(NAMES[2]!);
    expect(out).toMatch(/^HTTP\/1\.1 403/);
  });
});

const limited = (l: Partial<ProxyLimits>): Partial<ProxySettings> => l as Partial<ProxySettings>;

describe('connection caps', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ settings: limited({ maxConnectionsPerProfile: 3, maxConnections: 6 }) });
  });
  afterAll(async () => {
    await h.close();
  });

  const tunnel = (who: 'alice' | 'bob'): ReturnType<typeof rawConnect> =>
    rawConnect(h.proxyPort, `other.test.local:${h.upstream.httpsPort}`, [
      `Proxy-Authorization: ${h.basic(who, h.tokens[who])}`,
    ]);

  it('per profile: the connection past the cap gets 503, other profiles are unaffected, closing frees a slot', async () => {
    const open = [await tunnel('alice'), await tunnel('alice'), await tunnel('alice')];
    expect(open.map((o) => o.status)).toEqual([200, 200, 200]);
    const over = await tunnel('alice');
    expect(over.status).toBe(503);
    expect(over.head).toMatch(/x-authsome-error: ERR_PROXY_BUSY/i);
    const bob = await tunnel('bob');
    expect(bob.status).toBe(200);
    open[0]!.socket.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const again = await tunnel('alice');
    expect(again.status).toBe(200);
    for (const s of [...open, over, bob, again]) s.socket.destroy();
  });

  it('plain http:// keep-alive sockets count too', async () => {
    await new Promise((r) => setTimeout(r, 200)); // the previous test's sockets close on the server side
    const socks = await Promise.all([0, 1, 2, 3].map(() => openProxySocket(h.proxyPort)));
    const answers = await Promise.all(
      socks.map(
        (s) =>
          new Promise<string>((resolve) => {
            s.once('data', (d: Buffer) => resolve(d.toString('latin1')));
            s.write(
              `GET http://plain.test.local:${h.upstream.httpPort}/k HTTP/1.1\r\nHost: x\r\nProxy-Authorization: ${h.basic('alice', h.tokens.alice)}\r\n\r\n`,
            );
          }),
      ),
    );
    expect(answers.filter((a) => a.startsWith('HTTP/1.1 200')).length).toBe(3);
    expect(answers.filter((a) => a.startsWith('HTTP/1.1 503')).length).toBe(1);
    for (const s of socks) s.destroy();
  });

  it('globally: past maxConnections a head-less connection is closed to make room; when every one sent its head, the new one is closed at accept', async () => {
    await new Promise((r) => setTimeout(r, 200)); // the previous test's sockets close on the server side
    // The cap (6): three connections that never send a head, and alice's three tunnels.
    const silent: Array<Promise<Buffer>> = [];
    for (let i = 0; i < 3; i++) silent.push(readAll(await openProxySocket(h.proxyPort)));
    const alice = [await tunnel('alice'), await tunnel('alice'), await tunnel('alice')];
    expect(alice.map((a) => a.status)).toEqual([200, 200, 200]);
    // bob's connections each close the oldest head-less one instead of being refused.
    const bob = [await tunnel('bob'), await tunnel('bob'), await tunnel('bob')];
    expect(bob.map((b) => b.status)).toEqual([200, 200, 200]);
    for (const s of silent) expect((await s).length).toBe(0);
    // Now every connection at the cap is identified: a new one is closed at accept, before any parsing.
    const extra = await openProxySocket(h.proxyPort);
    const got = await readAll(extra);
    expect(got.length).toBe(0);
    expect(extra.destroyed).toBe(true);
    alice[0]!.socket.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const again = await tunnel('alice');
    expect(again.status).toBe(200);
    for (const s of [...alice, ...bob, again]) s.socket.destroy();
  });
});
