import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { rawValues } from '../../../src/proxy/headers.js';
import {
  HOSTS,
  SECRETS,
  openProxySocket,
  rawConnect,
  rawTlsExchange,
  readAll,
  startHarness,
  tlsOver,
  type Harness,
} from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    extraPins: (up) => [[`${HOSTS.api}:${up.httpPort}`, `127.0.0.1:${up.httpPort}`]],
    // Names not pinned resolve to loopback: the address policy must refuse them.
    lookup: async () => [{ address: '127.0.0.1', family: 4 }],
  });
});
afterAll(async () => {
  await h.close();
});

const last = () => h.upstream.received[h.upstream.received.length - 1]!;
const auth = () => `Proxy-Authorization: ${h.basic('alice', h.tokens.alice)}`;
const apiAuthority = () => `${HOSTS.api}:${h.upstream.httpsPort}`;

async function rawHttp(text: string): Promise<string> {
  const s = await openProxySocket(h.proxyPort);
  const all = readAll(s);
  s.write(text.replace(/\n/g, '\r\n'));
  return (await all).toString('latin1');
}

describe('identity', () => {
  it('CONNECT without Proxy-Authorization gets 407 with Proxy-Authenticate', async () => {
    const r = await rawConnect(h.proxyPort, apiAuthority());
    expect(r.status).toBe(407);
    expect(r.head).toMatch(/proxy-authenticate: Basic realm="authsome"/i);
    expect(r.head).toMatch(/x-authsome-error: ERR_PROXY_AUTH_REQUIRED/i);
    r.socket.destroy();
  });

  it('CONNECT with a wrong token, or another profile’s handle, gets 407', async () => {
    for (const cred of [
      h.basic('alice', 'wrong'),
      h.basic('bob', h.tokens.alice),
      'Bearer abc',
      'Basic !!!',
    ]) {
      const r = await rawConnect(h.proxyPort, apiAuthority(), [`Proxy-Authorization: ${cred}`]);
      expect(r.status).toBe(407);
      expect(r.head).toMatch(/proxy-authenticate: Basic realm="authsome"/i);
      r.socket.destroy();
    }
  });

  it('duplicate Proxy-Authorization is 400', async () => {
    const r = await rawConnect(h.proxyPort, apiAuthority(), [auth(), auth()]);
    expect(r.status).toBe(400);
    r.socket.destroy();
  });

  it('absolute-form http:// needs a session token too', async () => {
    const out = await rawHttp(
      `GET http://${HOSTS.plain}:${h.upstream.httpPort}/x HTTP/1.1\nHost: ${HOSTS.plain}\nConnection: close\n\n`,
    );
    expect(out).toMatch(/^HTTP\/1\.1 407/);
    expect(out).toMatch(/proxy-authenticate: Basic realm="authsome"/i);
  });

  it('identity is verified once per tunnel, not per inner request', async () => {
    const agent = h.agent('alice', h.tokens.alice, { connections: 1 });
    await (await request(h.url('api', '/one'), { dispatcher: agent })).body.text();
    const before = h.deps.sessions.calls;
    for (let i = 0; i < 5; i++)
      await (await request(h.url('api', `/again${i}`), { dispatcher: agent })).body.text();
    expect(h.deps.sessions.calls).toBe(before);
  });
});

describe('request forms', () => {
  it('origin-form to the proxy port is 400 ERR_PROXY_ORIGIN_FORM', async () => {
    const out = await rawHttp(`GET / HTTP/1.1\nHost: 127.0.0.1\nConnection: close\n\n`);
    expect(out).toMatch(/^HTTP\/1\.1 400/);
    expect(out).toMatch(/x-authsome-error: ERR_PROXY_ORIGIN_FORM/i);
    expect(out).toMatch(/"code":"ERR_PROXY_ORIGIN_FORM"/);
  });

  it('plain http:// is forwarded without injection, even to a provider host', async () => {
    const out = await rawHttp(
      `GET http://${HOSTS.api}:${h.upstream.httpPort}/clear?q=1 HTTP/1.1\nHost: evil.example\n${auth()}\nX-Authsome-Connection: work\nConnection: close\n\n`,
    );
    expect(out).toMatch(/^HTTP\/1\.1 200/);
    expect(last().secure).toBe(false);
    expect(last().url).toBe('/clear?q=1');
    expect(rawValues(last().rawHeaders, 'authorization')).toEqual([]);
    expect(rawValues(last().rawHeaders, 'proxy-authorization')).toEqual([]);
    expect(rawValues(last().rawHeaders, 'x-authsome-connection')).toEqual([]);
    // RFC 9112 3.2.2: Host comes from the target URI, not the caller's header.
    expect(rawValues(last().rawHeaders, 'host')).toEqual([`${HOSTS.api}:${h.upstream.httpPort}`]);
    expect(out).not.toContain(SECRETS.alicePersonal);
  });

  it('undici ProxyAgent without tunnelling sends http:// as absolute-form', async () => {
    const r = await request(h.url('plain', '/agent', 'http'), {
      dispatcher: h.agent('alice', h.tokens.alice, { proxyTunnel: false }),
    });
    expect(r.statusCode).toBe(200);
    await r.body.text();
    expect(last().url).toBe('/agent');
  });

  it('TRACE is refused (it would echo an injected credential)', async () => {
    const out = await rawHttp(
      `TRACE http://${HOSTS.plain}:${h.upstream.httpPort}/ HTTP/1.1\nHost: x\n${auth()}\nConnection: close\n\n`,
    );
    expect(out).toMatch(/^HTTP\/1\.1 400/);
  });

  it('more headers than the limit is 431', async () => {
    const many = Array.from({ length: 120 }, (_, i) => `X-H${i}: v`).join('\n');
    const out = await rawHttp(
      `GET http://${HOSTS.plain}:${h.upstream.httpPort}/ HTTP/1.1\nHost: x\n${auth()}\n${many}\nConnection: close\n\n`,
    );
    expect(out).toMatch(/^HTTP\/1\.1 431/);
    expect(out).toMatch(/ERR_PROXY_HEADERS_TOO_LARGE/);
  });

  it('oversized headers get 431 from the parser', async () => {
    const out = await rawHttp(
      `GET http://${HOSTS.plain}:${h.upstream.httpPort}/ HTTP/1.1\nHost: x\nX-Big: ${'a'.repeat(20_000)}\n\n`,
    );
    expect(out).toMatch(/^HTTP\/1\.1 431/);
  });

  it('malformed requests get a JSON 400', async () => {
    const out = await rawHttp(`GET http://x/ HTTP/1.1\nContent-Length: 1\nContent-Length: 2\n\n`);
    expect(out).toMatch(/^HTTP\/1\.1 400/);
    expect(out).toMatch(/"code":"ERR_PROXY_BAD_REQUEST"/);
  });
});

describe('CONNECT routing', () => {
  it('refuses malformed authorities with 400', async () => {
    for (const a of [
      HOSTS.api,
      `user@${apiAuthority()}`,
      `%61${apiAuthority()}`,
      `api.test.local:0`,
      `api.test.local:99999`,
      `a\\b:443`,
    ]) {
      const r = await rawConnect(h.proxyPort, a, [auth()]);
      expect(r.status, a).toBe(400);
      r.socket.destroy();
    }
  });

  it('tunnels a host no provider covers without interception', async () => {
    const r = await rawConnect(h.proxyPort, `${HOSTS.other}:${h.upstream.httpsPort}`, [auth()]);
    expect(r.status).toBe(200);
    // Only the upstream's own CA is trusted here: success means nobody terminated the TLS.
    const tls = await tlsOver(r.socket, { servername: HOSTS.other, ca: h.upstreamCa.certPem });
    expect(tls.getPeerCertificate().issuer.CN).toBe('upstream test CA');
    const all = readAll(tls);
    tls.write(`GET /tunnelled HTTP/1.1\r\nHost: ${HOSTS.other}\r\nConnection: close\r\n\r\n`);
    expect((await all).toString()).toMatch(/^HTTP\/1\.1 200/);
    expect(last().url).toBe('/tunnelled');
    expect(rawValues(last().rawHeaders, 'authorization')).toEqual([]);
  });

  it('a client trusting only the local CA cannot talk to a tunnelled host (no leaf minted)', async () => {
    const r = await rawConnect(h.proxyPort, `${HOSTS.other}:${h.upstream.httpsPort}`, [auth()]);
    await expect(tlsOver(r.socket, { servername: HOSTS.other, ca: h.localCa.certPem })).rejects.toThrow();
  });

  it('a TLS handshake whose SNI differs from the CONNECT host fails', async () => {
    const r = await rawConnect(h.proxyPort, apiAuthority(), [auth()]);
    expect(r.status).toBe(200);
    await expect(tlsOver(r.socket, { servername: HOSTS.keys, ca: h.localCa.certPem })).rejects.toThrow();
  });

  it('a TLS handshake without SNI fails', async () => {
    const r = await rawConnect(h.proxyPort, apiAuthority(), [auth()]);
    await expect(tlsOver(r.socket, { servername: '', ca: h.localCa.certPem })).rejects.toThrow();
  });

  it('the intercepted leaf names exactly the CONNECT host', async () => {
    const r = await rawConnect(h.proxyPort, apiAuthority(), [auth()]);
    const tls = await tlsOver(r.socket, { servername: HOSTS.api, ca: h.localCa.certPem });
    expect(tls.getPeerCertificate().subjectaltname).toBe(`DNS:${HOSTS.api}`);
    expect(tls.alpnProtocol).toBe('http/1.1');
    tls.destroy();
  });

  it('an inner Host that differs from the CONNECT authority is 421', async () => {
    const sp = h.upstream.httpsPort;
    for (const host of [
      `${HOSTS.keys}:${sp}`,
      HOSTS.api,
      `${HOSTS.api}:${sp + 1}`,
      `user@${HOSTS.api}:${sp}`,
    ]) {
      const out = await rawTlsExchange(h, 'api', `GET / HTTP/1.1\nHost: ${host}\nConnection: close\n\n`);
      expect(out, host).toMatch(/^HTTP\/1\.1 421/);
      expect(out).toMatch(/x-authsome-error: ERR_PROXY_MISDIRECTED/i);
    }
    const dup = await rawTlsExchange(
      h,
      'api',
      `GET / HTTP/1.1\nHost: ${HOSTS.api}:${sp}\nHost: ${HOSTS.api}:${sp}\nConnection: close\n\n`,
    );
    expect(dup).toMatch(/^HTTP\/1\.1 400/);
    const trailingDotAndCase = await rawTlsExchange(
      h,
      'api',
      `GET / HTTP/1.1\nHost: API.test.local.:${sp}\nConnection: close\n\n`,
    );
    expect(trailingDotAndCase).toMatch(/^HTTP\/1\.1 200/);
  });

  it('never forwards to the proxy itself', async () => {
    const r = await rawConnect(h.proxyPort, `127.0.0.1:${h.proxyPort}`, [auth()]);
    expect(r.status).toBe(403);
    expect(r.head).toMatch(/ERR_PROXY_LOOP/);
    r.socket.destroy();
    const out = await rawHttp(
      `GET http://localhost:${h.proxyPort}/ HTTP/1.1\nHost: x\n${auth()}\nConnection: close\n\n`,
    );
    expect(out).toMatch(/^HTTP\/1\.1 403/);
    expect(out).toMatch(/ERR_PROXY_LOOP/);
  });

  it('refuses private, loopback, link-local and metadata destinations unless pinned', async () => {
    for (const a of [
      '10.0.0.1:443',
      '169.254.169.254:80',
      '[::1]:443',
      '127.0.0.1:9',
      'internal.test.local:443',
    ]) {
      const r = await rawConnect(h.proxyPort, a, [auth()]);
      expect(r.status, a).toBe(403);
      expect(r.head).toMatch(/ERR_PROXY_DESTINATION_DENIED/);
      r.socket.destroy();
    }
    const out = await rawHttp(
      `GET http://169.254.169.254/latest/meta-data HTTP/1.1\nHost: x\n${auth()}\nConnection: close\n\n`,
    );
    expect(out).toMatch(/^HTTP\/1\.1 403/);
  });
});

describe('strict mode', () => {
  let s: Harness;
  beforeAll(async () => {
    s = await startHarness({ settings: { strict: true } });
  });
  afterAll(async () => {
    await s.close();
  });

  it('403 for hosts no provider covers, interception still works', async () => {
    const r = await rawConnect(s.proxyPort, `${HOSTS.other}:${s.upstream.httpsPort}`, [
      `Proxy-Authorization: ${s.basic('alice', s.tokens.alice)}`,
    ]);
    expect(r.status).toBe(403);
    expect(r.head).toMatch(/ERR_PROXY_DESTINATION_DENIED/);
    r.socket.destroy();
    const ok = await request(s.url('api', '/strict'), { dispatcher: s.agent() });
    expect(ok.statusCode).toBe(200);
    await ok.body.text();
  });
});
