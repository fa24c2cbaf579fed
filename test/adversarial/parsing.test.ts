import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdvEnv, HOST } from './env.js';
import { crlf, errorOf, statusOf } from './wire.js';

/** Issue 6 item 2: strict parsing, explicit limits and timeouts, and no loops back into the daemon. */
let e: AdvEnv;
beforeAll(async () => {
  e = await AdvEnv.start();
}, 90_000);
afterAll(async () => {
  await e?.stop();
});

const API = `${HOST.api}:443`;
const outer = (lines: string[], body = '', target = `http://${HOST.decoy}/p`): string =>
  `POST ${target} HTTP/1.1\nHost: ${HOST.decoy}\nProxy-Authorization: ${e.auth()}\n${lines.map((l) => `${l}\n`).join('')}Connection: close\n\n${body}`;
const inner = (lines: string[], body = ''): string =>
  `POST /inspect HTTP/1.1\nHost: ${HOST.api}\n${lines.map((l) => `${l}\n`).join('')}Connection: close\n\n${body}`;
const tunnel = (request: string): Promise<string> =>
  e.wire.exchange(API, request, { auth: e.auth(), ca: e.localCa });

const framing: Array<[string, string[], string]> = [
  ['two equal Content-Length', ['Content-Length: 3', 'Content-Length: 3'], 'abc'],
  ['two different Content-Length', ['Content-Length: 3', 'Content-Length: 4'], 'abcd'],
  ['Content-Length list', ['Content-Length: 3, 3'], 'abc'],
  [
    'Content-Length and Transfer-Encoding',
    ['Content-Length: 3', 'Transfer-Encoding: chunked'],
    '3\nabc\n0\n\n',
  ],
  ['Transfer-Encoding twice', ['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], '0\n\n'],
  ['Transfer-Encoding not chunked', ['Transfer-Encoding: gzip, chunked'], '0\n\n'],
  ['Transfer-Encoding identity', ['Transfer-Encoding: identity'], ''],
  ['signed Content-Length', ['Content-Length: +3'], 'abc'],
  ['chunk size garbage', ['Transfer-Encoding: chunked'], 'zz\nabc\n0\n\n'],
];

describe('message framing is never guessed', () => {
  it.each(framing)('outside a tunnel: %s → 400', async (_what, lines, body) => {
    const r = await e.wire.http(crlf(outer(lines, body)));
    expect(statusOf(r)).toBe(400);
  });

  it.each(framing)('inside a tunnel: %s → 400', async (_what, lines, body) => {
    expect(statusOf(await tunnel(crlf(inner(lines, body))))).toBe(400);
  });
});

describe('headers that decide are read raw, once', () => {
  it.each([
    ['Host', `Host: ${HOST.api}`],
    ['Proxy-Authorization', `proxy-authorization: ${'x'}`],
    ['X-Authsome-Connection', 'X-Authsome-Connection: work\nx-authsome-connection: work'],
  ])('a second %s → 400', async (_name, line) => {
    const r = await e.wire.http(crlf(outer([line])));
    expect(errorOf(r)).toMatchObject({ status: 400, code: 'ERR_PROXY_BAD_REQUEST' });
  });

  it('on CONNECT too', async () => {
    const c = await e.wire.connect(API, [
      `Proxy-Authorization: ${e.auth()}`,
      `Proxy-Authorization: ${e.auth()}`,
    ]);
    expect(c.status).toBe(400);
    c.socket.destroy();
    const h = await e.wire.connect(API, [`Proxy-Authorization: ${e.auth()}`, `Host: ${HOST.decoy}:443`]);
    expect(h.status).toBe(400);
    h.socket.destroy();
  });
});

describe('limits are enforced by the proxy, not left to Node', () => {
  const filler = (n: number): string[] => Array.from({ length: n }, (_, i) => `X-F${i}: v`);

  it('exactly maxHeaderCount (100) headers pass; one more is 431 (outer, CONNECT, inner)', async () => {
    // outer: Host, Proxy-Authorization, Connection + filler
    expect(statusOf(await e.wire.http(crlf(outer(filler(97)))))).toBe(200);
    expect(errorOf(await e.wire.http(crlf(outer(filler(98)))))).toMatchObject({
      status: 431,
      code: 'ERR_PROXY_HEADERS_TOO_LARGE',
    });
    // CONNECT: Host, Proxy-Authorization + filler
    const ok = await e.wire.connect(API, [`Proxy-Authorization: ${e.auth()}`, ...filler(98)]);
    expect(ok.status).toBe(200);
    ok.socket.destroy();
    const over = await e.wire.connect(API, [`Proxy-Authorization: ${e.auth()}`, ...filler(99)]);
    expect(over.status).toBe(431);
    over.socket.destroy();
    // inner: Host, Connection + filler (no body headers on a GET)
    const get = (n: number): string =>
      crlf(`GET /inspect HTTP/1.1\nHost: ${HOST.api}\n${filler(n).join('\n')}\nConnection: close\n\n`);
    expect(statusOf(await tunnel(get(98)))).toBe(200);
    expect(statusOf(await tunnel(get(99)))).toBe(431);
  });

  it('thousands of tiny headers (the truncation case) are 431, never silently cut', async () => {
    const r = await e.wire.http(
      crlf(outer([...filler(3000), 'X-Authsome-Connection: a', 'X-Authsome-Connection: b'])),
    );
    expect(statusOf(r)).toBe(431);
  });

  it('a head larger than maxHeaderSize is 431', async () => {
    const r = await e.wire.http(crlf(outer([`X-Big: ${'a'.repeat(40_000)}`])));
    expect(statusOf(r)).toBe(431);
  });

  it("the head size limit (maxHeaderSize, 32 KiB) is the same on every path: at the limit it passes, one byte over is the proxy's 431", async () => {
    const LIMIT = 32_768;
    // The proxy's measure: the request line and each field as `name: value` CRLF.
    const size = (method: string, target: string, fields: Array<[string, string]>): number =>
      method.length + target.length + 12 + fields.reduce((n, [k, v]) => n + k.length + v.length + 4, 0);
    const head = (method: string, target: string, fields: Array<[string, string]>, total: number): string => {
      const pad = total - size(method, target, [...fields, ['X-Big', '']]);
      const all = [...fields, ['X-Big', 'a'.repeat(pad)]];
      return `${method} ${target} HTTP/1.1\r\n${all.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
    };
    const proxyRefused = (r: string): boolean =>
      statusOf(r) === 431 && /x-authsome-error: ERR_PROXY_HEADERS_TOO_LARGE/i.test(r);
    for (const total of [LIMIT, LIMIT + 1]) {
      const over = total > LIMIT;
      // absolute-form
      const target = `http://${HOST.decoy}/p`;
      const o = await e.wire.http(
        head(
          'GET',
          target,
          [
            ['Host', HOST.decoy],
            ['Proxy-Authorization', e.auth()],
            ['Connection', 'close'],
          ],
          total,
        ),
      );
      expect(over ? proxyRefused(o) : statusOf(o) === 200, `absolute-form ${total}: ${o.slice(0, 200)}`).toBe(
        true,
      );
      // CONNECT
      const socket = await e.wire.open();
      socket.write(
        head(
          'CONNECT',
          API,
          [
            ['Host', API],
            ['Proxy-Authorization', e.auth()],
          ],
          total,
        ),
      );
      const c = await e.wire.head(socket);
      socket.destroy();
      expect(over ? proxyRefused(c.head) : c.status === 200, `CONNECT ${total}: ${c.head}`).toBe(true);
      // inside a tunnel
      const i = await tunnel(
        head(
          'GET',
          '/inspect',
          [
            ['Host', HOST.api],
            ['Connection', 'close'],
          ],
          total,
        ),
      );
      expect(over ? proxyRefused(i) : statusOf(i) === 200, `tunnel ${total}: ${i.slice(0, 200)}`).toBe(true);
    }
  });

  it('a head that never completes is cut (slow headers), outside and inside a tunnel', async () => {
    // The trickle keeps the idle timeout (4 s) from ever firing: only the head deadline (1.5 s) can cut
    // it, and it answers 400 before closing. `all` gives up after 60 s (a proxy that never cuts).
    const s = await e.wire.open();
    const all = e.wire.all(s, 60_000);
    s.write(`GET http://${HOST.decoy}/ HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n`);
    const timer = setInterval(() => s.writable && s.write('X-More: 1\r\n'), 300);
    const outer = await all;
    clearInterval(timer);
    expect(e.wire.closedByPeer(s)).toBe(true);
    expect(errorOf(outer)).toMatchObject({ status: 400, code: 'ERR_PROXY_BAD_REQUEST' });

    const c = await e.wire.connect(API, [`Proxy-Authorization: ${e.auth()}`]);
    const t = await e.wire.tls(c.socket, e.localCa, HOST.api);
    const got = e.wire.all(t, 60_000);
    t.write(`GET /inspect HTTP/1.1\r\nHost: ${HOST.api}\r\n`);
    const inner = await got;
    expect(e.wire.closedByPeer(t)).toBe(true);
    expect(errorOf(inner)).toMatchObject({ status: 400, code: 'ERR_PROXY_BAD_REQUEST' });
  });

  it('a body that stalls is cut after the idle timeout, and the origin request is aborted', async () => {
    const c = await e.wire.connect(API, [`Proxy-Authorization: ${e.auth()}`]);
    const t = await e.wire.tls(c.socket, e.localCa, HOST.api);
    const got = e.wire.all(t, 60_000);
    t.write(crlf(inner(['Content-Length: 100'], 'only ten b')));
    await got;
    expect(e.wire.closedByPeer(t)).toBe(true);
  });
});

describe('the proxy never forwards to itself or to its control API', () => {
  it.each([
    () => `127.0.0.1:${e.proxyPort}`,
    () => `localhost:${e.controlPort}`,
    () => `127.0.0.1:${e.controlPort}`,
    () => `127.0.0.2:${e.controlPort}`,
    () => `[::1]:${e.controlPort}`,
    () => `[::ffff:127.0.0.1]:${e.controlPort}`,
    () => `0.0.0.0:${e.controlPort}`,
    () => `${HOST.loop}:443`,
    () => `${HOST.ctl}:443`,
    () => `${HOST.ctl6}:443`,
    () => `${HOST.zero}:443`,
  ])('CONNECT %# → 403', async (a) => {
    const c = await e.wire.connect(a(), [`Proxy-Authorization: ${e.auth()}`]);
    expect(c.status, a()).toBe(403);
    expect(c.head).toMatch(/ERR_PROXY_LOOP|ERR_PROXY_DESTINATION_DENIED/);
    c.socket.destroy();
  });

  it('pinned provider hosts pointing at the daemon are ERR_PROXY_LOOP (pins never beat the loop check)', async () => {
    for (const h of [HOST.loop, HOST.ctl, HOST.ctl6, HOST.zero]) {
      const c = await e.wire.connect(`${h}:443`, [`Proxy-Authorization: ${e.auth()}`]);
      expect(c.head, h).toMatch(/x-authsome-error: ERR_PROXY_LOOP/i);
      c.socket.destroy();
    }
  });

  it('absolute-form http:// to the control API is refused', async () => {
    for (const target of [
      `http://127.0.0.1:${e.controlPort}/v1/status`,
      `http://localhost:${e.controlPort}/v1/status`,
      `http://${HOST.ctl}:443/v1/status`,
    ]) {
      const r = await e.wire.http(
        crlf(
          `GET ${target} HTTP/1.1\nHost: 127.0.0.1:${e.controlPort}\nProxy-Authorization: ${e.auth()}\nConnection: close\n\n`,
        ),
      );
      expect(statusOf(r), target).toBe(403);
    }
  });
});

describe('leaks', () => {
  it('no canary reached the caller, the logs, the audit log, the home, the decoy or cleartext', () => {
    expect(e.leaks()).toEqual([]);
  });
});
