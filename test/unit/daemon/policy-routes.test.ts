import { describe, expect, it } from 'vitest';
import type { App } from '../../../src/app.js';
import { isAppError } from '../../../src/errors.js';
import { PolicyService } from '../../../src/daemon/policies.js';
import { addPolicyRoutes } from '../../../src/daemon/policy-routes.js';
import { Router } from '../../../src/daemon/router.js';
import type { AuditInput, AuditRecord } from '../../../src/audit/types.js';
import { memoryStore } from '../../../src/vault/index.js';

/** The routes against a real PolicyService, with the rest of the App reduced to what they touch. */
function setup() {
  const audit: AuditInput[] = [];
  const sink = {
    append: async (r: AuditInput) =>
      (audit.push(r), { ...r, ts: '', seq: 0, prev: '', hash: '' }) as AuditRecord,
  };
  const policies = new PolicyService(memoryStore(), sink, { approvalTimeoutMs: 60_000, maxHeld: 8 });
  const profiles: Record<string, { owner: boolean }> = {
    me: { owner: true },
    agent: { owner: false },
    other: { owner: false },
  };
  const app = {
    policies,
    audit: sink,
    registry: { get: async (h: string) => profiles[h] },
    providers: { get: (n: string) => (n === 'github' ? { name: 'github' } : undefined) },
  } as unknown as App;
  const r = new Router();
  addPolicyRoutes(r, app);
  const call = async (handle: string, method: string, path: string, body: Record<string, unknown> = {}) => {
    const url = new URL(`http://127.0.0.1${path}`);
    const { handler, params } = r.find(method, url.pathname);
    return (await handler({ handle, params, query: url.searchParams, body })).body as Record<string, unknown>;
  };
  const code = (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (e: unknown) => (isAppError(e) ? e.code : String(e)),
    );
  const held = (profile: string, path = '/repos/acme/x/pulls') =>
    policies.hold({
      profile,
      provider: 'github',
      connection: 'work',
      method: 'POST',
      path,
      exe: null,
      pid: null,
      rule: 2,
    });
  return { call, code, held, audit, policies };
}

describe('policy routes', () => {
  it('stores a policy with warnings for unknown providers and missing executables, and audits it', async () => {
    const { call, audit } = setup();
    const res = await call('me', 'PUT', '/v1/policies/agent', {
      rules: [
        { provider: 'gitbub', action: 'deny' },
        { exe: ['/nonexistent/bin/tool'], action: 'allow' },
      ],
    });
    expect(res['warnings']).toEqual(
      expect.arrayContaining([
        'rules[0].provider: no provider "gitbub" is known; the rule matches nothing until one is added',
        expect.stringMatching(/^rules\[1\]\.exe\[0\]: \/nonexistent\/bin\/tool does not exist/),
      ]),
    );
    expect(audit).toEqual([
      { event: 'policy.set', profile: 'agent', detail: { by: 'me', rules: 2, default: 'allow' } },
    ]);
    expect((await call('agent', 'GET', '/v1/policies/agent'))['setBy']).toBe('me');
  });

  it('keeps changes to the owner and reads to the owner and the profile itself', async () => {
    const { call, code } = setup();
    const policy = { rules: [] };
    expect(await code(call('agent', 'PUT', '/v1/policies/agent', policy))).toBe('ERR_AUTH_NOT_OWNER');
    expect(await code(call('agent', 'PUT', '/v1/policies/other', policy))).toBe('ERR_AUTH_NOT_OWNER');
    expect(await code(call('agent', 'DELETE', '/v1/policies/agent'))).toBe('ERR_AUTH_NOT_OWNER');
    expect(await code(call('other', 'GET', '/v1/policies/agent'))).toBe('ERR_AUTH_NOT_OWNER');
    expect(await code(call('me', 'GET', '/v1/policies/nobody'))).toBe('ERR_PROFILE_NOT_FOUND');
    // a non-owner cannot learn whether a profile exists
    expect(await code(call('agent', 'GET', '/v1/policies/nobody'))).toBe('ERR_AUTH_NOT_OWNER');
    expect(await code(call('me', 'PUT', '/v1/policies/agent', { rules: [{ action: 'nope' }] }))).toBe(
      'ERR_POLICY_INVALID',
    );
    expect(await call('agent', 'GET', '/v1/policies/agent')).toEqual({ profile: 'agent', policy: null });
  });

  it('lists held requests: all for the owner, its own for another profile', async () => {
    const { call, held } = setup();
    await held('agent');
    await held('other');
    const all = await call('me', 'GET', '/v1/approvals');
    expect((all['approvals'] as unknown[]).length).toBe(2);
    const own = (await call('agent', 'GET', '/v1/approvals'))['approvals'] as Array<{ profile: string }>;
    expect(own.map((h) => h.profile)).toEqual(['agent']);
  });

  it('long-polls: answers when a request is held after the version it was given, with releases since', async () => {
    const { call, held } = setup();
    const first = await call('me', 'GET', '/v1/approvals');
    const version = first['version'] as number;
    const started = Date.now();
    const waiting = call('me', 'GET', `/v1/approvals?since=${version}&wait=15000`);
    setTimeout(() => void held('agent'), 50);
    const page = await waiting;
    expect(Date.now() - started).toBeLessThan(5000);
    const [h] = page['approvals'] as Array<{ id: string }>;
    const after = page['version'] as number;
    const answered = call('me', 'POST', `/v1/approvals/${h!.id}/reject`);
    await answered;
    const next = await call('agent', 'GET', `/v1/approvals?since=${after}&wait=15000`);
    expect(next['released']).toEqual([{ id: h!.id, profile: 'agent', result: 'rejected' }]);
    expect(await call('other', 'GET', `/v1/approvals?since=${after}&wait=1`)).toMatchObject({ released: [] });
  });

  it('lets only the owner answer, its own profile’s requests included; --for at most 24h', async () => {
    const { call, code, held } = setup();
    const a = await held('agent');
    expect(await code(call('agent', 'POST', `/v1/approvals/${a.held.id}/approve`))).toBe(
      'ERR_AUTH_NOT_OWNER',
    );
    expect(await code(call('agent', 'POST', `/v1/approvals/${a.held.id}/reject`))).toBe('ERR_AUTH_NOT_OWNER');
    expect(await code(call('me', 'POST', `/v1/approvals/${a.held.id}/approve`, { for: '25h' }))).toBe(
      'ERR_INPUT_INVALID',
    );
    expect(await code(call('me', 'POST', `/v1/approvals/${a.held.id}/approve`, { for: 'soon' }))).toBe(
      'ERR_INPUT_INVALID',
    );
    const res = await call('me', 'POST', `/v1/approvals/${a.held.id}/approve`, { for: '10m' });
    expect(res).toMatchObject({ id: a.held.id, result: 'approved', for: '10m' });
    expect(await a.outcome).toEqual({ result: 'approved', by: 'me', forMs: 600_000 });
    const mine = await held('me');
    await call('me', 'POST', `/v1/approvals/${mine.held.id}/approve`);
    expect(await mine.outcome).toMatchObject({ result: 'approved', by: 'me' });
    expect(await code(call('me', 'POST', '/v1/approvals/NOT-AN-ID/approve'))).toBe('ERR_APPROVAL_NOT_FOUND');
  });
});
