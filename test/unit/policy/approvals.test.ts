import { describe, expect, it } from 'vitest';
import { isAppError } from '../../../src/errors.js';
import {
  APPROVAL_ID,
  MemoryApprovalState,
  newApprovalId,
  type HeldEvent,
  type HoldInput,
} from '../../../src/policy/approvals.js';

/** Timers by hand: fire(ms) runs what is due, so timeouts are tested without waiting. */
function fakeTimers() {
  let now = 1_000_000;
  const timers = new Map<number, { at: number; fn: () => void }>();
  let next = 1;
  return {
    now: () => now,
    setTimer: (fn: () => void, ms: number) => {
      timers.set(next, { at: now + ms, fn });
      return next++;
    },
    clearTimer: (t: unknown) => void timers.delete(t as number),
    advance(ms: number) {
      now += ms;
      for (const [id, t] of [...timers])
        if (t.at <= now) {
          timers.delete(id);
          t.fn();
        }
    },
    get pending() {
      return timers.size;
    },
  };
}

const req = (over: Partial<HoldInput> = {}): HoldInput => ({
  profile: 'agent',
  provider: 'github',
  connection: 'work',
  method: 'POST',
  path: '/repos/acme/x/pulls',
  exe: '/usr/bin/gh',
  pid: 4242,
  rule: 2,
  ...over,
});

function setup(maxHeld = 64) {
  const t = fakeTimers();
  const s = new MemoryApprovalState({ maxHeld, now: t.now, setTimer: t.setTimer, clearTimer: t.clearTimer });
  const events: HeldEvent[] = [];
  s.subscribe((e) => events.push(e));
  return { t, s, events };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isAppError(e)) return e.code;
    throw e;
  }
  return 'resolved';
}

describe('MemoryApprovalState', () => {
  it('holds a request with a short random id and lists it until it is approved', async () => {
    const { s, t, events } = setup();
    const { held, outcome } = await s.hold(req(), 120_000);
    expect(held.id).toMatch(APPROVAL_ID);
    expect(held).toMatchObject({ ...req(), since: new Date(t.now()).toISOString() });
    expect(await s.list()).toEqual([held]);
    expect(await s.answer(held.id, 'approve', 'me')).toBe(held);
    expect(await outcome).toEqual({ result: 'approved', by: 'me', forMs: null });
    expect(await s.list()).toEqual([]);
    expect(t.pending).toBe(0);
    expect(events.map((e) => e.type)).toEqual(['held', 'released']);
  });

  it('rejects on the owner’s word, and times out when no one answers', async () => {
    const { s, t } = setup();
    const a = await s.hold(req(), 120_000);
    const b = await s.hold(req(), 120_000);
    await s.answer(a.held.id, 'reject', 'me');
    expect(await a.outcome).toEqual({ result: 'rejected', by: 'me', reason: 'owner' });
    t.advance(119_999);
    expect(await s.list()).toHaveLength(1);
    t.advance(1);
    expect(await b.outcome).toEqual({ result: 'timeout' });
    expect(await s.list()).toEqual([]);
  });

  it('answers each request once: a second answer, a timed-out or unknown id is ERR_APPROVAL_NOT_FOUND', async () => {
    const { s, t } = setup();
    const a = await s.hold(req(), 1000);
    await s.answer(a.held.id, 'approve', 'me');
    expect(await code(s.answer(a.held.id, 'reject', 'me'))).toBe('ERR_APPROVAL_NOT_FOUND');
    const b = await s.hold(req(), 1000);
    t.advance(1000);
    expect(await code(s.answer(b.held.id, 'approve', 'me'))).toBe('ERR_APPROVAL_NOT_FOUND');
    expect(await code(s.answer('aaaaaaaaaaaa', 'approve', 'me'))).toBe('ERR_APPROVAL_NOT_FOUND');
    expect(await code(s.answer('../../x', 'approve', 'me'))).toBe('ERR_APPROVAL_NOT_FOUND');
  });

  it('refuses to hold past maxHeld with ERR_POLICY_HELD_FULL, and has room again once one is answered', async () => {
    const { s } = setup(2);
    const a = await s.hold(req(), 1000);
    await s.hold(req(), 1000);
    expect(await code(s.hold(req(), 1000))).toBe('ERR_POLICY_HELD_FULL');
    await s.cancel(a.held.id);
    expect(await code(s.hold(req(), 1000))).toBe('resolved');
  });

  it('lets a client that went away be cancelled: gone from the list, outcome cancelled', async () => {
    const { s, t, events } = setup();
    const a = await s.hold(req(), 1000);
    expect(await s.cancel(a.held.id)).toBe(true);
    expect(await s.cancel(a.held.id)).toBe(false);
    expect(await a.outcome).toEqual({ result: 'cancelled' });
    expect(await s.list()).toEqual([]);
    expect(t.pending).toBe(0);
    expect(events.at(-1)).toMatchObject({ type: 'released', outcome: { result: 'cancelled' } });
  });

  it('grants the same profile, connection, method and path for --for, and only those', async () => {
    const { s, t } = setup();
    const a = await s.hold(req(), 120_000);
    const same = await s.hold(req(), 120_000);
    const other = await s.hold(req({ path: '/repos/acme/y/pulls' }), 120_000);
    await s.answer(a.held.id, 'approve', 'me', 600_000);
    // the identical request held meanwhile goes too; another path waits on
    expect(await same.outcome).toEqual({ result: 'approved', by: 'me', forMs: 600_000 });
    expect((await s.list()).map((h) => h.id)).toEqual([other.held.id]);
    const g = (o: Partial<HoldInput>, at = t.now()) => {
      const r = req(o);
      return s.granted(r.profile, r.connection, r.method, r.path, at);
    };
    expect(await g({})).toBe(true);
    expect(await g({ profile: 'other' })).toBe(false);
    expect(await g({ connection: 'personal' })).toBe(false);
    expect(await g({ method: 'PATCH' })).toBe(false);
    expect(await g({ path: '/repos/acme/x/pulls/1' })).toBe(false);
    expect(await g({}, t.now() + 599_999)).toBe(true);
    expect(await g({}, t.now() + 600_000)).toBe(false);
    // an approval without --for grants nothing
    await s.answer(other.held.id, 'approve', 'me');
    expect(await g({ path: '/repos/acme/y/pulls' })).toBe(false);
  });

  it('rejects everything held at shutdown, or one profile’s requests and grants when it is deleted', async () => {
    const { s, t } = setup();
    const a = await s.hold(req(), 1000);
    const b = await s.hold(req({ profile: 'other' }), 1000);
    const c = await s.hold(req({ profile: 'other', path: '/x' }), 1000);
    await s.answer(c.held.id, 'approve', 'me', 60_000);
    expect(await s.rejectAll('profile-deleted', 'other')).toBe(1);
    expect(await b.outcome).toEqual({ result: 'rejected', by: null, reason: 'profile-deleted' });
    expect(await s.granted('other', 'work', 'POST', '/x', t.now())).toBe(false);
    expect(await s.rejectAll('shutdown')).toBe(1);
    expect(await a.outcome).toEqual({ result: 'rejected', by: null, reason: 'shutdown' });
    expect(t.pending).toBe(0);
  });

  it('keeps telling other watchers when one throws, and stops telling one that unsubscribed', async () => {
    const { s } = setup();
    s.subscribe(() => {
      throw new Error('closed stream');
    });
    const seen: string[] = [];
    const off = s.subscribe((e) => seen.push(e.type));
    const a = await s.hold(req(), 1000);
    off();
    await s.answer(a.held.id, 'reject', 'me');
    expect(seen).toEqual(['held']);
    expect(await a.outcome).toMatchObject({ result: 'rejected' });
  });

  it('makes ids of 12 characters a-z2-7 that do not repeat', () => {
    const ids = new Set(Array.from({ length: 5000 }, newApprovalId));
    expect(ids.size).toBe(5000);
    for (const id of ids) expect(id).toMatch(APPROVAL_ID);
  });
});
