import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AdvEnv, HOST } from './env.js';
import { errorOf, statusOf } from './wire.js';

/**
 * Issue 16 from outside (SPEC section 9): an agent profile under the example policy, through the real
 * daemon and proxy. "other" is the agent; "me" is the owner who sets its policy and answers approvals.
 */
let e: AdvEnv;
beforeAll(async () => {
  e = await AdvEnv.start({ config: { policy: { approvalTimeoutS: 3 } } });
}, 90_000);
afterAll(async () => {
  await e?.stop();
});

const EXAMPLE = {
  default: 'allow',
  rules: [
    { provider: 'canaryco', methods: ['GET', 'HEAD'], path: '/repos/acme/**', action: 'allow' },
    { provider: 'canaryco', methods: ['DELETE'], action: 'deny' },
    {
      provider: 'canaryco',
      methods: ['POST', 'PATCH', 'PUT'],
      path: '/repos/acme/*/pulls/**',
      action: 'approve',
    },
    { provider: 'canaryco', path: '/rated/**', action: 'allow', rate: '2/min' },
    { provider: 'canaryco', path: '/repos/**', action: 'deny' },
  ],
};

async function setPolicy(policy: object): Promise<void> {
  const f = join(e.t.dir, `policy-${randomBytes(4).toString('hex')}.json`);
  writeFileSync(f, JSON.stringify(policy));
  await e.ok(['policy', 'set', 'other', f]);
}

/** One request of the agent through a tunnel; every path carries a unique marker to find it upstream. */
async function send(method: string, path: string, body = ''): Promise<{ r: string; marker: string }> {
  const marker = `m${randomBytes(6).toString('hex')}`;
  const full = `${path}${path.includes('?') ? '&' : '?'}${marker}`;
  const r = await e.wire.exchange(
    `${HOST.api}:443`,
    `${method} ${full} HTTP/1.1\r\nHost: ${HOST.api}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    { auth: e.auth('other', e.tokens.other), ca: e.localCa, ms: 15_000 },
  );
  return { r, marker };
}
const upstreamSaw = (marker: string): number => e.origin.https.seen.text().split(marker).length - 1;
const audit = (event: string) =>
  e.auditLines().filter((l) => l['event'] === event && l['profile'] === 'other');

describe('the example policy of SPEC 9', () => {
  beforeAll(async () => {
    await setPolicy(EXAMPLE);
  });

  it('an allowed GET goes through; its injection record names the rule', async () => {
    const { r, marker } = await send('GET', '/repos/acme/widget');
    expect(statusOf(r)).toBe(200);
    expect(upstreamSaw(marker)).toBe(1);
    await vi.waitFor(() =>
      expect(
        audit('proxy.inject').find((l) => String(l['path']).startsWith('/repos/acme/widget')),
      ).toMatchObject({
        rule: 0,
      }),
    );
  });

  it('a DELETE is 403 ERR_POLICY_DENIED with nothing upstream, audited as policy.deny with its rule', async () => {
    const { r, marker } = await send('DELETE', '/repos/acme/widget');
    expect(errorOf(r)).toMatchObject({ status: 403, code: 'ERR_POLICY_DENIED' });
    expect(upstreamSaw(marker)).toBe(0);
    await vi.waitFor(() =>
      expect(audit('policy.deny').at(-1)).toMatchObject({ rule: 1, method: 'DELETE', status: 403 }),
    );
    expect(audit('proxy.deny').filter((l) => l['method'] === 'DELETE')).toEqual([]);
  });

  it('past a rate: 429 ERR_POLICY_RATE_LIMITED with Retry-After, nothing upstream', async () => {
    expect(statusOf((await send('GET', '/rated/a')).r)).toBe(200);
    expect(statusOf((await send('GET', '/rated/b')).r)).toBe(200);
    const { r, marker } = await send('GET', '/rated/c');
    expect(errorOf(r)).toMatchObject({ status: 429, code: 'ERR_POLICY_RATE_LIMITED' });
    expect(Number(/retry-after: (\d+)/i.exec(r)?.[1])).toBeGreaterThanOrEqual(1);
    expect(upstreamSaw(marker)).toBe(0);
    await vi.waitFor(
      () => expect(audit('policy.rate_limited').at(-1)).toMatchObject({ rule: 3, status: 429 }),
      {
        timeout: 5000,
      },
    );
  });

  const waitHeld = async (): Promise<{ id: string; profile: string; method: string; path: string }> => {
    let held: Array<{ id: string; profile: string; method: string; path: string }> = [];
    await vi.waitFor(
      async () => {
        held = JSON.parse(await e.ok(['approvals', '--json'])) as typeof held;
        expect(held.length).toBeGreaterThan(0);
      },
      { timeout: 10_000, interval: 200 },
    );
    return held[0]!;
  };

  it('a POST is held until the owner approves it; then the upstream sees it once', async () => {
    const pending = send('POST', '/repos/acme/w/pulls/1', '{"title":"x"}');
    const held = await waitHeld();
    expect(held).toMatchObject({ profile: 'other', method: 'POST', path: '/repos/acme/w/pulls/1' });
    expect(held).toHaveProperty('connection', 'otherconn');
    expect(held).toHaveProperty('since');
    const { r, marker } = await Promise.all([pending, e.ok(['approve', held.id])]).then(([p]) => p);
    expect(statusOf(r)).toBe(200);
    expect(upstreamSaw(marker)).toBe(1);
    await vi.waitFor(() => expect(audit('policy.approved').at(-1)).toMatchObject({ rule: 2 }));
    expect(audit('policy.approval_wait').length).toBeGreaterThan(0);
  });

  it('another is refused by reject: 403 ERR_POLICY_APPROVAL_REJECTED, nothing upstream', async () => {
    const pending = send('POST', '/repos/acme/w/pulls/2');
    const held = await waitHeld();
    await e.ok(['reject', held.id]);
    const { r, marker } = await pending;
    expect(errorOf(r)).toMatchObject({ status: 403, code: 'ERR_POLICY_APPROVAL_REJECTED' });
    expect(upstreamSaw(marker)).toBe(0);
    await vi.waitFor(() =>
      expect(audit('policy.rejected').at(-1)).toMatchObject({ rule: 2, reason: 'owner' }),
    );
  });

  it('and one by timeout (policy.approvalTimeoutS 3): 403 ERR_POLICY_APPROVAL_TIMEOUT', async () => {
    const { r, marker } = await send('PUT', '/repos/acme/w/pulls/3');
    expect(errorOf(r)).toMatchObject({ status: 403, code: 'ERR_POLICY_APPROVAL_TIMEOUT' });
    expect(upstreamSaw(marker)).toBe(0);
    await vi.waitFor(() => expect(audit('policy.approval_timeout').at(-1)).toMatchObject({ rule: 2 }));
  });

  it('approve --for lets the same method and path through without asking again', async () => {
    const pending = send('PATCH', '/repos/acme/w/pulls/4');
    await e.ok(['approve', (await waitHeld()).id, '--for', '10m']);
    expect(statusOf((await pending).r)).toBe(200);
    const again = await send('PATCH', '/repos/acme/w/pulls/4');
    expect(statusOf(again.r)).toBe(200);
    expect(upstreamSaw(again.marker)).toBe(1);
  });

  it.each([
    ['an empty segment', '/repos/acme//widget'],
    ['case (allow rules are case-sensitive; the deny below them is not)', '/Repos/acme/widget'],
    ['needless percent-encoding', '/repos/%61cme/widget'],
    ['an encoded slash', '/repos/acme%2Fwidget'],
  ])('a path trick never matches the allow: %s', async (_what, path) => {
    const { r, marker } = await send('GET', path);
    expect(errorOf(r)).toMatchObject({ status: 403, code: 'ERR_POLICY_DENIED' });
    expect(upstreamSaw(marker)).toBe(0);
  });

  it.each([
    ['dot segments', '/repos/acme/../evil'],
    ['encoded dot segments', '/repos/acme/%2e%2e/evil'],
  ])('%s are refused before any policy (400), never reaching upstream', async (_what, path) => {
    const { r, marker } = await send('GET', path);
    expect(statusOf(r)).toBe(400);
    expect(upstreamSaw(marker)).toBe(0);
  });

  it('the agent cannot set or clear its own policy; it can read and check it', async () => {
    const f = join(e.t.dir, 'open.json');
    writeFileSync(f, JSON.stringify({ default: 'allow', rules: [] }));
    for (const args of [
      ['policy', 'set', 'other', f],
      ['policy', 'clear', 'other'],
    ]) {
      const r = await e.cli(['--profile', 'other', ...args]);
      expect(r.code).toBe(5);
      expect(r.stderr).toContain('ERR_AUTH_NOT_OWNER');
    }
    const show = JSON.parse(await e.ok(['--profile', 'other', 'policy', 'show', 'other', '--json'])) as {
      rules: unknown[];
    };
    expect(show.rules).toHaveLength(5);
    const check = await e.cli([
      '--profile',
      'other',
      'policy',
      'check',
      'other',
      'DELETE',
      `https://${HOST.api}/x`,
    ]);
    expect(check.stdout).toMatch(/deny/);
    expect(check.stdout).toMatch(/rules\[1\]/);
  });

  it('explain reports the policy decision beside the provider and connection', async () => {
    const r = await e.cli([
      '--profile',
      'other',
      'explain',
      `https://${HOST.api}/repos/acme/x`,
      '--method',
      'DELETE',
    ]);
    expect(r.stdout).toMatch(/policy/i);
    expect(r.stdout).toMatch(/deny/);
    expect(r.stdout).toMatch(/rule 1/);
  });

  it('a change applies from the next request, with no restart', async () => {
    await e.ok(['policy', 'clear', 'other']);
    expect(statusOf((await send('DELETE', '/repos/acme/widget')).r)).toBe(200);
    await setPolicy(EXAMPLE);
    expect(errorOf((await send('DELETE', '/repos/acme/widget')).r)).toMatchObject({
      code: 'ERR_POLICY_DENIED',
    });
  });
});

describe('exe rules: which program may use the credential', () => {
  const python = ((): string | undefined => {
    try {
      return execFileSync('python3', ['-c', 'import os,sys;print(os.path.realpath(sys.executable))'])
        .toString()
        .trim();
    } catch {
      return undefined;
    }
  })();
  const curl = ((): string | undefined => {
    try {
      return realpathSync(execFileSync('sh', ['-c', 'command -v curl']).toString().trim());
    } catch {
      return undefined;
    }
  })();
  const viaCurl = () =>
    e.cli([
      '--profile',
      'other',
      'run',
      '--',
      'curl',
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `https://${HOST.api}/x`,
    ]);
  const viaPython = () =>
    e.cli([
      '--profile',
      'other',
      'run',
      '--',
      'python3',
      '-c',
      `import urllib.request,urllib.error\ntry:\n  print(urllib.request.urlopen("https://${HOST.api}/x").status)\nexcept urllib.error.HTTPError as e:\n  print(e.code)`,
    ]);

  it.skipIf(!python || !curl)('curl allowed and python3 refused, then the reverse', async () => {
    await setPolicy({ default: 'deny', rules: [{ provider: 'canaryco', exe: [curl], action: 'allow' }] });
    expect((await viaCurl()).stdout).toBe('200');
    expect((await viaPython()).stdout.trim()).toBe('403');
    await vi.waitFor(() => expect(audit('policy.deny').at(-1)).toMatchObject({ rule: null, exe: python }));
    await setPolicy({ default: 'deny', rules: [{ provider: 'canaryco', exe: [python], action: 'allow' }] });
    expect((await viaPython()).stdout.trim()).toBe('200');
    expect((await viaCurl()).stdout).toBe('403');
    const inject = audit('proxy.inject').at(-1);
    expect(inject).toMatchObject({ exe: python, rule: 0 });
    expect(typeof inject?.['pid']).toBe('number');
  });
});

describe('the record', () => {
  it('the audit chain verifies', async () => {
    const v = await e.cli(['audit', 'verify']);
    expect(v.code, v.stderr).toBe(0);
  });

  it('no canary anywhere', () => {
    expect(e.leaks()).toEqual([]);
  });
});
