import { describe, expect, it } from 'vitest';
import { isAppError } from '../../../src/errors.js';
import { PolicyService } from '../../../src/daemon/policies.js';
import { parsePolicy } from '../../../src/policy/index.js';
import type { AuditInput, AuditRecord, AuditSink } from '../../../src/audit/types.js';
import { memoryStore } from '../../../src/vault/index.js';
import { profileScope } from '../../../src/vault/scope.js';
import type { KvStore } from '../../../src/vault/types.js';

class Sink implements AuditSink {
  readonly records: AuditInput[] = [];
  async append(input: AuditInput): Promise<AuditRecord> {
    this.records.push(input);
    return { ...input, ts: '', seq: this.records.length, prev: '', hash: '' };
  }
}

const facts = { provider: 'github', connection: 'work', method: 'DELETE', path: '/repos/acme/x', exe: null };
const denyDeletes = parsePolicy({ rules: [{ provider: 'github', methods: ['DELETE'], action: 'deny' }] });

function setup(store: KvStore = memoryStore(), now = () => 1_000_000) {
  const audit = new Sink();
  const s = new PolicyService(store, audit, { approvalTimeoutMs: 120_000, maxHeld: 2, now });
  return { s, audit, store };
}

describe('PolicyService', () => {
  it('applies a policy from the next request, and clearing it, with no restart', async () => {
    const { s } = setup();
    expect(await s.decide('agent', facts)).toEqual({ action: 'allow', ruleIndex: null });
    await s.set('agent', denyDeletes, 'me');
    expect(await s.decide('agent', facts)).toMatchObject({ action: 'deny', ruleIndex: 0 });
    expect(await s.decide('other', facts)).toMatchObject({ action: 'allow', ruleIndex: null });
    expect(await s.clear('agent')).toBe(true);
    expect(await s.clear('agent')).toBe(false);
    expect(await s.decide('agent', facts)).toEqual({ action: 'allow', ruleIndex: null });
  });

  it('stores the policy sealed under the target profile’s prefix, with who set it and when', async () => {
    const { s, store } = setup();
    await s.set('agent', denyDeletes, 'me');
    expect(await store.keys('profile/agent/')).toEqual(['profile/agent/policy']);
    expect(await s.stored('agent')).toEqual({
      policy: denyDeletes,
      setAt: new Date(1_000_000).toISOString(),
      setBy: 'me',
    });
    expect(await s.stored('agent2')).toBeUndefined();
  });

  it('serves repeated requests from its cache (one store read), and reads again after a change', async () => {
    const base = memoryStore();
    let reads = 0;
    const counting: KvStore = { ...base, get: (k) => (reads++, base.get(k)) };
    const { s } = setup(counting);
    await s.set('agent', denyDeletes, 'me');
    reads = 0;
    const first = await s.get('agent');
    for (let i = 0; i < 100; i++) expect(await s.get('agent')).toBe(first);
    expect(reads).toBe(1);
    await s.set('agent', parsePolicy({ default: 'deny', rules: [] }), 'me');
    expect((await s.get('agent'))?.policy.default).toBe('deny');
  });

  it('fails closed on a damaged record (ERR_VAULT_CORRUPT), and a clear repairs it', async () => {
    const { s, store } = setup();
    await profileScope(store, 'agent').put('policy', {
      version: 1,
      policy: { rules: 'x' },
      setAt: 'x',
      setBy: 'me',
    });
    const err = await s.decide('agent', facts).catch((e: unknown) => e);
    expect(isAppError(err) && err.code).toBe('ERR_VAULT_CORRUPT');
    expect((err as Error & { hint: string }).hint).toContain('authsome policy clear agent');
    expect(await s.clear('agent')).toBe(true);
    expect((await s.decide('agent', facts)).action).toBe('allow');
  });

  it('takes rate tokens per profile, connection and rule content', async () => {
    const { s } = setup();
    await s.set(
      'agent',
      parsePolicy({ rules: [{ provider: 'openai', action: 'allow', rate: '2/min' }] }),
      'me',
    );
    const f = { ...facts, provider: 'openai', method: 'POST', path: '/v1/chat/completions' };
    const d = await s.decide('agent', f);
    expect((await s.takeRate('agent', 'work', d)).ok).toBe(true);
    expect((await s.takeRate('agent', 'work', d)).ok).toBe(true);
    expect(await s.takeRate('agent', 'work', d)).toEqual({ ok: false, retryAfterS: 30 });
    expect((await s.takeRate('agent', 'personal', d)).ok).toBe(true);
    // the same rule moved below another keeps its count
    await s.set(
      'agent',
      parsePolicy({
        rules: [
          { provider: 'x', action: 'deny' },
          { provider: 'openai', action: 'allow', rate: '2/min' },
        ],
      }),
      'me',
    );
    const moved = await s.decide('agent', f);
    expect(moved.ruleIndex).toBe(1);
    expect((await s.takeRate('agent', 'work', moved)).ok).toBe(false);
    expect((await s.takeRate('agent', 'work', { action: 'allow', ruleIndex: null })).ok).toBe(true);
  });

  it('folds rate_limited records and writes what is left at shutdown', async () => {
    const t = { now: 0 };
    const { s, audit } = setup(memoryStore(), () => t.now);
    const d = { action: 'allow' as const, ruleIndex: 3, ruleKey: 'abc' };
    const rec: AuditInput = { event: 'policy.rate_limited', profile: 'agent', rule: 3, status: 429 };
    for (let i = 0; i < 10; i++) s.rateLimited('agent', d, rec);
    s.rateLimited('other', d, { ...rec, profile: 'other' });
    await s.shutdown();
    expect(audit.records).toEqual([
      { ...rec, count: 1 },
      { ...rec, profile: 'other', count: 1 },
      { ...rec, count: 9 },
    ]);
  });

  it('holds requests up to maxHeld, and rejects them all at shutdown, waking long-polls', async () => {
    const { s } = setup();
    const held = {
      profile: 'agent',
      provider: 'github',
      connection: 'work',
      method: 'POST',
      path: '/x',
      exe: null,
      pid: null,
      rule: 2,
    };
    const a = await s.hold(held);
    const v = s.version;
    const waiting = s.waitForChange(v, 20_000);
    await s.hold(held);
    await waiting; // woken by the second hold, not the 20 s timeout
    const full = await s.hold(held).catch((e: unknown) => e);
    expect(isAppError(full) && full.code).toBe('ERR_POLICY_HELD_FULL');
    const v2 = s.version;
    const idle = s.waitForChange(v2, 20_000);
    await s.shutdown();
    await idle;
    expect(await a.outcome).toEqual({ result: 'rejected', by: null, reason: 'shutdown' });
    expect(s.releasedSince(v2).map((r) => r.result)).toEqual(['rejected', 'rejected']);
    const after = await s.hold(held).catch((e: unknown) => e);
    expect(isAppError(after) && after.code).toBe('ERR_POLICY_APPROVAL_REJECTED');
  });

  it('forgets a deleted profile: its cached policy and its held requests', async () => {
    const { s, store } = setup();
    await s.set('agent', denyDeletes, 'me');
    expect((await s.decide('agent', facts)).action).toBe('deny');
    const h = await s.hold({
      profile: 'agent',
      provider: 'github',
      connection: 'work',
      method: 'POST',
      path: '/x',
      exe: null,
      pid: null,
      rule: 0,
    });
    await profileScope(store, 'agent').destroy();
    await s.forget('agent');
    expect((await s.decide('agent', facts)).action).toBe('allow');
    expect(await h.outcome).toMatchObject({ result: 'rejected', reason: 'profile-deleted' });
  });
});
