import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { isAppError } from '../../../src/errors.js';
import { CSP, checkUiRequest, readCookie, sessionCookie } from '../../../src/daemon/ui-http.js';
import { isUiTarget } from '../../../src/daemon/ui-service.js';

const PORT = 7998;
function req(method: string, headers: Array<[string, string]>, peer = '127.0.0.1'): IncomingMessage {
  return {
    method,
    rawHeaders: headers.flat(),
    socket: { remoteAddress: peer, localAddress: '127.0.0.1' },
  } as unknown as IncomingMessage;
}
const outcome = (f: () => unknown): string => {
  try {
    f();
    return 'ok';
  } catch (e) {
    return isAppError(e) ? e.code : String(e);
  }
};
const host: [string, string] = ['Host', `127.0.0.1:${PORT}`];
const origin: [string, string] = ['Origin', `http://127.0.0.1:${PORT}`];

describe('the dashboard request rules (SPEC 11)', () => {
  it('takes only its own Host: 127.0.0.1 or localhost with its port, exactly once', () => {
    expect(outcome(() => checkUiRequest(req('GET', [host]), PORT))).toBe('ok');
    expect(outcome(() => checkUiRequest(req('GET', [['Host', `localhost:${PORT}`]]), PORT))).toBe('ok');
    for (const h of [
      `evil.test:${PORT}`,
      `127.0.0.1:${PORT + 1}`,
      '127.0.0.1',
      `LOCALHOST:${PORT}`,
      `[::1]:${PORT}`,
      `127.0.0.1.:${PORT}`,
      `rebind.127.0.0.1.nip.io:${PORT}`,
    ])
      expect(
        outcome(() => checkUiRequest(req('GET', [['Host', h]]), PORT)),
        h,
      ).toBe('ERR_AUTH_FORBIDDEN');
    expect(outcome(() => checkUiRequest(req('GET', []), PORT))).toBe('ERR_AUTH_FORBIDDEN');
    expect(outcome(() => checkUiRequest(req('GET', [host, host]), PORT))).toBe('ERR_AUTH_FORBIDDEN');
  });

  it('answers loopback peers only', () => {
    expect(outcome(() => checkUiRequest(req('GET', [host], '10.0.0.5'), PORT))).toBe('ERR_AUTH_FORBIDDEN');
  });

  it('an Origin, when sent, must be exactly the page (scheme, host and port); changes must send it', () => {
    expect(outcome(() => checkUiRequest(req('POST', [host, origin]), PORT))).toBe('ok');
    expect(outcome(() => checkUiRequest(req('POST', [host]), PORT))).toBe('ERR_AUTH_FORBIDDEN');
    for (const o of [
      `https://127.0.0.1:${PORT}`,
      `http://127.0.0.1:${PORT + 1}`,
      `http://localhost:${PORT}`,
      'null',
      `http://127.0.0.1:${PORT}/`,
    ]) {
      expect(
        outcome(() => checkUiRequest(req('POST', [host, ['Origin', o]]), PORT)),
        o,
      ).toBe('ERR_AUTH_FORBIDDEN');
      expect(
        outcome(() => checkUiRequest(req('GET', [host, ['Origin', o]]), PORT)),
        o,
      ).toBe('ERR_AUTH_FORBIDDEN');
    }
    expect(outcome(() => checkUiRequest(req('POST', [host, origin, origin]), PORT))).toBe(
      'ERR_AUTH_FORBIDDEN',
    );
  });

  it('Sec-Fetch-Site: same-origin always, none (a typed URL) for reads, never same-site or cross-site', () => {
    const site = (m: string, v: string) =>
      outcome(() =>
        checkUiRequest(req(m, [host, ...(m === 'POST' ? [origin] : []), ['Sec-Fetch-Site', v]]), PORT),
      );
    expect(site('GET', 'same-origin')).toBe('ok');
    expect(site('GET', 'none')).toBe('ok');
    expect(site('POST', 'same-origin')).toBe('ok');
    expect(site('POST', 'none')).toBe('ERR_AUTH_FORBIDDEN');
    for (const m of ['GET', 'POST']) {
      expect(site(m, 'same-site')).toBe('ERR_AUTH_FORBIDDEN');
      expect(site(m, 'cross-site')).toBe('ERR_AUTH_FORBIDDEN');
    }
  });

  it('reads its own cookie (named for the port), and refuses two of them', () => {
    const c = (v: string) => req('GET', [host, ['Cookie', v]]);
    expect(readCookie(c(`a=1; authsome-ui-${PORT}=abc; b=2`), PORT)).toBe('abc');
    expect(readCookie(c(`authsome-ui-${PORT + 1}=abc`), PORT)).toBeUndefined();
    expect(outcome(() => readCookie(c(`authsome-ui-${PORT}=a; authsome-ui-${PORT}=b`), PORT))).toBe(
      'ERR_AUTH_FORBIDDEN',
    );
    expect(
      outcome(() =>
        readCookie(
          req('GET', [host, ['Cookie', `authsome-ui-${PORT}=a`], ['Cookie', `authsome-ui-${PORT}=b`]]),
          PORT,
        ),
      ),
    ).toBe('ERR_AUTH_FORBIDDEN');
  });

  it('the cookie is HttpOnly, SameSite=Strict, Path=/ui; the CSP allows no inline script or style', () => {
    expect(sessionCookie(PORT, 'v', 43_200)).toBe(
      `authsome-ui-${PORT}=v; Path=/ui; Max-Age=43200; HttpOnly; SameSite=Strict`,
    );
    expect(CSP).toContain("script-src 'self'");
    expect(CSP).toContain("frame-ancestors 'none'");
    expect(CSP).not.toContain('unsafe');
  });

  it('only /ui targets are the dashboard (the PoP-signed API keeps everything else)', () => {
    for (const t of ['/ui', '/ui/', '/ui/api/me', '/ui?x']) expect(isUiTarget(t), t).toBe(true);
    for (const t of ['/uix', '/v1/status', '/', 'http://127.0.0.1/ui/', '//ui/', undefined])
      expect(isUiTarget(t), String(t)).toBe(false);
  });
});
