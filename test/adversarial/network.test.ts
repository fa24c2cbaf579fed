import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Server as HttpsServer } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCa } from '../../src/ca/root.js';
import { checkControlRequest } from '../../src/daemon/control.js';
import { readIdentityKey, signPop } from '../../src/identity/index.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { issueWith, selfSigned } from './certs.js';
import { AdvEnv, SECRETS } from './env.js';
import { startTlsServer } from './servers.js';
import { crlf, errorOf, statusOf } from './wire.js';

/** Issue 6 item 3: the upstream leg is verified TLS to a checked address; the control API is local only. */
const BAD = ['expired', 'wrongname', 'selfsigned', 'untrusted', 'localca'].map((n) => `${n}.canary.test`);
let e: AdvEnv;
let bad: Array<Awaited<ReturnType<typeof startTlsServer>>> = [];

beforeAll(async () => {
  const upstreamCa = await makeTestCa('adversarial upstream CA (bad certs)');
  const rogue = await makeTestCa('rogue CA');
  const DAY = 24 * 3600_000;
  const certs = [
    await upstreamCa.issue([BAD[0]!], {
      notBefore: new Date(Date.now() - 10 * DAY),
      notAfter: new Date(Date.now() - DAY),
    }),
    await upstreamCa.issue(['someone-else.canary.test']),
    await selfSigned([BAD[2]!]),
    await rogue.issue([BAD[3]!]),
    await selfSigned([BAD[4]!]), // replaced by a leaf of the daemon's own CA once it exists
  ];
  bad = await Promise.all(certs.map((c) => startTlsServer(c)));
  e = await AdvEnv.start({
    pins: BAD.map((h, i) => `${h}:443=127.0.0.1:${bad[i]!.port}`),
    providers: [
      {
        name: 'tlsco',
        displayName: 'tlsco',
        docsUrl: 'https://example.test/docs',
        hosts: BAD.map((host) => ({ host })),
        fields: ['api_key'],
        inject: [{ type: 'header', name: 'Authorization', template: 'Bearer {{api_key}}' }],
      },
    ],
    logins: [['tlsco', 'main', SECRETS.tls]],
  });
  // The upstream CA trusted by the daemon did not sign these, except "expired" and "wrongname".
  e.mustNotSee.push(
    ...bad.map((b, i): [string, (typeof b)['seen']] => [`bad-TLS upstream ${BAD[i]}`, b.seen]),
  );
  const local = await loadCa(join(e.t.home, 'server', 'ca'));
  const leaf = await issueWith(local, [BAD[4]!]);
  (bad[4]!.server as HttpsServer).setSecureContext({ cert: leaf.certPem, key: leaf.keyPem });
}, 90_000);
afterAll(async () => {
  await e?.stop();
  await Promise.all(bad.map((b) => b.close()));
});

describe('upstream TLS is always verified (daemon runs with NODE_TLS_REJECT_UNAUTHORIZED=0)', () => {
  it.each(BAD)('%s → 502 ERR_UPSTREAM_TLS, the secret never sent', async (host) => {
    const r = await e.wire.exchange(`${host}:443`, `GET /x HTTP/1.1\nHost: ${host}\nConnection: close\n\n`, {
      auth: e.auth(),
      ca: e.localCa,
    });
    expect(errorOf(r)).toMatchObject({ status: 502, code: 'ERR_UPSTREAM_TLS' });
  });

  it('the daemon really had NODE_TLS_REJECT_UNAUTHORIZED=0 (Node warns about it in daemon.log)', () => {
    expect(e.file('server/daemon.log')).toMatch(/NODE_TLS_REJECT_UNAUTHORIZED/);
  });
});

describe('internal addresses are refused unless pinned', () => {
  // A name this machine resolves to loopback through /etc/hosts (not "localhost", which is a literal to the proxy).
  const hostsName = (): string | undefined => {
    try {
      for (const line of readFileSync('/etc/hosts', 'utf8').split('\n')) {
        const [ip, ...names] = line.replace(/#.*/, '').trim().split(/\s+/);
        if (!ip || !/^127\./.test(ip)) continue;
        const n = names.find((x) => x !== 'localhost' && /^[a-z][a-z0-9-]*(\.[a-z0-9-]+)*$/.test(x));
        if (n) return n;
      }
    } catch {
      // no /etc/hosts
    }
    return undefined;
  };

  it('a name that resolves to loopback (DNS, not a literal) is 403 on CONNECT and http://', async () => {
    const name = hostsName();
    if (name === undefined) return;
    const c = await e.wire.connect(`${name}:443`, [`Proxy-Authorization: ${e.auth()}`]);
    expect(c.status, name).toBe(403);
    expect(c.head).toMatch(/ERR_PROXY_DESTINATION_DENIED/);
    c.socket.destroy();
    const r = await e.wire.http(
      crlf(
        `GET http://${name}:${e.origin.http.port}/ HTTP/1.1\nHost: x\nProxy-Authorization: ${e.auth()}\nConnection: close\n\n`,
      ),
    );
    expect(errorOf(r)).toMatchObject({ status: 403, code: 'ERR_PROXY_DESTINATION_DENIED' });
  });

  it.each([
    '169.254.169.254:80',
    '10.0.0.1:443',
    '192.168.1.1:443',
    '[fe80::1]:443',
    '[fd00::1]:443',
    '100.64.0.1:443',
  ])('the literal %s is 403 before any dial', async (a) => {
    const c = await e.wire.connect(a, [`Proxy-Authorization: ${e.auth()}`]);
    expect(c.status).toBe(403);
    c.socket.destroy();
  });

  it('the metadata service over http:// is 403', async () => {
    const r = await e.wire.http(
      crlf(
        `GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\nHost: 169.254.169.254\nProxy-Authorization: ${e.auth()}\nConnection: close\n\n`,
      ),
    );
    expect(errorOf(r)).toMatchObject({ status: 403, code: 'ERR_PROXY_DESTINATION_DENIED' });
  });
});

describe('the control API answers only local callers that name it', () => {
  const raw = async (text: string, localAddress?: string): Promise<string> => {
    const s = await e.wire.open({ port: e.controlPort, ...(localAddress ? { localAddress } : {}) });
    const all = e.wire.all(s);
    s.write(crlf(text));
    return all;
  };
  const signed = async (host: string): Promise<string> => {
    const key = await readIdentityKey(join(e.t.home, 'client', 'identities', 'me.key'));
    const jwt = await signPop({
      key,
      handle: 'me',
      method: 'GET',
      url: `http://${host}/v1/status`,
      body: undefined,
    });
    return `Authorization: PoP ${jwt}`;
  };

  it('a correctly signed request with the right Host works (so the refusals below mean something)', async () => {
    const host = `127.0.0.1:${e.controlPort}`;
    expect(
      statusOf(
        await raw(`GET /v1/status HTTP/1.1\nHost: ${host}\n${await signed(host)}\nConnection: close\n\n`),
      ),
    ).toBe(200);
  });

  it.each([
    'evil.example',
    'evil.example:7998',
    () => `127.0.0.1:${e.controlPort + 1}`,
    () => `localhost.:${e.controlPort}`,
    () => `127.0.0.1.nip.io:${e.controlPort}`,
    () => `127.0.0.2:${e.controlPort}`,
  ])('foreign Host %s → 403, even with a valid token for that URL', async (h) => {
    const host = typeof h === 'function' ? h() : h;
    const r = await raw(
      `GET /v1/status HTTP/1.1\nHost: ${host}\n${await signed(host)}\nConnection: close\n\n`,
    );
    expect(errorOf(r)).toMatchObject({ status: 403, code: 'ERR_AUTH_FORBIDDEN' });
  });

  it('two Host headers, none, or an absolute target → refused', async () => {
    const host = `127.0.0.1:${e.controlPort}`;
    const two = await raw(
      `GET /v1/status HTTP/1.1\nHost: ${host}\nHost: ${host}\n${await signed(host)}\nConnection: close\n\n`,
    );
    expect(statusOf(two)).toBe(403);
    const none = await raw(`GET /v1/status HTTP/1.0\n${await signed(host)}\n\n`);
    expect(statusOf(none)).toBe(403);
    const abs = await raw(
      `GET http://evil.example/v1/status HTTP/1.1\nHost: ${host}\n${await signed(host)}\nConnection: close\n\n`,
    );
    expect(statusOf(abs)).toBe(400);
  });

  it('a peer address outside the allowed loopback set is refused (real socket from 127.0.0.2)', async () => {
    const host = `127.0.0.1:${e.controlPort}`;
    const r = await raw(
      `GET /v1/status HTTP/1.1\nHost: ${host}\n${await signed(host)}\nConnection: close\n\n`,
      '127.0.0.2',
    );
    expect(errorOf(r)).toMatchObject({ status: 403, code: 'ERR_AUTH_FORBIDDEN' });
  });

  it.each(['10.0.0.5', '192.168.1.20', '::ffff:10.0.0.5', 'fe80::1', '203.0.113.9', undefined])(
    'non-loopback peer %s is refused before anything else is looked at',
    (peer) => {
      expect(() => checkControlRequest(peer, ['Host', '127.0.0.1:7998'], '/v1/status', 7998)).toThrow(
        /loopback peers/,
      );
    },
  );
});

describe('leaks', () => {
  it('no canary reached the caller, the logs, the audit log, the home, the decoys or a bad-TLS upstream', () => {
    expect(e.leaks()).toEqual([]);
  });
});
