import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { AdvEnv, HOST, SECRETS } from '../adversarial/env.js';
import { statusOf } from '../adversarial/wire.js';
import { findCanary } from '../helpers/canary.js';
import { hasChromium, launchChromium, sayIfSkipped, type Browser } from '../helpers/browser.js';

/** The few browser globals the page functions below touch (this file is compiled for Node). */
interface PageGlobals {
  document: {
    cookie: string;
    documentElement: { scrollWidth: number };
    body: { appendChild(n: unknown): void };
    createElement(tag: string): {
      method: string;
      action: string;
      enctype: string;
      name: string;
      value: string;
      appendChild(n: unknown): void;
      submit(): void;
    };
  };
  __kept?: string;
}

/**
 * Issue 17 from outside: the real daemon (built CLI, canary secrets, an echo upstream behind pins)
 * and Debian's Chromium. "me" is the owner who opens the dashboard; "other" is an agent profile.
 * Screenshots of each view go to docs/dashboard/ when UPDATE_SCREENSHOTS=1.
 */
sayIfSkipped();
const SHOTS =
  process.env['UPDATE_SCREENSHOTS'] === '1'
    ? resolve(import.meta.dirname, '../../docs/dashboard')
    : undefined;
const T = 20_000; // generous waits: two cores shared with other work

interface Http {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

describe.skipIf(!hasChromium)('the dashboard in a real browser (issue 17, SPEC 11)', () => {
  let e: AdvEnv;
  let browser: Browser;
  let page: Page;
  let evil: Server;
  let evilPort = 0;
  let cp = 0;
  /** Everything the browser and our own clients received from the dashboard, scanned for canaries. */
  const received: string[] = [];
  /** Each response's URL and headers, taken as it arrives (a closed page's responses cannot be asked later). */
  const responses: Array<Promise<{ url: string; headers: Record<string, string> }>> = [];
  const bodies: Array<Promise<string | undefined>> = [];
  let sse: { text: () => string; close: () => void } | undefined;

  /** One request to the control port with any Host (node:http, so nothing is added or checked). */
  const http = (
    path: string,
    o: { method?: string; headers?: Record<string, string>; body?: string } = {},
  ): Promise<Http> =>
    new Promise((ok, fail) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: cp,
          path,
          method: o.method ?? 'GET',
          headers: { host: `127.0.0.1:${cp}`, ...o.headers },
        },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString('utf8')));
          res.on('end', () => {
            received.push(body);
            ok({ status: res.statusCode ?? 0, headers: res.headers, body });
          });
        },
      );
      req.on('error', fail);
      req.end(o.body);
    });
  const cookieOf = async (): Promise<string> => {
    const c = (await browser.context.cookies(`http://127.0.0.1:${cp}/ui/`)).find(
      (x) => x.name === `authsome-ui-${cp}`,
    );
    if (!c) throw new Error('no dashboard cookie in the browser');
    return `${c.name}=${c.value}`;
  };
  const ui = async (...args: string[]): Promise<string> => {
    const r = await e.cli(['ui', ...args]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.endsWith('\n')).toBe(true);
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(1); // exactly one line on stdout
    return r.stdout.trimEnd();
  };
  const shot = async (name: string): Promise<void> => {
    if (!SHOTS) return;
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `${name}.png`) });
  };
  const view = async (tab: string, heading: string | RegExp): Promise<void> => {
    await page.getByRole('link', { name: new RegExp(`^${tab}`) }).click();
    await page.getByRole('heading', { level: 2, name: heading }).waitFor({ timeout: T });
  };
  /** One request of `profile` through the proxy (CONNECT + TLS + one request), its raw answer. */
  const send = (method: string, path: string, who: 'me' | 'other' = 'me', body = ''): Promise<string> =>
    e.wire.exchange(
      `${HOST.api}:443`,
      `${method} ${path} HTTP/1.1\r\nHost: ${HOST.api}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      { auth: who === 'me' ? e.auth() : e.auth('other', e.tokens.other), ca: e.localCa, ms: 30_000 },
    );
  const marker = () => `m${randomBytes(5).toString('hex')}`;

  beforeAll(async () => {
    e = await AdvEnv.start();
    cp = e.controlPort;
    evil = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>evil</title><p>another site</p>');
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    evilPort = (evil.address() as AddressInfo).port;
    browser = await launchChromium({ hostRules: ['MAP rebind.test 127.0.0.1', 'MAP evil.test 127.0.0.1'] });
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    // Every response of the daemon, and its body read at once (the live stream is read by our own client).
    browser.context.on('response', (r) => {
      const u = new URL(r.url());
      if (u.port !== String(cp)) return;
      responses.push(r.allHeaders().then((headers) => ({ url: r.url(), headers })));
      // Answers to the other origins' pages are not theirs to read (ORB): the same requests are sent and
      // read from here in that test. The live stream is read by our own client.
      let asker: string;
      try {
        asker = new URL(r.frame().url()).port;
      } catch {
        asker = '';
      }
      if (u.pathname !== '/ui/api/events' && asker === String(cp))
        bodies.push(
          Promise.race([
            r.body().then(
              (b) => void received.push(b.toString('latin1')),
              () => undefined,
            ),
            new Promise<string>((ok) => setTimeout(() => ok(r.url()), 5_000)),
          ]),
        );
    });
  }, 180_000);

  afterAll(async () => {
    sse?.close();
    await browser?.close();
    await new Promise((r) => evil?.close(r));
    await e?.stop();
  });

  it('`authsome ui` prints one line; the link logs the browser in once, and leaves no token in the URL', async () => {
    const json = JSON.parse(await ui('--json')) as { url: string; expires: string };
    expect(Object.keys(json).sort()).toEqual(['expires', 'url']);
    expect(Date.parse(json.expires) - Date.now()).toBeLessThanOrEqual(60_000);
    const url = await ui();
    expect(url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${cp}/ui/login#token=[A-Za-z0-9_-]{43}$`));
    await page.goto(url);
    await page.getByRole('heading', { name: 'Audit timeline' }).waitFor({ timeout: T });
    await page.getByText('live', { exact: true }).waitFor({ timeout: T });
    expect(page.url()).toBe(`http://127.0.0.1:${cp}/ui/`);
    const [cookie] = (await browser.context.cookies()).filter((c) => c.name === `authsome-ui-${cp}`);
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/ui', domain: '127.0.0.1' });
    expect(cookie!.expires * 1000 - Date.now()).toBeGreaterThan(11.9 * 3_600_000);
    expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).document.cookie)).toBe(''); // HttpOnly: scripts cannot read it
    // The same link again, in a browser without the cookie: refused, and says what to do.
    const second = await browser.context.newPage();
    await browser.context.clearCookies();
    await second.goto(url);
    await second.getByText('already used or expired').waitFor({ timeout: T });
    await second.getByText('authsome ui', { exact: true }).first().waitFor();
    await second.close();
    // Log in again for what follows (a fresh link).
    await page.goto(await ui());
    await page.getByRole('heading', { name: 'Audit timeline' }).waitFor({ timeout: T });
    // A stream of our own, read to the end of the suite and scanned for canaries.
    const c = await cookieOf();
    sse = await new Promise((ok, fail) => {
      const chunks: string[] = [];
      const req = request(
        {
          host: '127.0.0.1',
          port: cp,
          path: '/ui/api/events',
          headers: { host: `127.0.0.1:${cp}`, cookie: c },
        },
        (res) => {
          expect(res.statusCode).toBe(200);
          expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
          res.on('data', (d: Buffer) => chunks.push(d.toString('utf8')));
          ok({ text: () => chunks.join(''), close: () => req.destroy() });
        },
      );
      req.on('error', fail);
      req.end();
    });
  }, 60_000);

  it('an expired link is refused', async () => {
    const { url, expires } = JSON.parse(await ui('--ttl', '1s', '--json')) as {
      url: string;
      expires: string;
    };
    await expect.poll(() => Date.now() > Date.parse(expires) + 100, { timeout: 5_000 }).toBe(true);
    const token = new URL(url).hash.replace('#token=', '');
    const r = await http('/ui/api/login', {
      method: 'POST',
      headers: { origin: `http://127.0.0.1:${cp}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    });
    expect(r.status).toBe(401);
    expect(r.headers['x-authsome-error']).toBe('ERR_UI_SESSION_INVALID');
    expect(r.headers['set-cookie']).toBeUndefined();
  });

  it('a request through the proxy appears in the timeline as it happens, without a reload', async () => {
    await page.evaluate(() => ((globalThis as unknown as PageGlobals).__kept = 'same page'));
    const m = marker();
    const r = await send('GET', `/live/${m}`);
    expect(statusOf(r)).toBe(200);
    const row = page.locator('tr[data-event="proxy.inject"]', { hasText: `/live/${m}` });
    await row.waitFor({ timeout: T });
    await expect.poll(() => row.textContent()).toContain('canaryco / personal');
    expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).__kept)).toBe('same page');
    // The chart follows too: the injected requests of this hour, per provider, as they happen.
    const before = Number(
      (await page.locator('.legend li', { hasText: 'canaryco' }).textContent())?.match(/\d+$/)?.[0],
    );
    for (let i = 0; i < 6; i++) expect(statusOf(await send('GET', `/chart/${i}`))).toBe(200);
    await page
      .locator('.legend li', { hasText: new RegExp(`^canaryco ${before + 6}$`) })
      .waitFor({ timeout: T });
    expect(await page.locator('.chart svg rect').count()).toBeGreaterThan(0);
    await page.locator('.badge.ok', { hasText: 'chain intact' }).waitFor({ timeout: T });
    await shot('timeline');
  }, 60_000);

  it('connections show metadata and their last use, never a secret', async () => {
    await view('Connections', 'Connections of me');
    const row = page.locator('tr[data-connection="canaryco/personal"]');
    await row.waitFor({ timeout: T });
    await expect.poll(() => row.textContent()).toMatch(/default/);
    await expect
      .poll(() => row.locator('td[data-label="last used"]').textContent(), { timeout: T })
      .toMatch(/ago$/);
    await expect
      .poll(() => page.locator('tr[data-connection="canaryco/work"]').textContent())
      .toContain('never');
    await shot('connections');
  });

  it('an approval clicked in the page releases the held request, and its caller gets the response', async () => {
    const f = join(e.t.dir, 'ui-policy.json');
    writeFileSync(
      f,
      JSON.stringify({
        default: 'allow',
        rules: [
          { provider: 'canaryco', methods: ['POST'], path: '/repos/acme/*/pulls/**', action: 'approve' },
        ],
      }),
    );
    await e.ok(['policy', 'set', 'other', f]);
    await view('Approvals', 'Waiting for approval');
    await page.getByText('Nothing is waiting').waitFor({ timeout: T });
    const m = marker();
    const pending = send('POST', `/repos/acme/${m}/pulls/1`, 'other', '{"title":"x"}');
    const card = page.locator('li[data-approval]', { hasText: `/repos/acme/${m}/pulls/1` });
    await card.waitFor({ timeout: T });
    expect(await card.textContent()).toContain('other');
    await page.locator('.tabs .count', { hasText: '1' }).waitFor({ timeout: T });
    await shot('approvals');
    await card.getByRole('button', { name: 'Approve' }).click();
    const r = await pending;
    expect(statusOf(r)).toBe(200);
    expect(e.origin.https.seen.text().split(m).length - 1).toBe(1);
    await card.waitFor({ state: 'detached', timeout: T });
    // And a rejection: the caller gets 403 ERR_POLICY_APPROVAL_REJECTED, nothing upstream.
    const m2 = marker();
    const pending2 = send('POST', `/repos/acme/${m2}/pulls/2`, 'other', '{}');
    const card2 = page.locator('li[data-approval]', { hasText: m2 });
    await card2.waitFor({ timeout: T });
    await card2.getByRole('button', { name: 'Reject' }).click();
    const r2 = await pending2;
    expect(statusOf(r2)).toBe(403);
    expect(r2).toMatch(/x-authsome-error: ERR_POLICY_APPROVAL_REJECTED/i);
    expect(e.origin.https.seen.text()).not.toContain(m2);
  }, 90_000);

  it('policies are shown, and a URL is checked against them', async () => {
    await view('Policies', 'Policies');
    await page
      .locator('article.policy', { hasText: 'other' })
      .getByText('/repos/acme/*/pulls/**')
      .waitFor({ timeout: T });
    await page.getByLabel('profile').selectOption('other');
    await page.getByLabel('method').selectOption('POST');
    await page.getByLabel('URL').fill(`https://${HOST.api}/repos/acme/x/pulls/3`);
    await page.getByRole('button', { name: 'Check' }).click();
    await page.locator('.check-result', { hasText: 'rules[0] holds it' }).waitFor({ timeout: T });
    await shot('policies');
  });

  it('revoking a session in the page makes its next proxied request get 407', async () => {
    const minted = JSON.parse(await e.ok(['proxy', 'env', '--json'])) as {
      id: string;
      env: Record<string, string>;
    };
    const token = decodeURIComponent(new URL(minted.env['HTTPS_PROXY']!).password);
    const auth = e.basic('me', token);
    const before = await e.wire.connect(`${HOST.api}:443`, [`Proxy-Authorization: ${auth}`]);
    before.socket.destroy();
    expect(before.status).toBe(200);
    await view('Sessions', 'Proxy sessions of me');
    const row = page.locator(`tr[data-session="${minted.id}"]`);
    await row.waitFor({ timeout: T });
    await shot('sessions');
    await row.getByRole('button', { name: `Revoke session ${minted.id}` }).click();
    await row.waitFor({ state: 'detached', timeout: T });
    const after = await e.wire.connect(`${HOST.api}:443`, [`Proxy-Authorization: ${auth}`]);
    after.socket.destroy();
    expect(after.status).toBe(407);
  });

  it("doctor's daemon-side checks run in the page", async () => {
    await view('Checks', 'Checks');
    for (const id of ['daemon', 'store', 'modes', 'ca', 'audit', 'policy'])
      await page.locator(`li[data-check="${id}"].pass`).waitFor({ timeout: T });
    await shot('checks');
  });

  it('is readable at 400 px wide', async () => {
    await page.setViewportSize({ width: 400, height: 860 });
    await view('Timeline', 'Audit timeline');
    const width = await page.evaluate(
      () => (globalThis as unknown as PageGlobals).document.documentElement.scrollWidth,
    );
    expect(width).toBeLessThanOrEqual(400); // no sideways scrolling
    await shot('narrow');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('every page, script and API response carries the headers, and no CORS header', async () => {
    const seen = (await Promise.all(responses)).filter((r) => new URL(r.url).pathname.startsWith('/ui'));
    expect(seen.some((r) => r.url.includes('/ui/assets/') && r.url.endsWith('.js'))).toBe(true);
    expect(seen.some((r) => new URL(r.url).pathname.startsWith('/ui/api/'))).toBe(true);
    for (const { url, headers: h } of seen) {
      expect(h['content-security-policy'], url).toBe(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
      );
      expect(h['x-frame-options']).toBe('DENY');
      expect(h['x-content-type-options']).toBe('nosniff');
      expect(Object.keys(h).filter((k) => k.startsWith('access-control-'))).toEqual([]);
      if (new URL(url).pathname.startsWith('/ui/api/')) expect(h['cache-control'], url).toBe('no-store');
    }
    const html = await http('/ui/');
    expect(html.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(html.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i); // no inline script
    expect(html.body).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i); // no inline style or handler
    const js = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(html.body)![1]!;
    expect((await http(js)).headers['content-type']).toBe('text/javascript; charset=utf-8');
  });

  it('a wrong Host is refused: a rebinding name in the browser, and a foreign Host header', async () => {
    const p = await browser.context.newPage();
    const r = await p.goto(`http://rebind.test:${cp}/ui/`);
    expect(r?.status()).toBe(403);
    expect(await p.textContent('body')).toContain('foreign Host header refused');
    await p.close();
    const cookie = await cookieOf();
    for (const host of [`evil.test:${cp}`, `127.0.0.1:${cp + 1}`, `localhost.:${cp}`]) {
      const x = await http('/ui/api/me', { headers: { host, cookie } });
      expect(x.status, host).toBe(403);
      expect(x.body).not.toContain('csrf');
    }
    expect((await http('/ui/api/me', { headers: { host: `localhost:${cp}`, cookie } })).status).toBe(200);
  });

  for (const kind of ['same-site (127.0.0.1, another port)', 'cross-site (evil.test)'])
    it(`a page from another origin, ${kind}, can neither read the API nor act`, async () => {
      const cookie = await cookieOf();
      const me = JSON.parse((await http('/ui/api/me', { headers: { cookie } })).body) as { csrf: string };
      const victim = JSON.parse(await e.ok(['proxy', 'env', '--json'])) as { id: string };
      const origin = kind.startsWith('same')
        ? `http://127.0.0.1:${evilPort}`
        : `http://evil.test:${evilPort}`;
      const p = await browser.context.newPage();
      const refused: number[] = [];
      p.on('response', (r) => {
        if (new URL(r.url()).port === String(cp)) refused.push(r.status());
      });
      await p.goto(`${origin}/`);
      const api = `http://127.0.0.1:${cp}`;
      const outcome = await p.evaluate(
        async ({ api, id, csrf }) => {
          const tryIt = async (f: () => Promise<Response>): Promise<string> => {
            try {
              const r = await f();
              return `${r.type}:${r.status}:${await r.text().catch(() => '')}`;
            } catch (err) {
              return (err as Error).name;
            }
          };
          return {
            // A credentialed read: refused by the daemon, and unreadable anyway (no CORS headers).
            read: await tryIt(() => fetch(`${api}/ui/api/me`, { credentials: 'include' })),
            events: await tryIt(() => fetch(`${api}/ui/api/audit`, { credentials: 'include', mode: 'cors' })),
            // Writes a page can send without CORS (no-cors, text/plain), and one with a stolen-looking token.
            revoke: await tryIt(() =>
              fetch(`${api}/ui/api/sessions/${id}/revoke`, {
                method: 'POST',
                mode: 'no-cors',
                credentials: 'include',
                body: '{}',
              }),
            ),
            revokeJson: await tryIt(() =>
              fetch(`${api}/ui/api/sessions/${id}/revoke`, {
                method: 'POST',
                credentials: 'include',
                headers: { 'content-type': 'application/json', 'x-authsome-csrf': csrf },
                body: '{}',
              }),
            ),
          };
        },
        { api, id: victim.id, csrf: me.csrf },
      );
      expect(outcome.read).toBe('TypeError');
      expect(outcome.events).toBe('TypeError');
      // Sent, and refused below; the browser shows the page nothing (opaque, or an error where ORB blocks it).
      expect(['opaque:0:', 'TypeError']).toContain(outcome.revoke);
      expect(outcome.revokeJson).toBe('TypeError');
      // A classic form post (navigates to the daemon's answer).
      const nav = p.waitForNavigation({ timeout: T });
      await p.evaluate(
        ({ api, id }) => {
          const document = (globalThis as unknown as PageGlobals).document;
          const f = document.createElement('form');
          f.method = 'POST';
          f.action = `${api}/ui/api/sessions/${id}/revoke`;
          f.enctype = 'text/plain';
          const i = document.createElement('input');
          i.name = '{"x":"';
          i.value = '"}';
          f.appendChild(i);
          document.body.appendChild(f);
          f.submit();
        },
        { api, id: victim.id },
      );
      expect((await nav)?.status()).toBe(403);
      await p.close();
      // What the browser let us see of the daemon's answers: refusals only.
      expect(refused.length).toBeGreaterThanOrEqual(1);
      expect(refused.every((s) => s === 403)).toBe(true);
      // The same requests as the browser sent them, seen from here: the daemon refuses each one.
      const site = origin.includes('evil.test') ? 'cross-site' : 'same-site';
      for (const [method, path, extra] of [
        ['GET', '/ui/api/me', {}],
        ['GET', '/ui/api/audit', {}],
        ['POST', `/ui/api/sessions/${victim.id}/revoke`, { 'content-type': 'text/plain' }],
        [
          'POST',
          `/ui/api/sessions/${victim.id}/revoke`,
          { 'content-type': 'application/json', 'x-authsome-csrf': me.csrf },
        ],
        ['OPTIONS', `/ui/api/sessions/${victim.id}/revoke`, { 'access-control-request-method': 'POST' }],
      ] as const) {
        const x = await http(path, {
          method,
          headers: { cookie, origin, 'sec-fetch-site': site, 'sec-fetch-mode': 'cors', ...extra },
          ...(method === 'POST' ? { body: '{}' } : {}),
        });
        expect(x.status, `${method} ${path}`).toBe(403);
        expect(Object.keys(x.headers).filter((k) => k.startsWith('access-control-'))).toEqual([]);
        expect(x.body).not.toContain(me.csrf);
      }
      // Nothing changed: the proxy session lives, and so does the dashboard session.
      const sessions = JSON.parse((await http('/ui/api/sessions', { headers: { cookie } })).body) as {
        sessions: Array<{ id: string }>;
      };
      expect(sessions.sessions.map((s) => s.id)).toContain(victim.id);
    });

  it('the page itself cannot act without its CSRF token, or with another one', async () => {
    const victim = JSON.parse(await e.ok(['proxy', 'env', '--json'])) as { id: string };
    const codes = await page.evaluate(async (id) => {
      const post = (headers: Record<string, string>) =>
        fetch(`/ui/api/sessions/${id}/revoke`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: '{}',
        }).then(
          async (r) =>
            `${r.status} ${r.headers.get('x-authsome-error')}${(await r.text()) ? '' : ' (no body)'}`,
        );
      return [
        await post({}),
        await post({ 'x-authsome-csrf': 'A'.repeat(43) }),
        await post({ 'x-authsome-csrf': '' }),
      ];
    }, victim.id);
    expect(codes).toEqual(Array(3).fill('403 ERR_AUTH_FORBIDDEN'));
    const cookie = await cookieOf();
    // Without an Origin (what a non-browser client sends), also refused: changes need it.
    const me = JSON.parse((await http('/ui/api/me', { headers: { cookie } })).body) as { csrf: string };
    const noOrigin = await http(`/ui/api/sessions/${victim.id}/revoke`, {
      method: 'POST',
      headers: { cookie, 'x-authsome-csrf': me.csrf, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(noOrigin.status).toBe(403);
    const ids = (
      JSON.parse((await http('/ui/api/sessions', { headers: { cookie } })).body) as {
        sessions: Array<{ id: string }>;
      }
    ).sessions.map((s) => s.id);
    expect(ids).toContain(victim.id);
  });

  it('nothing the browser or the API gave out holds a secret', async () => {
    const cookie = await cookieOf();
    for (const path of [
      '/ui/api/me',
      '/ui/api/audit?limit=1000',
      '/ui/api/audit/facets',
      '/ui/api/audit/verify',
      '/ui/api/chart?minutes=60',
      '/ui/api/connections',
      '/ui/api/sessions',
      '/ui/api/approvals',
      '/ui/api/policies',
      '/ui/api/doctor',
    ])
      expect((await http(path, { headers: { cookie } })).status, path).toBe(200);
    const unread = (await Promise.all(bodies)).filter((u) => u !== undefined);
    expect(unread).toEqual([]);
    expect(bodies.length).toBeGreaterThan(20);
    received.push(sse?.text() ?? '');
    expect(sse?.text()).toContain('event: audit');
    const hits: string[] = [];
    for (const [name, secret] of Object.entries(SECRETS))
      for (const text of received) {
        const form = findCanary(text, secret);
        if (form !== undefined) hits.push(`${name} as ${form.slice(0, 12)}…`);
      }
    expect(hits).toEqual([]);
    expect(e.leaks()).toEqual([]);
  });

  it('logout ends the session and its live stream', async () => {
    const cookie = await cookieOf();
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByText('You logged out of the dashboard.').waitFor({ timeout: T });
    expect((await http('/ui/api/me', { headers: { cookie } })).status).toBe(401);
    await expect.poll(() => sse?.text() ?? '', { timeout: T }).toContain('"reason":"logout"');
  });

  it('a session ends when the daemon that issued it stops', async () => {
    await page.goto(await ui());
    await page.getByRole('heading', { name: 'Audit timeline' }).waitFor({ timeout: T });
    const cookie = await cookieOf();
    expect((await http('/ui/api/me', { headers: { cookie } })).status).toBe(200);
    await e.ok(['daemon', 'stop']);
    await page.getByText('The daemon stopped').waitFor({ timeout: T });
    await e.ok(['daemon', 'start']);
    const after = await http('/ui/api/me', { headers: { cookie } });
    expect(after.status).toBe(401);
    expect(after.headers['x-authsome-error']).toBe('ERR_UI_SESSION_INVALID');
  }, 60_000);
});
