import { request, type IncomingMessage } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestHome } from '../helpers/cli.js';
import { findCanary } from '../helpers/canary.js';

/**
 * The dashboard's API without a browser (SPEC 11): a page of a non-owner profile has that profile's
 * rights only, the cookie opens /ui and nothing else, and paths are taken exactly as sent.
 */
const SECRET_ME = 'ghp_CANARYuiapime0123456789abcdef';
const SECRET_AGENT = 'ghp_CANARYuiapiagent0123456789ab';

interface Http {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
  json: Record<string, unknown>;
}

describe('the dashboard API through a real daemon (SPEC 11)', () => {
  const t = new TestHome();
  let port = 0;
  const seen: string[] = [];
  const http = (
    path: string,
    o: { method?: string; headers?: Record<string, string>; body?: string } = {},
  ): Promise<Http> =>
    new Promise((ok, fail) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path,
          method: o.method ?? 'GET',
          headers: { host: `127.0.0.1:${port}`, ...o.headers },
        },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString('utf8')));
          res.on('end', () => {
            seen.push(body);
            let json: Record<string, unknown> = {};
            try {
              json = JSON.parse(body) as Record<string, unknown>;
            } catch {
              // not JSON (the page itself)
            }
            ok({ status: res.statusCode ?? 0, headers: res.headers, body, json });
          });
        },
      );
      req.on('error', fail);
      req.end(o.body);
    });
  /** Logs in with a fresh link of `profile`; returns its cookie and CSRF token. */
  const login = async (profile: string): Promise<{ cookie: string; csrf: string }> => {
    const r = await t.run(['ui', '--profile', profile]);
    expect(r.code, r.stderr).toBe(0);
    const url = new URL(r.stdout.trim());
    port = Number(url.port);
    const x = await http('/ui/api/login', {
      method: 'POST',
      headers: { origin: `http://127.0.0.1:${port}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token: url.hash.slice('#token='.length) }),
    });
    expect(x.status, x.body).toBe(200);
    const cookie = String(x.headers['set-cookie']?.[0]).split(';')[0]!;
    const me = await http('/ui/api/me', { headers: { cookie } });
    return { cookie, csrf: String(me.json['csrf']) };
  };
  const post = (path: string, s: { cookie: string; csrf: string }, body: object = {}) =>
    http(path, {
      method: 'POST',
      headers: {
        cookie: s.cookie,
        origin: `http://127.0.0.1:${port}`,
        'x-authsome-csrf': s.csrf,
        'content-type': 'application/json',
      },
      body: JSON.stringify(body),
    });

  let agent: { cookie: string; csrf: string };
  let owner: { cookie: string; csrf: string };
  let ownerSession = '';

  beforeAll(async () => {
    expect((await t.run(['init', '--profile', 'me'])).code).toBe(0);
    expect((await t.run(['profile', 'create', 'agent'])).code).toBe(0);
    for (const [p, s] of [
      ['me', SECRET_ME],
      ['agent', SECRET_AGENT],
    ] as const) {
      const r = await t.run(['login', 'github', '--connection', `${p}-conn`, '--profile', p], {
        input: `${s}\n`,
      });
      expect(r.code, r.stderr).toBe(0);
    }
    ownerSession = ((await t.json(['proxy', 'env'])) as { id: string }).id;
    await t.json(['proxy', 'env', '--profile', 'agent']);
    const f = join(t.dir, 'p.json');
    writeFileSync(f, JSON.stringify({ default: 'deny', rules: [{ provider: 'github', action: 'allow' }] }));
    expect((await t.run(['policy', 'set', 'me', f])).code).toBe(0);
    agent = await login('agent');
    owner = await login('me');
  });

  afterAll(async () => {
    await t.cleanup();
  });

  it('a non-owner page sees its own connections, sessions, events and policy only', async () => {
    const conns = await http('/ui/api/connections', { headers: { cookie: agent.cookie } });
    expect((conns.json['connections'] as Array<{ connection: string }>).map((c) => c.connection)).toEqual([
      'agent-conn',
    ]);
    const sessions = await http('/ui/api/sessions', { headers: { cookie: agent.cookie } });
    expect((sessions.json['sessions'] as Array<{ id: string }>).map((s) => s.id)).not.toContain(ownerSession);
    const audit = await http('/ui/api/audit?limit=1000', { headers: { cookie: agent.cookie } });
    const profiles = new Set((audit.json['records'] as Array<{ profile: string }>).map((r) => r.profile));
    expect([...profiles]).toEqual(['agent']);
    const asked = await http('/ui/api/audit?profile=me', { headers: { cookie: agent.cookie } });
    expect(asked.json['records']).toEqual([]);
    const facets = await http('/ui/api/audit/facets', { headers: { cookie: agent.cookie } });
    expect(facets.json['profiles']).toEqual(['agent']);
    expect(facets.json['connections']).toEqual(['agent-conn']);
    const policies = await http('/ui/api/policies', { headers: { cookie: agent.cookie } });
    expect((policies.json['policies'] as Array<{ profile: string }>).map((p) => p.profile)).toEqual([
      'agent',
    ]);
    const me = await http('/ui/api/me', { headers: { cookie: agent.cookie } });
    expect(me.json).toMatchObject({ profile: 'agent', owner: false, profiles: ['agent'] });
  });

  it("the owner's page sees every profile's events and policies, and still only its own connections", async () => {
    const audit = await http('/ui/api/audit?limit=1000', { headers: { cookie: owner.cookie } });
    const profiles = new Set((audit.json['records'] as Array<{ profile: string }>).map((r) => r.profile));
    expect(profiles).toEqual(new Set(['-', 'me', 'agent']));
    const policies = await http('/ui/api/policies', { headers: { cookie: owner.cookie } });
    expect((policies.json['policies'] as Array<{ profile: string }>).map((p) => p.profile).sort()).toEqual([
      'agent',
      'me',
    ]);
    const conns = await http('/ui/api/connections', { headers: { cookie: owner.cookie } });
    expect((conns.json['connections'] as Array<{ connection: string }>).map((c) => c.connection)).toEqual([
      'me-conn',
    ]);
  });

  it('a non-owner page cannot answer held requests, read or check another policy, or revoke another session', async () => {
    const approve = await post('/ui/api/approvals/abcdefghijkl/approve', agent);
    expect(approve.status).toBe(403);
    expect(approve.headers['x-authsome-error']).toBe('ERR_AUTH_NOT_OWNER');
    const reject = await post('/ui/api/approvals/abcdefghijkl/reject', agent);
    expect(reject.headers['x-authsome-error']).toBe('ERR_AUTH_NOT_OWNER');
    const check = await post('/ui/api/policies/me/check', agent, {
      method: 'GET',
      url: 'https://api.github.com/',
    });
    expect(check.headers['x-authsome-error']).toBe('ERR_AUTH_NOT_OWNER');
    const revoke = await post(`/ui/api/sessions/${ownerSession}/revoke`, agent);
    expect(revoke.status).toBe(404);
    expect(revoke.headers['x-authsome-error']).toBe('ERR_SESSION_NOT_FOUND');
    const mine = await http('/ui/api/sessions', { headers: { cookie: owner.cookie } });
    expect((mine.json['sessions'] as Array<{ id: string }>).map((s) => s.id)).toContain(ownerSession);
    // Its own policy check works, and says what the policy (none) decides.
    const own = await post('/ui/api/policies/agent/check', agent, {
      method: 'GET',
      url: 'https://api.github.com/user',
    });
    expect(own.status, own.body).toBe(200);
    expect(own.json).toMatchObject({ provider: 'github', action: 'allow' });
  });

  it('the owner checks a URL against a policy, and an unknown approval is not found', async () => {
    const check = await post('/ui/api/policies/me/check', owner, {
      method: 'DELETE',
      url: 'https://api.example.com/x',
    });
    expect(check.status, check.body).toBe(200);
    expect(check.json).toMatchObject({ applies: false, provider: null });
    const approve = await post('/ui/api/approvals/abcdefghijkl/approve', owner, { for: '10m' });
    expect(approve.headers['x-authsome-error']).toBe('ERR_APPROVAL_NOT_FOUND');
    const tooLong = await post('/ui/api/approvals/abcdefghijkl/approve', owner, { for: '3d' });
    expect(tooLong.headers['x-authsome-error']).toBe('ERR_INPUT_INVALID');
  });

  it('the cookie opens /ui only; /ui never takes a PoP token; without a cookie: 401', async () => {
    const v1 = await http('/v1/status', { headers: { cookie: owner.cookie } });
    expect(v1.status).toBe(401);
    expect(v1.headers['x-authsome-error']).toBe('ERR_AUTH_POP_INVALID');
    const none = await http('/ui/api/me', { headers: { authorization: 'PoP x.y.z' } });
    expect(none.status).toBe(401);
    expect(none.headers['x-authsome-error']).toBe('ERR_UI_SESSION_INVALID');
    expect(none.headers['content-security-policy']).toContain("frame-ancestors 'none'");
  });

  it('paths are taken exactly as sent: no dot segments, encoded slashes or other files', async () => {
    for (const p of [
      '/ui/../v1/status',
      '/ui/%2e%2e/v1/status',
      '/ui/assets/../../package.json',
      '/ui/assets/..%2f..%2fpackage.json',
      '/ui//api/me',
      '/ui/assets/x.map',
      '/ui/index.html',
    ]) {
      const r = await http(p, { headers: { cookie: owner.cookie } });
      expect(r.status, p).toBe(404);
      expect(r.body).not.toContain('"name": "authsome"');
    }
    const redirect = await http('/ui');
    expect(redirect.status).toBe(308);
    expect(redirect.headers['location']).toBe('/ui/');
  });

  it('a form post (not JSON) is refused even with the right token and Origin', async () => {
    const r = await http(`/ui/api/sessions/${ownerSession}/revoke`, {
      method: 'POST',
      headers: {
        cookie: owner.cookie,
        origin: `http://127.0.0.1:${port}`,
        'x-authsome-csrf': owner.csrf,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'a=b',
    });
    expect(r.status).toBe(400);
    const mine = await http('/ui/api/sessions', { headers: { cookie: owner.cookie } });
    expect((mine.json['sessions'] as Array<{ id: string }>).map((s) => s.id)).toContain(ownerSession);
  });

  it('`authsome ui` is refused inside an `authsome run` session', async () => {
    const r = await t.run(['ui'], { env: { AUTHSOME_SESSION_ID: ownerSession, AUTHSOME_PROFILE: 'me' } });
    expect(r.code).toBe(5);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('ERR_AUTH_FORBIDDEN');
  });

  it('a login and a logout are audited; after logout the cookie opens nothing', async () => {
    const s = await login('agent');
    const out = await post('/ui/api/logout', s);
    expect(out.status).toBe(200);
    expect(String(out.headers['set-cookie']?.[0])).toMatch(/Max-Age=0/);
    expect((await http('/ui/api/me', { headers: { cookie: s.cookie } })).status).toBe(401);
    const events = (
      (await t.json(['audit', '--profile', 'agent', '--limit', '100'])) as {
        events: Array<{ event: string }>;
      }
    ).events.map((e) => e.event);
    expect(events).toContain('ui.login');
    expect(events).toContain('ui.logout');
  });

  it('no answer held a secret', () => {
    for (const secret of [SECRET_ME, SECRET_AGENT])
      for (const text of seen) expect(findCanary(text, secret)).toBeUndefined();
  });
});
