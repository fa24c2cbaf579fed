import { afterEach, describe, expect, it, vi } from 'vitest';
import { follow } from '../../../src/cli/commands/policy.js';
import type { HeldRequest } from '../../../src/policy/approvals.js';

const held = (id: string, path = '/repos/acme/x/pulls'): HeldRequest => ({
  id,
  profile: 'agent',
  provider: 'github',
  connection: 'work',
  method: 'POST',
  path,
  exe: '/usr/bin/gh',
  pid: 42,
  since: new Date().toISOString(),
  rule: 2,
});

/** A daemon that answers the pages given, then stops the loop. */
function daemon(pages: Array<{ version: number; approvals: HeldRequest[]; released: unknown[] }>) {
  const calls: string[] = [];
  return {
    calls,
    client: {
      call: async <T>(_m: string, path: string): Promise<T> => {
        calls.push(path);
        const p = pages.shift();
        if (!p) throw new Error('end of test');
        return p as T;
      },
    },
  };
}

describe('approvals --follow', () => {
  const out: string[] = [];
  afterEach(() => {
    vi.restoreAllMocks();
    out.length = 0;
  });
  const capture = () =>
    vi
      .spyOn(process.stdout, 'write')
      .mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));

  it('--json: one SPEC-shaped object per line, each held request once, long-polling from the last version', async () => {
    const d = daemon([
      { version: 1, approvals: [held('aaaaaaaaaaaa')], released: [] },
      { version: 2, approvals: [held('aaaaaaaaaaaa'), held('bbbbbbbbbbbb', '/x')], released: [] },
      {
        version: 3,
        approvals: [held('bbbbbbbbbbbb', '/x')],
        released: [{ id: 'aaaaaaaaaaaa', result: 'approved' }],
      },
    ]);
    capture();
    await expect(follow(d.client, { json: true, color: false })).rejects.toThrow('end of test');
    const lines = out.join('').trim().split('\n');
    const spec = (h: HeldRequest) => ({
      id: h.id,
      profile: h.profile,
      provider: h.provider,
      connection: h.connection,
      method: h.method,
      path: h.path,
      exe: h.exe,
      since: expect.any(String),
    });
    // exactly the eight fields of SPEC 9, in that order
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([
      spec(held('aaaaaaaaaaaa')),
      spec(held('bbbbbbbbbbbb', '/x')),
    ]);
    expect(Object.keys(JSON.parse(lines[0]!) as object)).toEqual(Object.keys(spec(held('x'))));
    expect(d.calls).toEqual([
      '/v1/approvals',
      '/v1/approvals?since=1&wait=20000',
      '/v1/approvals?since=2&wait=20000',
      '/v1/approvals?since=3&wait=20000',
    ]);
  });

  it('for people: the list, then each request held and released as it happens', async () => {
    const d = daemon([
      { version: 5, approvals: [], released: [] },
      { version: 6, approvals: [held('cccccccccccc')], released: [] },
      { version: 7, approvals: [], released: [{ id: 'cccccccccccc', result: 'rejected' }] },
    ]);
    capture();
    await expect(follow(d.client, { json: false, color: false })).rejects.toThrow('end of test');
    const text = out.join('');
    expect(text).toContain('No requests wait for approval; waiting');
    expect(text).toMatch(
      /held\s+cccccccccccc\s+agent\s+github:work\s+POST \/repos\/acme\/x\/pulls\s+\/usr\/bin\/gh \(42\)/,
    );
    expect(text).toMatch(/rejected\s+cccccccccccc\s+POST \/repos\/acme\/x\/pulls after \d+s/);
  });
});
