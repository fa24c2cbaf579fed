import { describe, expect, it } from 'vitest';
import { isAppError } from '../../../src/errors.js';
import type { HeldEvent, HoldInput, HoldOutcome } from '../../../src/policy/approvals.js';
import { PgApprovalState, type PgApprovalOptions } from '../../../src/policy/pg-approvals.js';
import { FeedHub } from '../../../src/vault/change-feed.js';
import type { PgStore } from '../../../src/vault/pg-open.js';
import { hasPg } from '../../helpers/pg.js';
import { pgEngine } from '../vault/engines.js';

/**
 * Held approvals across nodes (SPEC section 10, issue 15 item 4): two states ("nodes" a and b), each
 * on its own store (pool and LISTEN connection) over one schema. A request held by one is listed and
 * answered by the other, and released on the holder within a second; an answer the holder cannot take
 * is taken back and reported as failed; lost nodes' rows end; timeouts fire on the holder.
 */

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

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isAppError(e)) return e.code;
    throw e;
  }
  return 'resolved';
}

/** The outcome, or 'pending' if it has not settled within ms. */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([p, new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms))]);
}

async function until(check: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.skipIf(!hasPg)('PgApprovalState: held approvals shared by nodes', () => {
  const fx = pgEngine();

  async function team(opts: Partial<PgApprovalOptions> = {}) {
    const schema = await fx.schemas.fresh();
    const key = fx.key();
    const stores: Record<string, PgStore> = {};
    const open = async (node: string, more: Partial<PgApprovalOptions> = {}) => {
      stores[node] ??= await fx.openPg(schema, key, { poolMax: 4 });
      const db = stores[node]!.db;
      await db.query(
        `INSERT INTO authsome_nodes (name, host, pid, heartbeat_at) VALUES ($1, 'test', 1, now())
         ON CONFLICT (name) DO UPDATE SET heartbeat_at = now()`,
        [node],
      );
      const s = await PgApprovalState.open({
        db,
        feed: stores[node]!.feed,
        node,
        maxHeld: 64,
        sweepMs: 200,
        pollMs: 200,
        ...opts,
        ...more,
      });
      fx.schemas.defer(() => s.close());
      const events: HeldEvent[] = [];
      s.subscribe((e) => events.push(e));
      return { s, events, db };
    };
    const rows = async (where = 'true') =>
      (
        await fx.schemas.admin<{ id: string; node: string; status: string; reason: string | null }>(
          `SELECT id, node, status, reason, decided_by FROM ${schema}.authsome_approvals WHERE ${where} ORDER BY since`,
        )
      ).rows;
    return { schema, open, rows };
  }

  it('a request held on B is listed by A, approved through A, and released on B within 1 s', async () => {
    // No poll and no sweep in the test's time: the answer travels by NOTIFY alone.
    const { open, rows } = await team({ pollMs: 60_000, sweepMs: 60_000 });
    const a = await open('a');
    const b = await open('b');
    const { held, outcome } = await b.s.hold(req(), 120_000);
    expect(held).toMatchObject({ ...req(), node: 'b' });
    const listed = await a.s.list();
    expect(listed).toEqual([{ ...held, since: listed[0]!.since }]);
    expect(Date.parse(listed[0]!.since)).toBe(Date.parse(held.since));
    const t0 = Date.now();
    const answered = await a.s.answer(held.id, 'approve', 'owner');
    expect(answered.id).toBe(held.id);
    // Reported done only once B took it: B's outcome is already there.
    expect(await within(outcome, 1000)).toEqual({ result: 'approved', by: 'owner', forMs: null });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await a.s.list()).toEqual([]);
    expect(await b.s.list()).toEqual([]);
    expect(await rows()).toMatchObject([{ id: held.id, status: 'approved', decided_by: 'owner' }]);
    // A's watchers saw B's hold and its release (approvals --follow on A).
    expect(await until(() => a.events.length >= 2, 2000)).toBe(true);
    expect(a.events.map((e) => [e.type, e.held.id])).toEqual([
      ['held', held.id],
      ['released', held.id],
    ]);
    expect(b.events.map((e) => e.type)).toEqual(['held', 'released']);
    // Answered once: a second answer on either node is not found.
    expect(await code(a.s.answer(held.id, 'reject', 'owner'))).toBe('ERR_APPROVAL_NOT_FOUND');
    expect(await code(b.s.answer(held.id, 'approve', 'owner'))).toBe('ERR_APPROVAL_NOT_FOUND');
  });

  it('a rejection through A reaches B; the holder answering itself works too; two answers at once: one wins', async () => {
    const { open } = await team();
    const a = await open('a');
    const b = await open('b');
    const one = await b.s.hold(req(), 120_000);
    await a.s.answer(one.held.id, 'reject', 'owner');
    expect(await within(one.outcome, 1000)).toEqual({ result: 'rejected', by: 'owner', reason: 'owner' });
    const two = await b.s.hold(req(), 120_000);
    await b.s.answer(two.held.id, 'approve', 'owner');
    expect(await within(two.outcome, 100)).toMatchObject({ result: 'approved' });
    const three = await b.s.hold(req(), 120_000);
    const race = await Promise.allSettled([
      a.s.answer(three.held.id, 'approve', 'owner'),
      b.s.answer(three.held.id, 'reject', 'owner'),
    ]);
    expect(race.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const lost = race.find((r): r is PromiseRejectedResult => r.status === 'rejected')!;
    expect(lost.reason).toMatchObject({ code: 'ERR_APPROVAL_NOT_FOUND' });
    const won = race[0]!.status === 'fulfilled' ? 'approved' : 'rejected';
    expect(await within(three.outcome, 1000)).toMatchObject({ result: won });
  });

  it('approve --for through A lets the same request through on B, and releases the identical one held there', async () => {
    const { open } = await team();
    const a = await open('a');
    const b = await open('b');
    const first = await b.s.hold(req(), 120_000);
    const same = await b.s.hold(req(), 120_000);
    const other = await b.s.hold(req({ path: '/repos/acme/y/pulls' }), 120_000);
    await a.s.answer(first.held.id, 'approve', 'owner', 600_000);
    expect(await within(first.outcome, 1000)).toEqual({ result: 'approved', by: 'owner', forMs: 600_000 });
    expect(await within(same.outcome, 1000)).toEqual({ result: 'approved', by: 'owner', forMs: 600_000 });
    expect((await a.s.list()).map((h) => h.id)).toEqual([other.held.id]);
    const now = Date.now();
    const g = (o: Partial<HoldInput>, at = now) => {
      const r = req(o);
      return b.s.granted(r.profile, r.connection, r.method, r.path, at);
    };
    expect(await g({})).toBe(true);
    expect(await g({ profile: 'other' })).toBe(false);
    expect(await g({ connection: 'personal' })).toBe(false);
    expect(await g({ method: 'PATCH' })).toBe(false);
    expect(await g({ path: '/repos/acme/y/pulls' })).toBe(false);
    expect(await g({}, now + 700_000)).toBe(false);
    // Deleting the profile (on A): B's held request of it is rejected, and the grant is gone.
    expect(await a.s.rejectAll('profile-deleted', 'agent')).toBe(1);
    expect(await within(other.outcome, 1000)).toEqual({
      result: 'rejected',
      by: null,
      reason: 'profile-deleted',
    });
    expect(await g({})).toBe(false);
  });

  it('times out on the holding node; a cancelled request is gone; past maxHeld (per node) 503', async () => {
    const { open, rows } = await team();
    const a = await open('a');
    const b = await open('b', { maxHeld: 2 });
    const short = await b.s.hold(req(), 300);
    expect(await within(short.outcome, 3000)).toEqual({ result: 'timeout' });
    expect(await rows(`id = '${short.held.id}'`)).toMatchObject([{ status: 'timeout' }]);
    expect(await code(a.s.answer(short.held.id, 'approve', 'owner'))).toBe('ERR_APPROVAL_NOT_FOUND');
    const x = await b.s.hold(req(), 120_000);
    await b.s.hold(req(), 120_000);
    expect(await code(b.s.hold(req(), 120_000))).toBe('ERR_POLICY_HELD_FULL');
    expect(await code(a.s.hold(req(), 120_000))).toBe('resolved'); // A has room of its own
    expect(await b.s.cancel(x.held.id)).toBe(true);
    expect(await x.outcome).toEqual({ result: 'cancelled' });
    expect(await code(a.s.answer(x.held.id, 'approve', 'owner'))).toBe('ERR_APPROVAL_NOT_FOUND');
    expect(await rows(`id = '${x.held.id}'`)).toMatchObject([{ status: 'cancelled' }]);
    expect(await code(b.s.hold(req(), 120_000))).toBe('resolved');
  });

  it('an answer the holding node does not take is taken back and fails with 503, never reported as done', async () => {
    const { open, rows, schema } = await team();
    const a = await open('a', { deliveryMs: 600 });
    // Node "c" is alive by its heartbeat but nothing on it takes answers (its LISTEN lost, say).
    await fx.schemas.admin(
      `INSERT INTO ${schema}.authsome_nodes (name, host, pid, heartbeat_at) VALUES ('c', 'x', 7, now())`,
    );
    await fx.schemas.admin(
      `INSERT INTO ${schema}.authsome_approvals (id, node, profile, provider, connection, method, path, since, expires)
       VALUES ('cccccccccccc', 'c', 'agent', 'github', 'work', 'POST', '/x', now(), now() + interval '2 minutes')`,
    );
    expect((await a.s.list()).map((h) => [h.id, h.node])).toEqual([['cccccccccccc', 'c']]);
    const t0 = Date.now();
    const e = await a.s.answer('cccccccccccc', 'approve', 'owner').then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isAppError(e) && e.code).toBe('ERR_STORE_UNAVAILABLE');
    expect(String((e as Error).message)).toContain('nothing was decided');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(550);
    expect(await rows()).toMatchObject([{ id: 'cccccccccccc', status: 'held', decided_by: null }]);
    expect(await a.s.list()).toHaveLength(1);
  });

  it("a lost node's held requests stop being listed and are rejected; a live holder taken for lost is told", async () => {
    const { open, rows, schema } = await team();
    const a = await open('a');
    const b = await open('b');
    // A node killed a while ago: heartbeat older than 15 s.
    await fx.schemas.admin(
      `INSERT INTO ${schema}.authsome_nodes (name, host, pid, heartbeat_at) VALUES ('dead', 'x', 9, now() - interval '1 minute')`,
    );
    await fx.schemas.admin(
      `INSERT INTO ${schema}.authsome_approvals (id, node, profile, provider, connection, method, path, since, expires)
       VALUES ('dddddddddddd', 'dead', 'agent', 'github', 'work', 'POST', '/x', now(), now() + interval '2 minutes')`,
    );
    expect(await a.s.list()).toEqual([]);
    expect(await code(a.s.answer('dddddddddddd', 'approve', 'owner'))).toBe('ERR_APPROVAL_NOT_FOUND');
    expect(await until(async () => (await rows(`id = 'dddddddddddd'`))[0]?.status === 'rejected', 5000)).toBe(
      true,
    );
    expect(await rows(`id = 'dddddddddddd'`)).toMatchObject([{ reason: 'node-lost' }]);
    // B is alive but its heartbeat went stale (its database link was down, say): A ends B's rows, and
    // B, hearing of it, refuses the request rather than keep it waiting on a row no one lists.
    const held = await b.s.hold(req(), 120_000);
    await fx.schemas.admin(
      `UPDATE ${schema}.authsome_nodes SET heartbeat_at = now() - interval '1 minute' WHERE name = 'b'`,
    );
    expect(await within(held.outcome, 5000)).toEqual({ result: 'rejected', by: null, reason: 'node-lost' });
  });

  it('a node starting again under its name rejects what it held before (a crash leaves nothing alive)', async () => {
    const { open, rows } = await team();
    const b = await open('b');
    const held = await b.s.hold(req(), 120_000);
    // The "restarted" b: the old process's requests have no client any more.
    await open('b');
    expect(await within(held.outcome, 2000)).toEqual({ result: 'rejected', by: null, reason: 'shutdown' });
    expect(await rows()).toMatchObject([{ status: 'rejected', reason: 'shutdown' }]);
  });

  it('stopping rejects only what this node holds; the other node keeps its own', async () => {
    const { open } = await team();
    const a = await open('a');
    const b = await open('b');
    const onA = await a.s.hold(req(), 120_000);
    const onB = await b.s.hold(req(), 120_000);
    expect(await b.s.rejectAll('shutdown')).toBe(1);
    expect(await onB.outcome).toEqual({ result: 'rejected', by: null, reason: 'shutdown' });
    expect(await within(onA.outcome, 300)).toBe('pending');
    expect((await b.s.list()).map((h) => h.id)).toEqual([onA.held.id]);
  });

  it('fails closed: no hold while the change feed is down, and 503 while the database is unreachable', async () => {
    const { open } = await team();
    const a = await open('a');
    const schema = await fx.schemas.fresh();
    const store = await fx.openPg(schema, fx.key());
    const down = new FeedHub(false);
    const s = await PgApprovalState.open({ db: store.db, feed: down, node: 'x', maxHeld: 4 });
    fx.schemas.defer(() => s.close());
    const e = await s.hold(req(), 1000).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isAppError(e) && [e.code, e.status]).toEqual(['ERR_STORE_UNAVAILABLE', 503]);
    expect(await s.list()).toEqual([]);
    const held = await a.s.hold(req(), 120_000);
    await a.db.close();
    for (const p of [
      a.s.list(),
      a.s.answer(held.held.id, 'approve', 'owner'),
      a.s.granted('agent', 'work', 'POST', '/x', Date.now()),
      a.s.hold(req(), 1000),
    ] as Array<Promise<unknown>>)
      expect(await code(p)).toBe('ERR_STORE_UNAVAILABLE');
    // The held request is still released on its node when its client leaves, database or not.
    expect(await a.s.cancel(held.held.id)).toBe(true);
    expect(await held.outcome).toEqual<HoldOutcome>({ result: 'cancelled' });
  });
});
