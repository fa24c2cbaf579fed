import { describe, expect, it } from 'vitest';
import { compilePolicy, decide, ruleKey } from '../../../src/policy/decide.js';
import { parsePolicy } from '../../../src/policy/schema.js';
import type { Policy, PolicyRule, RequestFacts } from '../../../src/policy/types.js';

const facts = (over: Partial<RequestFacts> = {}): RequestFacts => ({
  provider: 'github',
  connection: 'work',
  method: 'GET',
  path: '/',
  exe: undefined,
  ...over,
});

/** A policy of one rule plus a default that differs from its action, so a match is visible. */
function one(rule: Omit<PolicyRule, 'action'> & { action: PolicyRule['action'] }): Policy {
  return parsePolicy({ default: rule.action === 'allow' ? 'deny' : 'allow', rules: [rule] });
}

/** 'rule' when the one rule decided, 'default' when the default did, 'refused' for normalising. */
function outcome(p: Policy, f: Partial<RequestFacts>): 'rule' | 'default' | 'refused' {
  const d = decide(p, facts(f));
  if (d.reason === 'needs-normalising') return 'refused';
  return d.ruleIndex === 0 ? 'rule' : 'default';
}

// [glob, path, allow-rule outcome, deny-rule outcome]
const GLOBS: Array<[string, string, string, string]> = [
  // SPEC 9: `*` is exactly one non-empty segment, `**` zero or more whole segments
  ['/repos/acme/*/pulls/**', '/repos/acme/x/pulls', 'rule', 'rule'],
  ['/repos/acme/*/pulls/**', '/repos/acme/x/pulls/1', 'rule', 'rule'],
  ['/repos/acme/*/pulls/**', '/repos/acme/x/pulls/1/files', 'rule', 'rule'],
  ['/repos/acme/*/pulls/**', '/repos/acme/pulls', 'default', 'default'],
  ['/repos/acme/*/pulls/**', '/repos/acme/x/y/pulls', 'default', 'default'],
  ['/repos/acme/*/pulls/**', '/repos/acme/x/pullsx', 'default', 'default'],
  ['/a/*', '/a/b', 'rule', 'rule'],
  ['/a/*', '/a', 'default', 'default'],
  ['/a/*', '/a/b/c', 'default', 'default'],
  ['/a/*', '/a/', 'default', 'default'],
  ['/a/**', '/a', 'rule', 'rule'],
  ['/a/**', '/a/', 'rule', 'rule'],
  ['/a/**', '/a/b/c/d', 'rule', 'rule'],
  ['/a/**', '/ab', 'default', 'default'],
  ['/a/**/z', '/a/z', 'rule', 'rule'],
  ['/a/**/z', '/a/b/c/z', 'rule', 'rule'],
  ['/a/**/z', '/a/b/c', 'default', 'default'],
  ['/a/**/*/z', '/a/z', 'default', 'default'],
  ['/a/**/*/z', '/a/q/z', 'rule', 'rule'],
  ['/**', '/', 'rule', 'rule'],
  ['/**', '/anything/at/all', 'rule', 'rule'],
  ['/', '/', 'rule', 'rule'],
  ['/', '/a', 'default', 'default'],
  ['/user', '/user', 'rule', 'rule'],
  ['/user', '/users', 'default', 'default'],
  // Case: allow compares case-sensitively, deny case-insensitively
  ['/repos/acme/**', '/repos/ACME/x', 'default', 'rule'],
  ['/repos/acme/**', '/Repos/Acme', 'default', 'rule'],
  ['/repos/ACME/**', '/repos/acme/x', 'default', 'rule'],
  // Encodings of characters that may be encoded: allow sees the spelling, deny the decoded text
  ['/users/a@b', '/users/a%40b', 'default', 'rule'],
  ['/users/a%40b', '/users/a@b', 'default', 'rule'],
  ['/files/%C3%A9', '/files/%c3%a9', 'rule', 'rule'],
  ['/files/%C3%A9', '/files/%C3%89', 'default', 'rule'],
  ['/files/*', '/files/%3Bx', 'rule', 'rule'],
  // A trailing slash: a different spelling for an allow, the same place for a deny
  ['/a/b', '/a/b/', 'default', 'rule'],
  ['/a/b/', '/a/b', 'default', 'rule'],
  ['/a/b/', '/a/b/', 'rule', 'rule'],
  // ;parameters, which some servers drop before routing
  ['/admin', '/admin;x=1', 'default', 'rule'],
  ['/admin/*', '/admin;a/b;c', 'default', 'rule'],
  // Paths that would need normalising, refused while a rule names a path (SPEC 9)
  ['/repos/acme/**', '/repos/acme/../evil', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/acme/./x', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/acme/%2e%2e/evil', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/acme/.%2E/evil', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/acme/..', 'refused', 'refused'],
  ['/repos/acme/**', '//repos/acme/x', 'refused', 'refused'],
  ['/repos/acme/**', '/repos//acme/x', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/acme/x//', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/%61cme/x', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/acm%65/x', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/acme/x%7E', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/acme%2Fevil', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/acme%2fevil', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/acme%5Cevil', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/acme\\evil', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/acme/é', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/acme/a b', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/acme/a\tb', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/acme/%zz', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/acme/%4', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/acme/%C3', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/acme/%00', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/acme/..;/admin', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/acme/;x/admin', 'refused', 'refused'],
  ['/repos/acme/**', '/repos/acme/{x}', 'refused', 'refused'],
  ['/repos/acme/**', 'repos/acme/x', 'refused', 'refused'],
  ['/repos/acme/**', '', 'refused', 'refused'],
];

describe('decide: SPEC 9 globs, as a table', () => {
  it.each(GLOBS)('%s against %s: allow rule → %s, deny rule → %s', (glob, path, allowOut, denyOut) => {
    expect(outcome(one({ path: glob, action: 'allow' }), { path })).toBe(allowOut);
    expect(outcome(one({ path: glob, action: 'deny' }), { path })).toBe(denyOut);
    // approve rules take the strict side, exactly as deny rules do
    expect(outcome(one({ path: glob, action: 'approve' }), { path })).toBe(denyOut);
  });

  it('does not refuse unusual paths while no rule names a path', () => {
    const p = one({ provider: 'github', action: 'deny' });
    for (const path of ['/repos/acme/../evil', '//x', '/a%2Fb', '/é'])
      expect(decide(p, facts({ path }))).toMatchObject({ action: 'deny', ruleIndex: 0 });
    const allow = one({ provider: 'github', action: 'allow' });
    expect(decide(allow, facts({ path: '/a/%2e%2e/b' }))).toMatchObject({ action: 'allow', ruleIndex: 0 });
  });

  it('refuses a path needing normalising before any rule of a provider some path rule covers, even a rule without a path', () => {
    const p = parsePolicy({
      rules: [
        { provider: 'github', action: 'allow', methods: ['HEAD'] },
        { provider: 'github', path: '/repos/**', action: 'allow' },
        { provider: 'openai', action: 'allow' },
      ],
    });
    const refused = { action: 'deny', ruleIndex: null, reason: 'needs-normalising' };
    expect(decide(p, facts({ provider: 'github', method: 'HEAD', path: '/repos//x' }))).toEqual(refused);
    expect(decide(p, facts({ provider: 'github', method: 'HEAD', path: '/repos/x' }))).toMatchObject({
      action: 'allow',
      ruleIndex: 0,
    });
    // No path rule can decide an openai request: its path is read as sent (a GitHub rule adds no doubt).
    expect(decide(p, facts({ provider: 'openai', path: '/v1//models' }))).toMatchObject({
      action: 'allow',
      ruleIndex: 2,
    });
    // A path rule without a provider covers every provider.
    const any = parsePolicy({
      rules: [
        { provider: 'openai', action: 'allow' },
        { path: '/admin/**', action: 'deny' },
      ],
    });
    expect(decide(any, facts({ provider: 'openai', path: '/v1//models' }))).toEqual(refused);
  });
});

describe('decide: methods, provider, connection, exe', () => {
  it('compares methods case-sensitively for allow, case-insensitively for deny and approve', () => {
    const allow = one({ methods: ['GET'], action: 'allow' });
    expect(outcome(allow, { method: 'GET' })).toBe('rule');
    expect(outcome(allow, { method: 'get' })).toBe('default');
    expect(outcome(allow, { method: 'Get' })).toBe('default');
    expect(outcome(allow, { method: 'POST' })).toBe('default');
    for (const action of ['deny', 'approve'] as const) {
      const strict = one({ methods: ['DELETE'], action });
      for (const m of ['DELETE', 'delete', 'Delete']) expect(outcome(strict, { method: m })).toBe('rule');
      expect(outcome(strict, { method: 'GET' })).toBe('default');
    }
  });

  it('stores methods upper-case, so a rule written in lower case names the upper-case method', () => {
    const p = one({ methods: ['get', 'GET', 'head'], action: 'allow' });
    expect(p.rules[0]!.methods).toEqual(['GET', 'HEAD']);
    expect(outcome(p, { method: 'HEAD' })).toBe('rule');
  });

  it('matches provider and connection exactly, and a rule without them matches every one', () => {
    const p = one({ provider: 'github', connection: 'work', action: 'deny' });
    expect(outcome(p, {})).toBe('rule');
    expect(outcome(p, { provider: 'gitlab' })).toBe('default');
    expect(outcome(p, { connection: 'personal' })).toBe('default');
    expect(outcome(p, { connection: undefined })).toBe('default');
    expect(outcome(one({ action: 'deny' }), { provider: 'anything', connection: 'x' })).toBe('rule');
  });

  it('never matches an exe rule for an unknown caller, whatever the action', () => {
    for (const action of ['allow', 'deny', 'approve'] as const) {
      const p = one({ exe: ['/usr/bin/gh'], action });
      expect(outcome(p, { exe: '/usr/bin/gh' })).toBe('rule');
      expect(outcome(p, { exe: '/usr/bin/curl' })).toBe('default');
      expect(outcome(p, { exe: undefined })).toBe('default');
      expect(outcome(p, { exe: null })).toBe('default');
      expect(outcome(p, { exe: '/usr/bin/GH' })).toBe('default');
    }
  });

  it('needs every named field to match', () => {
    const p = one({
      provider: 'github',
      connection: 'work',
      methods: ['POST'],
      path: '/repos/*/issues',
      exe: ['/usr/bin/gh'],
      action: 'allow',
    });
    const all = { method: 'POST', path: '/repos/x/issues', exe: '/usr/bin/gh' };
    expect(outcome(p, all)).toBe('rule');
    expect(outcome(p, { ...all, provider: 'openai' })).toBe('default');
    expect(outcome(p, { ...all, connection: 'personal' })).toBe('default');
    expect(outcome(p, { ...all, method: 'GET' })).toBe('default');
    expect(outcome(p, { ...all, path: '/repos/x/pulls' })).toBe('default');
    expect(outcome(p, { ...all, exe: '/usr/bin/curl' })).toBe('default');
  });
});

describe('decide: order, defaults, rates', () => {
  // The example policy of SPEC section 9.
  const spec = parsePolicy({
    default: 'allow',
    rules: [
      {
        provider: 'github',
        connection: 'work',
        methods: ['GET', 'HEAD'],
        path: '/repos/acme/**',
        action: 'allow',
      },
      { provider: 'github', methods: ['DELETE'], action: 'deny' },
      {
        provider: 'github',
        methods: ['POST', 'PATCH', 'PUT'],
        path: '/repos/acme/*/pulls/**',
        action: 'approve',
      },
      { provider: 'openai', action: 'allow', rate: '60/min' },
      { provider: 'github', exe: ['/usr/bin/gh', '/usr/lib/git-core/git-remote-https'], action: 'allow' },
    ],
  });

  it('lets the first matching rule decide (the SPEC 9 example)', () => {
    const d = (f: Partial<RequestFacts>) => {
      const r = decide(spec, facts(f));
      return [r.action, r.ruleIndex];
    };
    expect(d({ path: '/repos/acme/widgets' })).toEqual(['allow', 0]);
    expect(d({ method: 'DELETE', path: '/repos/acme/widgets' })).toEqual(['deny', 1]);
    expect(d({ method: 'delete', path: '/repos/acme/widgets' })).toEqual(['deny', 1]);
    expect(d({ method: 'POST', path: '/repos/acme/x/pulls' })).toEqual(['approve', 2]);
    expect(d({ method: 'post', path: '/repos/ACME/x/pulls/3/merge' })).toEqual(['approve', 2]);
    expect(d({ method: 'POST', path: '/repos/acme/x/issues', exe: '/usr/bin/gh' })).toEqual(['allow', 4]);
    expect(d({ method: 'POST', path: '/repos/acme/x/issues' })).toEqual(['allow', null]);
    expect(d({ connection: 'personal', path: '/repos/acme/x' })).toEqual(['allow', null]);
    expect(d({ path: '/repos/acme/../evil' })).toEqual(['deny', null]);
    expect(d({ path: '/repos/acme/%2e%2e/evil' })).toEqual(['deny', null]);
    expect(d({ path: '//repos/acme/x' })).toEqual(['deny', null]);
    expect(d({ provider: 'openai', path: '/v1/chat/completions', method: 'POST' })).toEqual(['allow', 3]);
  });

  it('uses the default when nothing matches, and allows everything without a policy', () => {
    const deny = parsePolicy({ default: 'deny', rules: [] });
    expect(decide(deny, facts())).toEqual({ action: 'deny', ruleIndex: null });
    expect(decide(parsePolicy({ rules: [] }), facts())).toEqual({ action: 'allow', ruleIndex: null });
    expect(decide(undefined, facts({ path: '/../x' }))).toEqual({ action: 'allow', ruleIndex: null });
  });

  it('hands back the rate and the rule content key of a deciding allow rule', () => {
    const d = decide(spec, facts({ provider: 'openai' }));
    expect(d.rate).toEqual({ text: '60/min', count: 60, perMs: 60_000 });
    expect(d.ruleKey).toBe(ruleKey(spec.rules[3]!));
    expect(decide(spec, facts({ path: '/repos/acme/x' })).rate).toBeUndefined();
  });

  it('keys a rule by its content: the same under another position or note, new when changed', () => {
    const r = { provider: 'openai', action: 'allow', rate: '60/min' } as const;
    const a = parsePolicy({ rules: [r] });
    const b = parsePolicy({
      rules: [
        { action: 'deny', provider: 'x' },
        { ...r, note: 'budget' },
      ],
    });
    const c = parsePolicy({ rules: [{ ...r, rate: '61/min' }] });
    const key = (p: Policy, i: number) => decide(p, facts({ provider: 'openai' })).ruleKey ?? `none${i}`;
    expect(key(a, 0)).toBe(key(b, 1));
    expect(key(c, 0)).not.toBe(key(a, 0));
    expect(parsePolicy({ rules: [{ ...r, rate: '60/m' }] }).rules[0]!.rate).toBe('60/min');
    expect(key(parsePolicy({ rules: [{ ...r, rate: '60/m' }] }), 0)).toBe(key(a, 0));
  });

  it('decides the same from a compiled policy and allocates no new decision per request', () => {
    const c = compilePolicy(spec);
    const f = facts({ path: '/repos/acme/widgets' });
    expect(decide(c, f)).toBe(decide(c, f));
    expect(decide(c, f)).toEqual(decide(spec, f));
  });
});
