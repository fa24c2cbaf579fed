import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, TestHome } from '../helpers/cli.js';

/**
 * Issue 18 item 6: `authsome` run inside `authsome run --profile P` acts as P, never as the owner; a
 * nested run gets a session no wider (and no longer-lived) than its parent's; owner-only commands say
 * why they are refused there.
 */
let t: TestHome;
const node = process.execPath;
beforeAll(async () => {
  t = new TestHome();
  for (const args of [
    ['init', '--profile', 'owner'],
    ['profile', 'create', 'agent'],
  ])
    expect((await t.run(args)).code).toBe(0);
  expect(
    (await t.run(['login', 'openai', '--connection', 'owner-key'], { input: 'sk-owner-0123456789\n' })).code,
  ).toBe(0);
  expect(
    (
      await t.run(['login', 'openai', '--profile', 'agent', '--connection', 'agent-key'], {
        input: 'sk-agent-0123456789\n',
      })
    ).code,
  ).toBe(0);
  expect(
    (
      await t.run(['login', 'github', '--profile', 'agent', '--connection', 'gh'], {
        input: 'ghp_agent0123456789\n',
      })
    ).code,
  ).toBe(0);
}, 60_000);
afterAll(async () => {
  await t?.cleanup();
});

/** `authsome run [outer…] -- authsome inner…`: the inner CLI runs as the child. */
const nested = (outer: string[], inner: string[]) => t.run(['run', ...outer, '--', node, CLI, ...inner]);

describe('inside a session the CLI acts as the session profile', () => {
  it("connection list shows the session profile's connections, not the owner's", async () => {
    const r = await nested(['--profile', 'agent'], ['connection', 'list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('agent-key');
    expect(r.stdout).not.toContain('owner-key');
  });

  it('--profile naming another profile is refused, and says why', async () => {
    const r = await nested(['--profile', 'agent'], ['--profile', 'owner', 'connection', 'list']);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('ERR_AUTH_FORBIDDEN');
    expect(r.stderr).toMatch(/inside an authsome session of profile "agent"/);
  });

  it('owner-only commands are refused there, even in a session of the owner', async () => {
    for (const outer of [['--profile', 'agent'], []]) {
      const r = await nested(outer, ['profile', 'create', 'sneaky']);
      expect(r.code).toBe(5);
      expect(r.stderr).toContain('ERR_AUTH_NOT_OWNER');
      expect(r.stderr).toContain('inside an authsome session');
    }
    const d = await nested([], ['daemon', 'stop']);
    expect(d.code).toBe(5);
    expect((await t.run(['profile', 'list'])).stdout).not.toContain('sneaky');
  });
});

describe('a nested run is never wider than its parent', () => {
  const sessions = async (): Promise<
    Array<{ id: string; allow: unknown; expiresAt: number; label?: string }>
  > =>
    (
      await t.json<{ sessions: Array<{ id: string; allow: unknown; expiresAt: number }> }>([
        '--profile',
        'agent',
        'proxy',
        'revoke',
      ])
    ).sessions;

  it("without --allow it inherits the parent's allow list and expiry bound", async () => {
    const r = await nested(
      ['--profile', 'agent', '--allow', 'openai', '--ttl', '10m'],
      ['proxy', 'env', '--json', '--ttl', '12h'],
    );
    expect(r.code, r.stderr).toBe(0);
    const inner = JSON.parse(r.stdout) as { id: string; expiresAt: string; env: Record<string, string> };
    expect(new URL(inner.env['HTTPS_PROXY']!).username).toBe('agent');
    const rec = (await sessions()).find((s) => s.id === inner.id);
    expect(rec?.allow).toEqual([{ provider: 'openai' }]);
    expect(Date.parse(inner.expiresAt)).toBeLessThanOrEqual(Date.now() + 10 * 60_000);
  });

  it("an --allow outside the parent's is refused, naming what the parent allows", async () => {
    const r = await nested(
      ['--profile', 'agent', '--allow', 'openai'],
      ['run', '--allow', 'github', '--', 'true'],
    );
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('ERR_AUTH_FORBIDDEN');
    expect(r.stderr).toContain('it allows openai');
  });

  it('a narrower --allow is kept; a provider the parent bound to one connection stays bound to it', async () => {
    const r = await nested(
      ['--profile', 'agent', '--allow', 'openai:agent-key,github'],
      ['proxy', 'env', '--json', '--allow', 'openai'],
    );
    expect(r.code, r.stderr).toBe(0);
    const inner = JSON.parse(r.stdout) as { id: string };
    expect((await sessions()).find((s) => s.id === inner.id)?.allow).toEqual([
      { provider: 'openai', connection: 'agent-key' },
    ]);
  });
});
