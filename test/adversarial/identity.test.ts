import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readIdentityKey, signPop } from '../../src/identity/index.js';
import { AdvEnv, HOST, SECRETS } from './env.js';
import { attackerKey, call, claims, forge, hs256, unsigned, type Answer } from './pop-forge.js';
import { bodyOf, errorOf, statusOf } from './wire.js';

/**
 * Issue 6 item 5, against the real daemon: session tokens at the proxy and PoP tokens at the control
 * API are refused in every wrong shape, and "does not exist" and "not yours" get the same answer.
 */
let e: AdvEnv;
let me: KeyObject;
let other: KeyObject;
beforeAll(async () => {
  e = await AdvEnv.start();
  me = await readIdentityKey(join(e.t.home, 'client', 'identities', 'me.key'));
  other = await readIdentityKey(join(e.t.home, 'client', 'identities', 'other.key'));
}, 90_000);
afterAll(async () => {
  await e?.stop();
});

const API = `${HOST.api}:443`;
const inTunnel = (auth: string, extra: string[] = [], host: string = HOST.api): Promise<string> =>
  e.wire
    .exchange(
      `${host}:443`,
      `GET /inspect HTTP/1.1\nHost: ${host}\n${extra.map((l) => `${l}\n`).join('')}Connection: close\n\n`,
      { auth, ca: e.localCa },
    )
    .catch((err: Error) => err.message);
const connectAnswer = async (auth: string): Promise<{ status: number; body: string }> => {
  const c = await e.wire.connect(API, [`Proxy-Authorization: ${auth}`]);
  const body = await e.wire.all(c.socket);
  c.socket.destroy();
  return { status: c.status, body: c.rest.toString('latin1') + body };
};

describe('session tokens at the proxy', () => {
  it('wrong, another profile’s, revoked and expired tokens all get the same 407', async () => {
    const revoked = JSON.parse(await e.ok(['proxy', 'env', '--json'])) as {
      id: string;
      env: Record<string, string>;
    };
    await e.ok(['proxy', 'revoke', revoked.id]);
    const expired = await e.mint(['proxy', 'env', '--ttl', '1s']);
    await new Promise((r) => setTimeout(r, 1300));
    const answers = [
      await connectAnswer(e.basic('me', 'A'.repeat(43))),
      await connectAnswer(e.basic('me', e.tokens.other)),
      await connectAnswer(e.basic('other', e.tokens.me)),
      await connectAnswer(e.basic('nobody', e.tokens.me)),
      await connectAnswer(e.basic('me', decodeURIComponent(new URL(revoked.env['HTTPS_PROXY']!).password))),
      await connectAnswer(e.basic('me', expired)),
      await connectAnswer(e.basic('me', `${e.tokens.me}x`)),
    ];
    for (const a of answers) expect(a.status).toBe(407);
    expect(new Set(answers.map((a) => a.body)).size).toBe(1);
    expect(answers[0]!.body).toMatch(/ERR_SESSION_INVALID/);
  });

  it('the profile comes from the token only: a handle header changes nothing', async () => {
    const r = await inTunnel(e.auth('other', e.tokens.other), [
      'X-Authsome-Profile: me',
      'X-Authsome-Connection: work',
    ]);
    expect(statusOf(r)).toBe(403);
    const ok = await inTunnel(e.auth('other', e.tokens.other), ['X-Authsome-Profile: me']);
    expect(JSON.parse(bodyOf(ok))).toMatchObject({ injected: 1, authsome: 0 });
    expect(e.origin.https.seen.text()).toContain(`Bearer ${SECRETS.other}`);
    expect(e.origin.https.seen.text()).not.toMatch(/x-authsome-profile/i);
  });

  it('another profile’s connection and a missing one get the same 403', async () => {
    const norm = (r: string): string => errorOf(r).body.replace(/\b(work|nope)\b/g, 'X');
    const theirs = await inTunnel(e.auth('other', e.tokens.other), ['X-Authsome-Connection: work']);
    const missing = await inTunnel(e.auth('other', e.tokens.other), ['X-Authsome-Connection: nope']);
    expect(errorOf(theirs)).toMatchObject({ status: 403, code: 'ERR_PROXY_CONNECTION_DENIED' });
    expect(norm(theirs)).toBe(norm(missing));
    // The refusal names what this session may use: its own profile's connections, never another's.
    expect(errorOf(missing).body).toContain('this session may use: otherconn');
    expect(errorOf(missing).body).not.toMatch(/personal|\bwork\b/);
    // ...and other's own default is its own secret.
    expect(JSON.parse(bodyOf(await inTunnel(e.auth('other', e.tokens.other))))).toMatchObject({
      injected: 1,
    });
  });

  it('an --allow-limited token reaches only what it allows, with the same 403 otherwise', async () => {
    const lim = e.auth('me', e.tokens.limited);
    expect(statusOf(await inTunnel(lim, ['X-Authsome-Connection: work']))).toBe(200);
    const norm = (r: string): string => errorOf(r).body.replace(/\b(personal|nope)\b/g, 'X');
    const notAllowed = await inTunnel(lim, ['X-Authsome-Connection: personal']);
    const missing = await inTunnel(lim, ['X-Authsome-Connection: nope']);
    expect(errorOf(notAllowed)).toMatchObject({ status: 403, code: 'ERR_PROXY_CONNECTION_DENIED' });
    expect(norm(notAllowed)).toBe(norm(missing));
    expect(errorOf(missing).body).toContain('this session may use: work (');
    expect(statusOf(await inTunnel(lim))).toBe(403); // the default (personal) is outside --allow
    expect(statusOf(await inTunnel(lim, [], HOST.keys))).toBe(403);
  });
});

describe('PoP tokens at the control API', () => {
  const url = (path: string): string => `http://127.0.0.1:${e.controlPort}${path}`;
  const status = (): string => url('/v1/status');
  const pop = (t: string): string => `PoP ${t}`;
  let refusal: Answer | undefined;
  const refused = async (a: Promise<Answer>): Promise<void> => {
    const got = await a;
    expect(got.status).toBe(401);
    refusal ??= got;
    expect(got.body).toBe(refusal.body); // one answer for every reason
  };

  it('a real token works once (so every refusal below means something)', async () => {
    const t = await signPop({ key: me, handle: 'me', method: 'GET', url: status(), body: undefined });
    expect((await call(e.controlPort, 'GET', '/v1/status', pop(t))).status).toBe(200);
    await refused(call(e.controlPort, 'GET', '/v1/status', pop(t))); // replay
  });

  it('alg none, HS256 keyed with the public key, an embedded key', async () => {
    const c = claims({ sub: 'me', method: 'GET', url: status() });
    await refused(call(e.controlPort, 'GET', '/v1/status', pop(unsigned(c))));
    const x = Buffer.from((me.export({ format: 'jwk' }) as { x: string }).x, 'base64url');
    await refused(
      call(
        e.controlPort,
        'GET',
        '/v1/status',
        pop(hs256(claims({ sub: 'me', method: 'GET', url: status() }), x)),
      ),
    );
    const a = attackerKey();
    for (const header of [
      { alg: 'EdDSA', typ: 'authsome-pop+jwt', jwk: a.jwk },
      { alg: 'EdDSA', typ: 'authsome-pop+jwt', kid: 'me' },
      { alg: 'EdDSA', typ: 'JWT' },
      { alg: 'Ed25519', typ: 'authsome-pop+jwt' },
    ]) {
      const t = forge(claims({ sub: 'me', method: 'GET', url: status() }), a.privateKey, header);
      await refused(call(e.controlPort, 'GET', '/v1/status', pop(t)));
    }
  });

  it('wrong sub: my key claiming another profile, an unknown one, an invalid one', async () => {
    for (const sub of ['other', 'nobody', 'ME', '../me']) {
      await refused(
        call(
          e.controlPort,
          'GET',
          '/v1/status',
          pop(forge(claims({ sub, method: 'GET', url: status() }), me)),
        ),
      );
    }
  });

  it('expired, too old, from the future, too long-lived', async () => {
    const now = Date.now() / 1000;
    const mk = (o: Partial<ReturnType<typeof claims>>): string =>
      pop(forge({ ...claims({ sub: 'me', method: 'GET', url: status() }), ...o }, me));
    await refused(call(e.controlPort, 'GET', '/v1/status', mk({ iat: now - 120, exp: now - 60 })));
    await refused(call(e.controlPort, 'GET', '/v1/status', mk({ iat: now - 61, exp: now + 1 })));
    await refused(call(e.controlPort, 'GET', '/v1/status', mk({ iat: now + 60, exp: now + 120 })));
    await refused(call(e.controlPort, 'GET', '/v1/status', mk({ iat: now, exp: now + 3600 })));
  });

  it('wrong htm, htu (path, host, port, query) or body', async () => {
    const t = async (method: string, u: string, body?: string): Promise<string> =>
      pop(await signPop({ key: me, handle: 'me', method, url: u, body }));
    await refused(call(e.controlPort, 'GET', '/v1/status', await t('POST', status())));
    await refused(call(e.controlPort, 'GET', '/v1/status', await t('GET', url('/v1/profiles'))));
    await refused(
      call(e.controlPort, 'GET', '/v1/status', await t('GET', `http://localhost:${e.controlPort}/v1/status`)),
    );
    await refused(
      call(
        e.controlPort,
        'GET',
        '/v1/status',
        await t('GET', `http://127.0.0.1:${e.controlPort + 1}/v1/status`),
      ),
    );
    await refused(call(e.controlPort, 'GET', '/v1/status?x=1', await t('GET', status())));
    const body = JSON.stringify({ ttl: '1h' });
    await refused(
      call(
        e.controlPort,
        'POST',
        '/v1/sessions',
        await t('POST', url('/v1/sessions'), JSON.stringify({ ttl: '2h' })),
        body,
      ),
    );
  });

  it('any single byte flipped is refused', async () => {
    const t = await signPop({ key: me, handle: 'me', method: 'GET', url: status(), body: undefined });
    const positions = [
      0,
      5,
      t.indexOf('.') - 1,
      t.indexOf('.') + 3,
      t.lastIndexOf('.') - 2,
      t.lastIndexOf('.') + 1,
      t.length - 1,
    ];
    for (const i of positions) {
      for (const mask of [1, 32]) {
        const ch = t.charCodeAt(i) ^ mask;
        // '-' ^ 32 is CR and '_' ^ 32 is DEL: no HTTP client can send those in a header (the
        // verifier's own every-position flip test in test/unit/identity/pop.test.ts covers them).
        if (ch < 0x20 || ch === 0x7f) continue;
        const flipped = t.slice(0, i) + String.fromCharCode(ch) + t.slice(i + 1);
        if (flipped === t) continue;
        const a = await call(e.controlPort, 'GET', '/v1/status', pop(flipped));
        expect(a.status, `byte ${i} ^ ${mask}`).toBe(401);
      }
    }
    // The untouched token is still good: the refusals were about the flips, not a spent jti.
    expect((await call(e.controlPort, 'GET', '/v1/status', pop(t))).status).toBe(200);
  });

  it('missing, other schemes, two Authorization headers', async () => {
    const t = await signPop({ key: me, handle: 'me', method: 'GET', url: status(), body: undefined });
    for (const auth of [undefined, `Bearer ${t}`, `PoP  ${t}`, `PoP ${t} x`, 'PoP']) {
      const a = await call(e.controlPort, 'GET', '/v1/status', auth);
      expect(a.status, String(auth)).toBe(401);
    }
  });

  it('replays are refused across a daemon restart, and tokens made before it too', async () => {
    const used = await signPop({ key: me, handle: 'me', method: 'GET', url: status(), body: undefined });
    expect((await call(e.controlPort, 'GET', '/v1/status', pop(used))).status).toBe(200);
    const unused = await signPop({ key: me, handle: 'me', method: 'GET', url: status(), body: undefined });
    await e.ok(['daemon', 'stop']);
    await e.ok(['daemon', 'start']);
    await refused(call(e.controlPort, 'GET', '/v1/status', pop(used)));
    await refused(call(e.controlPort, 'GET', '/v1/status', pop(unused)));
    const fresh = await signPop({ key: me, handle: 'me', method: 'GET', url: status(), body: undefined });
    expect((await call(e.controlPort, 'GET', '/v1/status', pop(fresh))).status).toBe(200);
  });
});

describe('not yours looks like not there (control API)', () => {
  const as = async (
    key: KeyObject,
    handle: string,
    method: string,
    path: string,
    body?: object,
  ): Promise<Answer> => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const t = await signPop({
      key,
      handle,
      method,
      url: `http://127.0.0.1:${e.controlPort}${path}`,
      body: text,
    });
    return call(e.controlPort, method, path, `PoP ${t}`, text);
  };
  const same = (a: Answer, b: Answer, names: string[]): void => {
    const norm = (s: string): string => names.reduce((x, n) => x.split(n).join('N'), s);
    expect(a.status).toBe(b.status);
    expect(norm(a.body)).toBe(norm(b.body));
  };

  it('connections: show, remove, make default', async () => {
    same(
      await as(other, 'other', 'GET', '/v1/connections/canaryco/work'),
      await as(other, 'other', 'GET', '/v1/connections/canaryco/nope'),
      ['work', 'nope'],
    );
    same(
      await as(other, 'other', 'DELETE', '/v1/connections/canaryco/work'),
      await as(other, 'other', 'DELETE', '/v1/connections/canaryco/nope'),
      ['work', 'nope'],
    );
    same(
      await as(other, 'other', 'PUT', '/v1/defaults/canaryco', { connection: 'work' }),
      await as(other, 'other', 'PUT', '/v1/defaults/canaryco', { connection: 'nope' }),
      ['work', 'nope'],
    );
    // me's connection survived other's attempts.
    expect((await as(me, 'me', 'GET', '/v1/connections/canaryco/work')).status).toBe(200);
  });

  it('sessions: revoking another profile’s session id looks like a random id', async () => {
    const mine = JSON.parse(await e.ok(['proxy', 'env', '--json'])) as { id: string };
    const a = await as(other, 'other', 'DELETE', `/v1/sessions/${mine.id}`);
    same(a, await as(other, 'other', 'DELETE', '/v1/sessions/0123456789abcdef'), [
      mine.id,
      '0123456789abcdef',
    ]);
    expect(a.status).toBe(404);
    const list = JSON.parse((await as(me, 'me', 'GET', '/v1/sessions')).body) as {
      sessions: Array<{ id: string }>;
    };
    expect(list.sessions.map((s) => s.id)).toContain(mine.id);
  });

  it('profiles: a non-owner deleting an existing profile or a missing one', async () => {
    same(
      await as(other, 'other', 'DELETE', '/v1/profiles/me'),
      await as(other, 'other', 'DELETE', '/v1/profiles/nobody'),
      ['me', 'nobody'],
    );
  });
});

describe('leaks', () => {
  it('no canary reached the caller, the logs, the audit log, the home, the decoy or cleartext', () => {
    expect(e.leaks()).toEqual([]);
  });
});
