import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdvEnv, HOST, SECRETS } from './env.js';
import { bodyOf, errorOf, statusOf } from './wire.js';

/** Issue 6 item 1: where a secret may go. Every trick below is aimed at the decoy or at cleartext. */
let e: AdvEnv;
beforeAll(async () => {
  e = await AdvEnv.start();
}, 90_000);
afterAll(async () => {
  await e?.stop();
});

const API = `${HOST.api}:443`;
const req = (path: string, extra: string[] = [], host: string = HOST.api, method = 'GET'): string =>
  `${method} ${path} HTTP/1.1\nHost: ${host}\n${extra.map((h) => `${h}\n`).join('')}Connection: close\n\n`;
const tunnel = (request: string, authority = API, servername?: string): Promise<string> =>
  e.wire.exchange(authority, request, {
    auth: e.auth(),
    ca: e.localCa,
    ...(servername !== undefined ? { servername } : {}),
  });
const json = (response: string): Record<string, unknown> =>
  JSON.parse(bodyOf(response)) as Record<string, unknown>;
const decoySeen = (): number => e.decoy.https.seen.bytes.length + e.decoy.http.seen.bytes.length;

describe('the canaries are real', () => {
  it('a plain intercepted request injects the default connection at the origin', async () => {
    const r = await tunnel(req('/inspect'));
    expect(statusOf(r)).toBe(200);
    expect(json(r)).toMatchObject({ authorization: 1, injected: 1, callerCopy: false, authsome: 0 });
    expect(e.origin.https.seen.text()).toContain(`Bearer ${SECRETS.personal}`);
  });
});

describe('Host, CONNECT authority and SNI must agree', () => {
  it.each([
    [`${HOST.decoy}`, 421],
    [`${HOST.api}:8443`, 421],
    [`me@${HOST.api}`, 421],
    [`${HOST.api}%2e`, 421],
    [`${HOST.api}\\x`, 421],
    ['127.0.0.1:443', 421],
  ])('inner Host %s → %i, nothing forwarded', async (host, status) => {
    const before = e.origin.https.seen.bytes.length;
    const r = await tunnel(req('/inspect', [], host));
    expect(statusOf(r)).toBe(status);
    expect(e.origin.https.seen.bytes.length).toBe(before);
  });

  it('two Host headers, or none, is 400', async () => {
    expect(statusOf(await tunnel(req('/inspect', [`Host: ${HOST.api}`])))).toBe(400);
    expect(statusOf(await tunnel('GET /inspect HTTP/1.0\nConnection: close\n\n'))).toBe(400);
  });

  it('an SNI naming another host, or no SNI, fails the handshake', async () => {
    for (const servername of [HOST.decoy, HOST.keys, '']) {
      const c = await e.wire.connect(API, [`Proxy-Authorization: ${e.auth()}`]);
      expect(c.status).toBe(200);
      await expect(e.wire.tls(c.socket, e.localCa, servername)).rejects.toThrow();
      c.socket.destroy();
    }
  });

  it('one trailing dot and any case name the same provider host (and are injected)', async () => {
    for (const a of [`${HOST.api}.:443`, 'API.Canary.TEST:443']) {
      const r = await tunnel(req('/inspect', [], a.replace(/:443$/, '')), a, 'api.canary.test');
      expect(statusOf(r), a).toBe(200);
      expect(json(r)).toMatchObject({ injected: 1 });
    }
  });

  it('the Host header of a CONNECT never chooses: the CONNECT line does', async () => {
    const before = decoySeen();
    const c = await e.wire.connect(
      `${HOST.decoy}:443`,
      [`Proxy-Authorization: ${e.auth()}`],
      `CONNECT ${API} HTTP/1.1`,
    );
    expect(c.status).toBe(200);
    const t = await e.wire.tls(c.socket, e.localCa, HOST.api);
    expect(t.getPeerCertificate().subjectaltname).toBe(`DNS:${HOST.api}`);
    t.destroy();
    expect(decoySeen()).toBe(before);
  });

  it('an absolute-form target inside the tunnel is refused (it would name another host)', async () => {
    expect(statusOf(await tunnel(req(`https://${HOST.decoy}/x`)))).toBe(400);
    expect(statusOf(await tunnel(req('*', [], HOST.api, 'OPTIONS')))).toBe(400);
  });
});

describe('authority tricks on CONNECT never reach a provider', () => {
  it.each([
    `me@${HOST.api}:443`,
    `me:pw@${HOST.api}:443`,
    `%61pi.canary.test:443`,
    `${HOST.api}\\@${HOST.decoy}:443`,
    `${HOST.api}:0443`,
    `${HOST.api}:+443`,
    `${HOST.api}:443:443`,
    HOST.api,
    `[${HOST.api}]:443`,
    `${HOST.api}..:443`,
    `äpi.canary.test:443`,
    '2130706433:443',
    '0x7f.1:443',
    '127.1:443',
    `${HOST.api}:65536`,
    `${HOST.api} :443`,
  ])('%s → 400', async (authority) => {
    const c = await e.wire.connect(authority, [`Proxy-Authorization: ${e.auth()}`]);
    expect(c.status, c.head).toBe(400);
    c.socket.destroy();
  });

  it.each([
    '127.0.0.1:443',
    '[::1]:443',
    '10.1.2.3:443',
    '169.254.169.254:80',
    '[::ffff:127.0.0.1]:443',
    '0.0.0.0:443',
  ])('IP literal %s → 403, never dialled', async (authority) => {
    const c = await e.wire.connect(authority, [`Proxy-Authorization: ${e.auth()}`]);
    expect(c.status, c.head).toBe(403);
    c.socket.destroy();
  });

  it('a port the provider does not declare is a plain tunnel: no interception, no secret', async () => {
    const c = await e.wire.connect(`${HOST.api}:8443`, [`Proxy-Authorization: ${e.auth()}`]);
    expect(c.status).toBe(200);
    // Only the real upstream CA is trusted: success proves nobody terminated this TLS.
    const t = await e.wire.tls(c.socket, e.upstreamCa.certPem, HOST.api);
    const all = e.wire.all(t);
    t.write(req('/x', ['X-Authsome-Connection: work']).replace(/\n/g, '\r\n'));
    expect(statusOf(await all)).toBe(200);
    expect(e.decoy.https.seen.text()).toContain('X-Authsome-Connection: work');
    expect(e.decoy.https.seen.text()).not.toMatch(/authorization: (Bearer|Basic)/i);
  });

  it('a punycode name no provider declares is tunnelled, not intercepted', async () => {
    const c = await e.wire.connect('xn--pi-7ka.canary.test:443', [`Proxy-Authorization: ${e.auth()}`]);
    // Not pinned, so it is resolved: refused (403/502) or tunnelled — never intercepted with a leaf.
    if (c.status === 200)
      await expect(e.wire.tls(c.socket, e.localCa, 'xn--pi-7ka.canary.test')).rejects.toThrow();
    c.socket.destroy();
  });
});

describe('cleartext, redirects, TRACE', () => {
  it('http:// to a provider host goes out without the secret (even asking for a connection)', async () => {
    const r = await e.wire.http(
      `GET http://${HOST.api}/inspect HTTP/1.1\nHost: ${HOST.api}\nProxy-Authorization: ${e.auth()}\nX-Authsome-Connection: work\nConnection: close\n\n`,
    );
    expect(statusOf(r)).toBe(200);
    expect(json(r)).toMatchObject({ authorization: 0, injected: 0, authsome: 0 });
  });

  it('http:// to a provider TLS port is never injected either', async () => {
    const r = await e.wire.http(
      `GET http://${HOST.api}:443/inspect HTTP/1.1\nHost: x\nProxy-Authorization: ${e.auth()}\nConnection: close\n\n`,
    );
    expect(statusOf(r)).not.toBe(200);
  });

  it('absolute https:// is refused (CONNECT is the only way to TLS)', async () => {
    const r = await e.wire.http(
      `GET https://${HOST.api}/inspect HTTP/1.1\nHost: ${HOST.api}\nProxy-Authorization: ${e.auth()}\nConnection: close\n\n`,
    );
    expect(statusOf(r)).toBe(400);
  });

  it('the absolute URI decides, never Host', async () => {
    const r = await e.wire.http(
      `GET http://${HOST.decoy}/who HTTP/1.1\nHost: ${HOST.api}\nProxy-Authorization: ${e.auth()}\nConnection: close\n\n`,
    );
    expect(statusOf(r)).toBe(200);
    expect(e.decoy.http.seen.text()).toMatch(new RegExp(`^host: ${HOST.decoy}\r$`, 'im'));
  });

  it('redirects to another host are passed back, never followed', async () => {
    const before = decoySeen();
    const r = await tunnel(req('/redirect'));
    expect(statusOf(r)).toBe(302);
    expect(r).toMatch(new RegExp(`location: https://${HOST.decoy}/landing`, 'i'));
    await new Promise((res) => setTimeout(res, 100));
    expect(decoySeen()).toBe(before);
  });

  it.each(['TRACE', 'TRACK'])('%s is refused, inside a tunnel and outside', async (m) => {
    expect(statusOf(await tunnel(req('/inspect', [], HOST.api, m)))).toBe(400);
    const r = await e.wire.http(
      `${m} http://${HOST.api}/ HTTP/1.1\nHost: x\nProxy-Authorization: ${e.auth()}\nConnection: close\n\n`,
    );
    expect(statusOf(r)).toBe(400);
  });
});

describe('the injected header and the connection header', () => {
  it('every caller copy of the injected header is removed, whatever its case', async () => {
    const r = await tunnel(
      req('/inspect', [
        'Authorization: Bearer caller-1',
        'AUTHORIZATION: Bearer caller-2',
        'authorization: evil',
      ]),
    );
    expect(json(r)).toMatchObject({ authorization: 1, injected: 1, callerCopy: false });
    const k = await tunnel(
      req('/inspect', ['X-API-KEY: caller', 'x-api-key: evil'], HOST.keys),
      `${HOST.keys}:443`,
    );
    expect(json(k)).toMatchObject({ apiKey: 1, callerCopy: false });
    const q = await tunnel(req('/inspect?key=caller&KEY=evil&x=1', [], HOST.query), `${HOST.query}:443`);
    expect(json(q)).toMatchObject({ keyParams: 1 });
  });

  it('Connection: <injected header> does not drop the injection', async () => {
    const r = await tunnel(req('/inspect', ['Connection: authorization']));
    expect(json(r)).toMatchObject({ authorization: 1, injected: 1 });
  });

  it('a CRLF-separated second line is just another header (and is stripped)', async () => {
    const r = await tunnel(req('/inspect', ['X-Authsome-Connection: work\r\nAuthorization: Bearer evil']));
    expect(statusOf(r)).toBe(200);
    expect(json(r)).toMatchObject({ authorization: 1, callerCopy: false, authsome: 0 });
    expect(e.origin.https.seen.text()).toContain(`Bearer ${SECRETS.work}`);
  });

  it.each([
    'X-Authsome-Connection: work\rAuthorization: Bearer evil',
    'X-Authsome-Connection: work\n personal',
    'X-Authsome-Connection: work\0',
  ])('bare CR, obs-fold and NUL are refused: %j', async (line) => {
    const r = await tunnel(req('/inspect', [line]));
    expect(statusOf(r)).toBe(400);
  });

  // (Surrounding whitespace is not part of a field value, RFC 9110 5.5: "work " is "work".)
  it.each(['Work', 'work,personal', '../work', 'wo%72k', 'work\tx', '', 'a'.repeat(65), 'wörk'])(
    'out-of-grammar name %j → 400',
    async (name) => {
      const r = await tunnel(req('/inspect', [`X-Authsome-Connection: ${name}`]));
      expect(statusOf(r), name).toBe(400);
    },
  );

  it('duplicates → 400, in any case', async () => {
    const r = await tunnel(req('/inspect', ['X-Authsome-Connection: work', 'x-authsome-connection: work']));
    expect(errorOf(r)).toMatchObject({ status: 400, code: 'ERR_PROXY_BAD_REQUEST' });
  });
});

describe('leaks', () => {
  it('no canary reached the caller, the logs, the audit log, the home, the decoy or cleartext', () => {
    expect(e.leaks()).toEqual([]);
  });
});
