import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestHome, type CliResult } from '../helpers/cli.js';

/** SPEC section 9's example policy. */
const EXAMPLE = {
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
};

interface Check {
  action: string;
  rule: number | null;
  applies: boolean;
  provider: string | null;
  connection: string | null;
  rate?: string;
  reason: string;
}

describe('policy through the CLI and a real daemon (SPEC 9)', () => {
  const t = new TestHome();
  const file = (name: string, content: string) => {
    const p = join(t.dir, name);
    writeFileSync(p, content);
    return p;
  };
  let example: string;

  const refused = (r: CliResult, code: string, exit: number) => {
    expect(r.code, r.stderr).toBe(exit);
    expect(r.stderr).toContain(`[${code}]`);
    expect(r.stderr).toContain('next:');
  };
  const check = async (args: string[]): Promise<{ r: CliResult; c: Check }> => {
    const r = await t.run(['policy', 'check', ...args, '--json']);
    return { r, c: (r.stdout ? JSON.parse(r.stdout) : {}) as Check };
  };

  beforeAll(async () => {
    expect((await t.run(['init', '--profile', 'me'])).code).toBe(0);
    expect((await t.run(['profile', 'create', 'agent'])).code).toBe(0);
    expect((await t.run(['profile', 'create', 'other'])).code).toBe(0);
    const login = await t.run(['login', 'github', '--connection', 'work', '--profile', 'agent'], {
      input: 'ghp_policytest0123456789\n',
    });
    expect(login.code, login.stderr).toBe(0);
    example = file('agent.json', JSON.stringify(EXAMPLE, null, 2));
  });

  afterAll(async () => {
    await t.cleanup();
  });

  it('shows null (--json) and says so when no policy is set', async () => {
    const r = await t.run(['policy', 'show', 'agent', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toBeNull();
    expect((await t.run(['policy', 'show', 'agent'])).stdout).toContain('has no policy');
  });

  it('sets a policy as the owner, with a summary, and shows it normalised', async () => {
    const r = await t.run(['policy', 'set', 'agent', example]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      'Policy set for profile "agent": default allow, 5 rules (3 allow, 1 deny, 1 approve).',
    );
    expect(r.stdout).toContain('rules[3] at most 60/min');
    const shown = await t.json<typeof EXAMPLE>(['policy', 'show', 'agent']);
    expect(shown.default).toBe('allow');
    expect(shown.rules.slice(0, 4)).toEqual(EXAMPLE.rules.slice(0, 4));
    expect(shown.rules[4]).toMatchObject({ provider: 'github', action: 'allow' });
    // exe paths are stored as real paths, or as written with a warning when they do not exist here
    expect(shown.rules[4]!.exe).toHaveLength(2);
    expect(Object.keys(shown.rules[0]!)).toEqual(['provider', 'connection', 'methods', 'path', 'action']);
    const human = await t.run(['policy', 'show', 'agent']);
    expect(human.stdout).toMatch(/default allow/);
    expect(human.stdout).toMatch(
      /2\s+approve\s+github\s+\*\s+POST,PATCH,PUT\s+\/repos\/acme\/\*\/pulls\/\*\*/,
    );
  });

  it('checks requests with the decision and the rule, exit 5 for a deny, nothing sent', async () => {
    const get = await check(['agent', 'GET', 'https://api.github.com/repos/acme/widgets?page=2']);
    expect(get.r.code).toBe(0);
    expect(get.c).toMatchObject({
      action: 'allow',
      rule: 0,
      applies: true,
      provider: 'github',
      connection: 'work',
    });
    const del = await check(['agent', 'DELETE', 'https://api.github.com/repos/acme/widgets']);
    expect(del.r.code).toBe(5);
    expect(del.c).toMatchObject({ action: 'deny', rule: 1 });
    expect((await check(['agent', 'delete', 'https://api.github.com/repos/acme/widgets'])).c.rule).toBe(1);
    const post = await check(['agent', 'POST', 'https://api.github.com/repos/ACME/x/pulls']);
    expect(post.c).toMatchObject({ action: 'approve', rule: 2 });
    expect(post.r.code).toBe(0);
    // case never widens an allow: the default decides instead of rules[0]
    expect((await check(['agent', 'GET', 'https://api.github.com/repos/ACME/widgets'])).c).toMatchObject({
      action: 'allow',
      rule: null,
    });
    // a path that would need normalising is refused while the policy names paths
    for (const path of ['/repos//acme/x', '/repos/%61cme/x', '/repos/acme%2Fx', '/repos/acme/..;/x']) {
      const c = await check(['agent', 'GET', `https://api.github.com${path}`]);
      expect(c.c, path).toMatchObject({ action: 'deny', rule: null });
      expect(c.c.reason).toContain('the policy names paths');
      expect(c.r.code).toBe(5);
    }
    const dots = await t.run([
      'policy',
      'check',
      'agent',
      'GET',
      'https://api.github.com/repos/acme/../evil',
    ]);
    refused(dots, 'ERR_INPUT_INVALID', 2);
    expect(dots.stderr).toContain('the proxy refuses this URL');
    // exe rules: a given caller matches, an unknown one never does
    const gh = await check([
      'agent',
      'POST',
      'https://api.github.com/repos/acme/x/issues',
      '--exe',
      '/usr/bin/gh',
    ]);
    expect(gh.c).toMatchObject({ action: 'allow', rule: 4 });
    const anon = await check(['agent', 'POST', 'https://api.github.com/repos/acme/x/issues']);
    expect(anon.c).toMatchObject({ action: 'allow', rule: null });
    // no connection of that provider: decided, but the proxy would inject nothing
    const ai = await check(['agent', 'POST', 'https://api.openai.com/v1/chat/completions']);
    expect(ai.c).toMatchObject({
      action: 'allow',
      rule: 3,
      rate: '60/min',
      applies: false,
      connection: null,
    });
    const none = await check(['agent', 'GET', 'https://example.com/']);
    expect(none.c).toMatchObject({ applies: false, provider: null });
    const human = await t.run(['policy', 'check', 'agent', 'DELETE', 'https://api.github.com/repos/acme/x']);
    expect(human.stdout).toContain('deny (rules[1])');
    expect(human.stdout).toContain('ERR_POLICY_DENIED');
  });

  it('lets a profile show and check its own policy, and nobody else’s', async () => {
    const own = await t.run(['policy', 'show', 'agent', '--json', '--profile', 'agent']);
    expect(own.code, own.stderr).toBe(0);
    expect(JSON.parse(own.stdout).rules).toHaveLength(5);
    const c = await t.run([
      'policy',
      'check',
      'agent',
      'DELETE',
      'https://api.github.com/repos/acme/x',
      '--json',
      '--profile',
      'agent',
    ]);
    expect(c.code).toBe(5);
    expect(JSON.parse(c.stdout)).toMatchObject({ action: 'deny', rule: 1 });
    refused(await t.run(['policy', 'show', 'agent', '--profile', 'other']), 'ERR_AUTH_NOT_OWNER', 5);
    refused(
      await t.run(['policy', 'check', 'agent', 'GET', 'https://api.github.com/', '--profile', 'other']),
      'ERR_AUTH_NOT_OWNER',
      5,
    );
  });

  it('refuses a non-owner setting or clearing a policy, its own or another’s (ERR_AUTH_NOT_OWNER)', async () => {
    const open = file('open.json', '{"rules":[]}');
    refused(await t.run(['policy', 'set', 'agent', open, '--profile', 'agent']), 'ERR_AUTH_NOT_OWNER', 5);
    refused(await t.run(['policy', 'set', 'other', open, '--profile', 'agent']), 'ERR_AUTH_NOT_OWNER', 5);
    refused(await t.run(['policy', 'clear', 'agent', '--profile', 'agent']), 'ERR_AUTH_NOT_OWNER', 5);
    // the stored policy is untouched
    expect((await t.json<typeof EXAMPLE>(['policy', 'show', 'agent'])).rules).toHaveLength(5);
  });

  it('refuses a bad policy file naming the rule index and field, and bad JSON without quoting it', async () => {
    const bad = file(
      'bad.json',
      JSON.stringify({
        rules: [{ action: 'allow' }, { provider: 'github', path: '/repos/ac*', action: 'allow' }],
      }),
    );
    const r = await t.run(['policy', 'set', 'agent', bad]);
    refused(r, 'ERR_POLICY_INVALID', 2);
    expect(r.stderr).toContain('rules[1].path: has "*" inside the segment "ac*"');
    const rate = file('rate.json', JSON.stringify({ rules: [{ action: 'deny', rate: '5/min' }] }));
    expect((await t.run(['policy', 'set', 'agent', rate])).stderr).toContain(
      'rules[0].rate: is only allowed on "allow"',
    );
    const junk = file('junk.json', '{"rules": [ sk-live-DO-NOT-PRINT');
    const j = await t.run(['policy', 'set', 'agent', junk]);
    refused(j, 'ERR_POLICY_INVALID', 2);
    expect(j.stderr + j.stdout).not.toContain('DO-NOT-PRINT');
    refused(await t.run(['policy', 'set', 'nobody', example]), 'ERR_PROFILE_NOT_FOUND', 3);
    expect((await t.json<typeof EXAMPLE>(['policy', 'show', 'agent'])).rules).toHaveLength(5);
  });

  it('lists no held requests, and answers unknown ids with ERR_APPROVAL_NOT_FOUND (owner only)', async () => {
    expect(await t.json(['approvals'])).toEqual([]);
    expect((await t.run(['approvals'])).stdout).toContain('No requests wait for approval');
    refused(await t.run(['approve', 'abcdefghijkl', '--for', '10m']), 'ERR_APPROVAL_NOT_FOUND', 3);
    refused(await t.run(['reject', 'abcdefghijkl']), 'ERR_APPROVAL_NOT_FOUND', 3);
    refused(await t.run(['approve', 'abcdefghijkl', '--profile', 'agent']), 'ERR_AUTH_NOT_OWNER', 5);
    refused(await t.run(['reject', 'abcdefghijkl', '--profile', 'agent']), 'ERR_AUTH_NOT_OWNER', 5);
  });

  it('clears a policy as the owner: show --json is null again, and both changes are audited', async () => {
    const r = await t.run(['policy', 'clear', 'agent']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Cleared the policy of profile "agent"');
    expect((await t.run(['policy', 'show', 'agent', '--json'])).stdout.trim()).toBe('null');
    expect((await t.run(['policy', 'clear', 'agent'])).stdout).toContain('had no policy');
    const { c } = await check(['agent', 'DELETE', 'https://api.github.com/repos/acme/widgets']);
    expect(c).toMatchObject({ action: 'allow', rule: null });
    const events = await t.json<{
      events: Array<{ event: string; profile: string; detail?: { by?: string } }>;
    }>(['audit']);
    const policyEvents = events.events.filter((e) => e.event.startsWith('policy.'));
    expect(policyEvents.map((e) => [e.event, e.profile, e.detail?.by])).toEqual([
      ['policy.set', 'agent', 'me'],
      ['policy.clear', 'agent', 'me'],
    ]);
    expect((await t.run(['audit', 'verify'])).code).toBe(0);
  });
});
