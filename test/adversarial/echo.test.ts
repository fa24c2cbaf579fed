import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AdvEnv, HOST, SECRETS } from './env.js';
import { wsAfterHandshake } from './servers.js';
import { bodyOf, errorOf, statusOf } from './wire.js';

/**
 * Issue 6 item 4: an allowed upstream that echoes the injected secret. Headers → 502
 * ERR_UPSTREAM_SECRET_ECHO; body → masked in place (same length); compressed → decoded first;
 * every echo → a proxy.secret_echo audit record.
 */
let e: AdvEnv;
beforeAll(async () => {
  e = await AdvEnv.start();
}, 90_000);
afterAll(async () => {
  await e?.stop();
});

const get = (host: string, path: string, extra: string[] = []): Promise<string> =>
  e.wire.exchange(
    `${host}:443`,
    `GET ${path} HTTP/1.1\nHost: ${host}\nAccept-Encoding: gzip, br, deflate\n${extra.map((l) => `${l}\n`).join('')}Connection: close\n\n`,
    { auth: e.auth(), ca: e.localCa },
  );
const masked = (n: number): string => '*'.repeat(n);
const echoes = (): Array<Record<string, unknown>> =>
  e.auditLines().filter((l) => l['event'] === 'proxy.secret_echo');

describe('in a response header: refused with 502 before anything is sent', () => {
  it.each([
    [HOST.api, '/echo/header'],
    [HOST.api, '/echo/header-full'],
    [HOST.api, '/echo/cookie'],
    [HOST.api, '/echo/location'],
    [HOST.keys, '/echo/header'],
    [HOST.basic, '/echo/header'],
    [HOST.basic, '/echo/header-full'],
  ])('%s%s', async (host, path) => {
    const before = echoes().length;
    const r = await get(host, path);
    expect(errorOf(r)).toMatchObject({ status: 502, code: 'ERR_UPSTREAM_SECRET_ECHO' });
    await vi.waitFor(() => expect(echoes().length).toBeGreaterThan(before));
    await new Promise((res) => setTimeout(res, 50)); // room for a (wrong) second record
    const rec = echoes().slice(before);
    expect(rec).toHaveLength(1);
    expect(rec[0]).toMatchObject({ profile: 'me', host, path, status: 502, detail: { where: 'header' } });
  });
});

describe('in a response body: masked in place, same length', () => {
  it('a body that quotes the request headers', async () => {
    const r = await get(HOST.api, '/echo/body');
    expect(statusOf(r)).toBe(200);
    const body = JSON.parse(bodyOf(r)) as { authorization: string[] };
    // The secret is masked; the scheme word around it is not a secret and stays.
    expect(body.authorization).toEqual([`Bearer ${masked(SECRETS.personal.length)}`]);
    // The echo record is best effort and written after the (masked) answer went out: wait for it.
    await vi.waitFor(() =>
      expect(echoes().at(-1)).toMatchObject({
        host: HOST.api,
        path: '/echo/body',
        detail: { where: 'body' },
      }),
    );
  });

  it('raw key header, Basic credentials and a query key', async () => {
    for (const [host, path] of [
      [HOST.keys, '/echo/body'],
      [HOST.basic, '/echo/body'],
      [HOST.query, '/echo/body?x=1'],
    ] as const) {
      const r = await get(host, path);
      expect(statusOf(r), host).toBe(200);
      expect(bodyOf(r), host).toMatch(/\*{8,}/);
    }
  });

  it.each([1, 2, 5, 17, -1])('split across two chunks at %i', async (cut) => {
    const n = SECRETS.personal.length;
    const r = await get(HOST.api, `/echo/split?cut=${cut < 0 ? n + cut : cut}`);
    expect(statusOf(r)).toBe(200);
    expect(bodyOf(r)).toBe(`before ${masked(n)} after`);
  });

  it('one byte per chunk, with Content-Length kept valid', async () => {
    const r = await get(HOST.api, '/echo/bytes');
    expect(statusOf(r)).toBe(200);
    expect(r).toMatch(/content-length: \d+/i);
    expect(bodyOf(r)).toBe(`<<${masked(SECRETS.personal.length)}>>`);
  });

  it('server-sent events split across events still arrive, masked', async () => {
    const r = await get(HOST.api, '/echo/sse');
    expect(bodyOf(r)).toContain(`data: one ${masked(SECRETS.personal.length)}\n\n`);
    expect(bodyOf(r)).toContain('data: done\n\n');
  });

  it('base64 and base64url (at any offset), hex (either case) and URL-encoded forms are masked too', async () => {
    const r = await get(HOST.api, '/echo/b64');
    const lines = bodyOf(r).split('\n');
    expect(lines).toHaveLength(7);
    // Every form is masked over (at least) the encoding of all but 2 bytes at each end of the secret.
    // Base64 forms keep the encoding of the text before it, up to 3 characters after the mask and
    // their padding.
    const n = SECRETS.personal.length;
    const b64 = new RegExp(`^[A-Za-z0-9+/_-]*\\*{${Math.floor((4 * (n - 4)) / 3)},}[A-Za-z0-9+/_-]{0,3}=*$`);
    for (const line of lines.slice(0, 4)) expect(line).toMatch(b64);
    expect(lines.slice(4)).toEqual(['*'.repeat(2 * n), '*'.repeat(2 * n), '*'.repeat(n)]);
  });
});

describe('compressed bodies', () => {
  it('Accept-Encoding is not forwarded on injected requests (so compliant upstreams never compress)', async () => {
    const r = await get(HOST.api, '/inspect');
    expect(JSON.parse(bodyOf(r))).toMatchObject({ acceptEncoding: 0, injected: 1 });
  });

  it('but it is on requests without injection', async () => {
    const r = await e.wire.http(
      `GET http://${HOST.api}/inspect HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nRange: bytes=0-9\r\nProxy-Authorization: ${e.auth()}\r\nConnection: close\r\n\r\n`,
    );
    expect(JSON.parse(bodyOf(r))).toMatchObject({ acceptEncoding: 1, range: 1, injected: 0 });
  });

  it('Range, If-Range and Request-Range are not forwarded on injected requests (an echo read back in slices shorter than any needle)', async () => {
    const r = await get(HOST.api, '/inspect', [
      'Range: bytes=100-114',
      'If-Range: "x"',
      'Request-Range: bytes=1-2',
    ]);
    expect(JSON.parse(bodyOf(r))).toMatchObject({ range: 0, injected: 1 });
  });

  it.each(['gzip', 'br', 'deflate', 'gzip-gzip'])(
    '%s sent anyway is decoded, scanned and passed on decoded',
    async (enc) => {
      const r = await get(HOST.api, `/echo/${enc}`);
      expect(statusOf(r)).toBe(200);
      expect(r.slice(0, r.indexOf('\r\n\r\n'))).not.toMatch(/content-encoding/i);
      const body = JSON.parse(bodyOf(r)) as { authorization: string[] };
      expect(body.authorization[0]).toBe(`Bearer ${masked(SECRETS.personal.length)}`);
    },
  );

  it('an encoding the proxy cannot read is refused (502)', async () => {
    const r = await get(HOST.api, '/echo/zstd');
    expect(errorOf(r)).toMatchObject({ status: 502, code: 'ERR_UPSTREAM_FAILED' });
  });

  it.each(['/echo/gzip-hidden', '/echo/gzip-hidden-case'])(
    '%s: a coding the upstream names in Connection (hidden as hop-by-hop) is refused (502)',
    async (path) => {
      const r = await get(HOST.api, path);
      expect(errorOf(r)).toMatchObject({ status: 502, code: 'ERR_UPSTREAM_FAILED' });
      expect(r).not.toContain(SECRETS.personal.slice(6));
    },
  );

  it('a transfer coding besides chunked (gzip, chunked) is refused (502)', async () => {
    const r = await get(HOST.api, '/echo/te-gzip');
    expect(errorOf(r)).toMatchObject({ status: 502, code: 'ERR_UPSTREAM_FAILED' });
  });
});

describe('WebSocket handshakes of injected upgrades', () => {
  /** `after`: bytes the client sends right behind its handshake, in the same write. */
  const upgrade = (path: string, extra = '', after = ''): Promise<string> =>
    e.wire.exchange(
      `${HOST.api}:443`,
      `GET ${path} HTTP/1.1\nHost: ${HOST.api}\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n${extra}\n${after}`,
      { auth: e.auth(), ca: e.localCa, ms: 1500 },
    );

  it('a 101 answer carrying the credential is refused with 502', async () => {
    const r = await upgrade('/ws/echo-header');
    expect(errorOf(r)).toMatchObject({ status: 502, code: 'ERR_UPSTREAM_SECRET_ECHO' });
  });

  it('a frame after the 101 carrying the credential is masked in place; no extension is offered', async () => {
    const r = await upgrade('/ws/echo-frame', 'Sec-WebSocket-Extensions: permessage-deflate\n');
    expect(statusOf(r)).toBe(101);
    const frames = Buffer.from(r.slice(r.indexOf('\r\n\r\n') + 4), 'latin1');
    // One unmasked text frame whose declared length still matches its payload.
    expect(frames[0]).toBe(0x81);
    const len = frames[1] === 126 ? frames.readUInt16BE(2) : frames[1]!;
    const payload = frames.subarray(frames[1] === 126 ? 4 : 2);
    expect(payload.length).toBe(len);
    // The upstream saw no extension offer (permessage-deflate would hide an echo in compressed frames).
    expect(JSON.parse(payload.toString('utf8'))).toEqual({
      auth: masked(SECRETS.personal.length),
      ext: '',
    });
    // Echo records are best effort (written after the bytes went out): wait for this one.
    const mine = (): Array<Record<string, unknown>> => echoes().filter((l) => l['path'] === '/ws/echo-frame');
    await vi.waitFor(() => expect(mine()).toHaveLength(1));
    expect(mine()[0]).toMatchObject({ host: HOST.api, status: 101, detail: { where: 'frame' } });
  });

  it('a 101 that negotiates an extension anyway is refused with 502 (compressed frames cannot be scanned)', async () => {
    const r = await upgrade('/ws/force-deflate');
    expect(errorOf(r)).toMatchObject({ status: 502, code: 'ERR_UPSTREAM_FAILED' });
  });

  it('a refused handshake (401) whose body quotes the credential: passed on, the secret masked', async () => {
    const r = await upgrade('/ws/refuse-echo');
    expect(statusOf(r)).toBe(401);
    expect(JSON.parse(bodyOf(r))).toEqual({ error: 'unauthorized', got: masked(SECRETS.personal.length) });
    const mine = (): Array<Record<string, unknown>> =>
      echoes().filter((l) => l['path'] === '/ws/refuse-echo');
    await vi.waitFor(() => expect(mine()).toHaveLength(1));
    expect(mine()[0]).toMatchObject({ status: 401, detail: { where: 'body' } });
  });

  it('a refused handshake with a chunked body (the credential split across chunks) is refused (502)', async () => {
    const r = await upgrade('/ws/refuse-chunked');
    expect(errorOf(r)).toMatchObject({ status: 502, code: 'ERR_UPSTREAM_FAILED' });
  });

  it('a refusal ends the connection after its body: a second response behind it never reaches the client', async () => {
    const r = await upgrade('/ws/refuse-then-more');
    expect(statusOf(r)).toBe(401);
    expect(r).not.toContain('200 OK');
    expect(r).not.toContain(SECRETS.personal.slice(6));
  });

  it('an interim 1xx before the handshake answer is refused (502): the next head would pass unchecked', async () => {
    const r = await upgrade('/ws/interim');
    expect(errorOf(r)).toMatchObject({ status: 502, code: 'ERR_UPSTREAM_FAILED' });
  });

  it.each(['/ws/lf-head', '/ws/space-colon'])(
    '%s: a head the proxy would read differently from a lenient client is refused (502)',
    async (path) => {
      const r = await upgrade(path);
      expect(errorOf(r)).toMatchObject({ status: 502, code: 'ERR_UPSTREAM_FAILED' });
    },
  );

  it('bytes the client sends behind its handshake never go upstream when the handshake is refused', async () => {
    wsAfterHandshake.length = 0;
    const r = await upgrade('/ws/refuse-late', '', 'GET /v1/pipelined-after-upgrade HTTP/1.1\nHost: x\n\n');
    expect(statusOf(r)).toBe(401);
    expect(wsAfterHandshake.join('')).not.toContain('pipelined-after-upgrade');
  });

  it('an ordinary 101 goes through', async () => {
    const r = await upgrade('/ws/plain');
    expect(statusOf(r)).toBe(101);
  });
});

describe('what is left alone', () => {
  it('an ordinary response passes byte for byte', async () => {
    const r = await get(HOST.api, '/plain');
    expect(JSON.parse(bodyOf(r))).toEqual({ ok: true, path: '/plain' });
  });

  it('the audit records of echoes name no secret and verify', async () => {
    expect(echoes().length).toBeGreaterThan(5);
    const v = await e.cli(['audit', 'verify']);
    expect(v.code, v.stderr).toBe(0);
  });
});

describe('leaks', () => {
  it('no canary reached the caller, the logs, the audit log, the home, the decoy or cleartext', () => {
    expect(e.leaks()).toEqual([]);
  });
});
