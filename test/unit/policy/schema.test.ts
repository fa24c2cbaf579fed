import { describe, expect, it } from 'vitest';
import { isAppError } from '../../../src/errors.js';
import { normalisePolicy, parsePolicy, parsePolicyText } from '../../../src/policy/schema.js';
import { resolveExePaths } from '../../../src/policy/exe-paths.js';

function problem(json: unknown): string {
  try {
    parsePolicy(json);
  } catch (e) {
    if (!isAppError(e)) throw e;
    expect(e.code).toBe('ERR_POLICY_INVALID');
    expect(e.hint).toContain('docs/policy.md');
    return e.message;
  }
  throw new Error('accepted');
}

const rules = (...r: unknown[]) => ({ rules: r });

describe('parsePolicy', () => {
  it('accepts the SPEC 9 example and normalises it', () => {
    const p = parsePolicy({
      rules: [
        { action: 'allow', methods: ['get', 'HEAD', 'GET'], path: '/repos/acme/**', provider: 'github' },
        { provider: 'openai', action: 'allow', rate: '60/m', note: 'budget' },
        { provider: 'github', exe: ['/usr/bin/gh', '/usr/bin/gh'], action: 'allow' },
      ],
    });
    expect(p).toEqual({
      default: 'allow',
      rules: [
        { provider: 'github', methods: ['GET', 'HEAD'], path: '/repos/acme/**', action: 'allow' },
        { provider: 'openai', action: 'allow', rate: '60/min', note: 'budget' },
        { provider: 'github', exe: ['/usr/bin/gh'], action: 'allow' },
      ],
    });
    // fixed key order, so `policy show --json` prints the same text for the same policy
    expect(Object.keys(p.rules[0]!)).toEqual(['provider', 'methods', 'path', 'action']);
    expect(normalisePolicy(p)).toEqual(p);
    expect(JSON.stringify(normalisePolicy(p))).toBe(JSON.stringify(p));
  });

  it('takes a "$schema" pointer and a description, and drops the pointer', () => {
    const p = parsePolicy({ $schema: 'x', description: 'agent', default: 'deny', rules: [] });
    expect(p).toEqual({ default: 'deny', description: 'agent', rules: [] });
  });

  it('names the rule index and field of each problem', () => {
    const bad = (r: unknown) =>
      problem(rules({ action: 'allow' }, { action: 'allow' }, { action: 'allow' }, r));
    expect(bad({ action: 'allow', path: '/repos/ac*/x' })).toMatch(
      /^invalid policy: rules\[3\]\.path: has "\*" inside/,
    );
    expect(bad({ action: 'allow', path: '/repos/?' })).toMatch(/rules\[3\]\.path: "\?" is not a wildcard/);
    expect(bad({ action: 'allow', path: 'repos/x' })).toMatch(/rules\[3\]\.path: must start with "\/"/);
    expect(bad({ action: 'allow', path: '/a/***' })).toMatch(/rules\[3\]\.path: has "\*" inside/);
    expect(bad({ action: 'allow', path: '/a//b' })).toMatch(/rules\[3\]\.path: has an empty segment/);
    expect(bad({ action: 'allow', path: '/a/../b' })).toMatch(/rules\[3\]\.path: has a dot segment/);
    expect(bad({ action: 'allow', path: '/a/%61' })).toMatch(/rules\[3\]\.path: percent-encodes "a"/);
    expect(bad({ action: 'allow', path: '/a%2Fb' })).toMatch(/rules\[3\]\.path: percent-encodes a slash/);
    expect(bad({ action: 'allow', path: '/a b' })).toMatch(/rules\[3\]\.path: has characters that must be/);
    expect(bad({ action: 'allow', path: '/{id}' })).toMatch(/rules\[3\]\.path: has characters that must be/);
    expect(bad({ action: 'allow', path: '/a\\b' })).toMatch(/rules\[3\]\.path: has characters/);
    expect(bad({ action: 'maybe' })).toMatch(/rules\[3\]\.action: must be one of "allow", "deny", "approve"/);
    expect(bad({})).toMatch(/rules\[3\]\.action: is required/);
    expect(bad({ action: 'allow', provider: 'GitHub' })).toMatch(/rules\[3\]\.provider: must be a name/);
    expect(bad({ action: 'allow', connection: '' })).toMatch(/rules\[3\]\.connection: must be a name/);
    expect(bad({ action: 'allow', methods: ['GET', 'BAD METHOD'] })).toMatch(
      /rules\[3\]\.methods\[1\]: must be an HTTP method/,
    );
    expect(bad({ action: 'allow', methods: [] })).toMatch(/rules\[3\]\.methods: must NOT have fewer than 1/);
    expect(bad({ action: 'allow', exe: ['gh'] })).toMatch(/rules\[3\]\.exe\[0\]: must be an absolute path/);
    expect(bad({ action: 'allow', rate: '60/week' })).toMatch(/rules\[3\]\.rate: must be N\/sec/);
    expect(bad({ action: 'allow', rate: '0/min' })).toMatch(/rules\[3\]\.rate: must be N\/sec/);
    expect(bad({ action: 'deny', rate: '60/min' })).toMatch(
      /rules\[3\]\.rate: is only allowed on "allow" rules/,
    );
    expect(bad({ action: 'approve', rate: '5/hour' })).toMatch(
      /rules\[3\]\.rate: is only allowed on "allow"/,
    );
    expect(bad({ action: 'allow', host: 'x' })).toMatch(/rules\[3\]\.host: is not an allowed property/);
  });

  it('lists every problem at once', () => {
    const m = problem({
      default: 'maybe',
      rules: [{ action: 'allow', path: '/a*' }, { path: '/x' }],
      extra: 1,
    });
    expect(m).toContain('\n  - default: must be one of "allow", "deny"');
    expect(m).toContain('\n  - rules[0].path: has "*" inside');
    expect(m).toContain('\n  - rules[1].action: is required');
    expect(m).toContain('\n  - extra: is not an allowed property');
  });

  it('refuses what is not a policy document', () => {
    expect(problem(null)).toMatch(/\(root\): must be object/);
    expect(problem([])).toMatch(/\(root\): must be object/);
    expect(problem({})).toMatch(/rules: is required/);
    expect(problem({ rules: [1] })).toMatch(/rules\[0\]: must be object/);
  });

  it('reports bad JSON text without quoting it (it may hold a pasted secret)', () => {
    try {
      parsePolicyText('{"rules": [sk-live-SECRET', 'agent.json');
      expect.unreachable();
    } catch (e) {
      expect(isAppError(e) && e.code).toBe('ERR_POLICY_INVALID');
      expect((e as Error).message).toMatch(/^agent\.json: not valid JSON/);
      expect((e as Error).message).not.toContain('SECRET');
    }
    expect(parsePolicyText('{"rules":[]}', 'x').default).toBe('allow');
  });
});

describe('resolveExePaths', () => {
  const fakeFs: Record<string, string> = {
    '/usr/bin/python3': '/usr/bin/python3.12',
    '/usr/bin/gh': '/usr/bin/gh',
    '/usr/bin/python3.12': '/usr/bin/python3.12',
  };
  const realpath = async (p: string) => {
    const r = fakeFs[p];
    if (r === undefined) throw Object.assign(new Error('nope'), { code: 'ENOENT' });
    return r;
  };

  it('stores real paths, keeps a missing one as written, and warns about both', async () => {
    const policy = parsePolicy(
      rules(
        { provider: 'x', action: 'deny' },
        { exe: ['/usr/bin/python3', '/usr/bin/python3.12', '/opt/missing', '/usr/bin/gh'], action: 'allow' },
      ),
    );
    const out = await resolveExePaths(policy, { realpath, hasProc: true });
    expect(out.policy.rules[0]).toEqual({ provider: 'x', action: 'deny' });
    expect(out.policy.rules[1]!.exe).toEqual(['/usr/bin/python3.12', '/opt/missing', '/usr/bin/gh']);
    expect(Object.keys(out.policy.rules[1]!)).toEqual(['exe', 'action']);
    expect(out.warnings).toEqual([
      'rules[1].exe[0]: /usr/bin/python3 is stored as its real path /usr/bin/python3.12',
      'rules[1].exe[2]: /opt/missing does not exist; kept as written, it matches no caller until it does',
    ]);
  });

  it('warns once that exe rules never match without /proc, and only when there are some', async () => {
    const withExe = parsePolicy(
      rules({ exe: ['/usr/bin/gh'], action: 'allow' }, { exe: ['/usr/bin/gh'], action: 'deny' }),
    );
    const w = (await resolveExePaths(withExe, { realpath, hasProc: false })).warnings;
    expect(w).toEqual([
      'this system has no /proc: callers cannot be attributed, so exe rules will never match',
    ]);
    const none = parsePolicy(rules({ action: 'allow' }));
    expect((await resolveExePaths(none, { realpath, hasProc: false })).warnings).toEqual([]);
  });
});
