import { AppError } from '../errors.js';
import type { ChangeFeed } from '../vault/change-feed.js';
import type { PgHandle } from '../vault/pg-store.js';
import {
  newApprovalId,
  notFound,
  type ApprovalState,
  type HeldEvent,
  type HeldRequest,
  type HoldInput,
  type HoldOutcome,
  type RejectReason,
} from './approvals.js';
import { heldOf, outcomeOf, SQL, type ApprovalRow, type Status } from './pg-approval-rows.js';
import { LOST, RemoteHolds } from './pg-approval-remote.js';

/**
 * Held approvals shared by the nodes of a team (SPEC section 10: "an approval given through any node
 * releases the held request"). The node whose proxy keeps the client connection holds the request in
 * authsome_approvals; any node lists every live node's held requests and may decide one. A decision is
 * written to the row, reaches the holder on the change feed's channel (the table's trigger NOTIFYs
 * 'approval/<id>'), and counts as given only once the holder has claimed it (delivered_at): the node
 * that answered waits for that, and takes its decision back if the holder does not claim it in time,
 * so an approval that could not be delivered is never reported as done. Under the notifications a
 * poll (every pollMs while this node holds anything) claims decisions a lost notification left behind.
 *
 * Timeouts fire on the holding node (its own timers). `maxHeld` is per node: each node holds its own
 * client connections, and one busy node must not fill the others' room. A node that stops rejects what
 * it held; a node that is killed leaves rows that the other nodes reject once its heartbeat is stale
 * (staleMs, the rule of authsome_nodes), and that no node lists meanwhile past that age; a node that
 * starts again rejects its own leftovers at once. While the change feed is down nothing new is held
 * (503 ERR_STORE_UNAVAILABLE): an answer might never be heard.
 */

export interface PgApprovalOptions {
  readonly db: PgHandle;
  readonly feed: ChangeFeed;
  /** This node's name (authsome_nodes.name): its rows are the ones it holds. */
  readonly node: string;
  /** settings.policy.maxHeld, per node. */
  readonly maxHeld: number;
  readonly now?: () => number;
  /** A node whose heartbeat is older than this is lost (default 15 s, daemon/nodes.ts STALE_MS). */
  readonly staleMs?: number;
  /** How long an answer waits for the holding node to claim it (default 5 s). */
  readonly deliveryMs?: number;
  /** The safety-net poll for this node's undelivered decisions (default 1 s). */
  readonly pollMs?: number;
  /** Lost nodes' rows, long-expired rows, old rows and grants are swept this often (default 5 s). */
  readonly sweepMs?: number;
  readonly setTimer?: (fn: () => void, ms: number) => unknown;
  readonly clearTimer?: (t: unknown) => void;
}

interface Local {
  readonly held: HeldRequest;
  readonly settle: (o: HoldOutcome) => void;
  timer: unknown;
  /** Its row is committed (before that, a missing row is not a lost one). */
  stored: boolean;
}

const PREFIX = 'approval/';

function unavailable(message: string): AppError {
  return new AppError(
    'ERR_STORE_UNAVAILABLE',
    message,
    "check the database and this node's connection to it; try again once it is back",
  );
}

export class PgApprovalState implements ApprovalState {
  readonly #db: PgHandle;
  readonly #feed: ChangeFeed;
  readonly #node: string;
  readonly #maxHeld: number;
  readonly #now: () => number;
  readonly #staleMs: number;
  readonly #deliveryMs: number;
  readonly #pollMs: number;
  readonly #sweepMs: number;
  readonly #setTimer: (fn: () => void, ms: number) => unknown;
  readonly #clearTimer: (t: unknown) => void;
  readonly #local = new Map<string, Local>();
  /** Other nodes' held requests, for the events of `approvals --follow` and the dashboard. */
  readonly #remote: RemoteHolds;
  readonly #listeners = new Set<(ev: HeldEvent) => void>();
  readonly #waiters = new Map<string, Set<() => void>>();
  /** Ends this node could not write yet (database down): written by the next maintenance. */
  readonly #unfinished = new Map<string, { status: Status; reason: RejectReason | null }>();
  #chain: Promise<void> = Promise.resolve();
  #tick: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #maintaining = false;
  #lastSweep = 0;
  #closed = false;

  private constructor(opts: PgApprovalOptions) {
    this.#db = opts.db;
    this.#feed = opts.feed;
    this.#node = opts.node;
    this.#maxHeld = opts.maxHeld;
    this.#now = opts.now ?? Date.now;
    this.#staleMs = opts.staleMs ?? 15_000;
    this.#deliveryMs = opts.deliveryMs ?? 5_000;
    this.#pollMs = opts.pollMs ?? 1_000;
    this.#sweepMs = opts.sweepMs ?? 5_000;
    this.#setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms).unref());
    this.#clearTimer = opts.clearTimer ?? ((t) => clearTimeout(t as NodeJS.Timeout));
    this.#remote = new RemoteHolds({
      node: this.#node,
      row: (id) => this.#row(id),
      live: async () => (await this.#db.query<ApprovalRow>(SQL.list, [this.#node, this.#staleMs])).rows,
      emit: (ev) => this.#emit(ev),
    });
  }

  /** Rejects what this node left held before (a crash), learns what the others hold, starts listening. */
  static async open(opts: PgApprovalOptions): Promise<PgApprovalState> {
    const s = new PgApprovalState(opts);
    await s.#db.query(SQL.leftovers, [s.#node]);
    s.#unsubscribe = s.#feed.subscribe(PREFIX, (key) => s.#heard(key));
    await s.#remote.resync(false);
    s.#tick = setInterval(() => void s.#maintain(), s.#pollMs);
    s.#tick.unref();
    return s;
  }

  async hold(
    req: HoldInput,
    timeoutMs: number,
  ): Promise<{ held: HeldRequest; outcome: Promise<HoldOutcome> }> {
    if (this.#closed) throw unavailable('this node is stopping');
    if (!this.#feed.up)
      throw unavailable(
        "this node's change feed is down, so an answer given through another node could not reach it",
      );
    if (this.#local.size >= this.#maxHeld)
      throw new AppError(
        'ERR_POLICY_HELD_FULL',
        `${this.#local.size} requests already wait for approval on this node (policy.maxHeld)`,
        'answer them with `authsome approvals`, `authsome approve ID` or `authsome reject ID`',
      );
    const since = this.#now();
    for (let attempt = 0; attempt < 3; attempt++) {
      const id = newApprovalId();
      if (this.#local.has(id)) continue;
      const held: HeldRequest = Object.freeze({
        id,
        profile: req.profile,
        provider: req.provider,
        connection: req.connection,
        method: req.method,
        path: req.path,
        exe: req.exe,
        pid: req.pid,
        since: new Date(since).toISOString(),
        rule: req.rule,
        node: this.#node,
      });
      let settle!: (o: HoldOutcome) => void;
      const outcome = new Promise<HoldOutcome>((resolve) => (settle = resolve));
      // Known before its row commits: its own notification must not be taken for another node's hold.
      const entry: Local = { held, settle, timer: undefined, stored: false };
      this.#local.set(id, entry);
      let inserted: boolean;
      try {
        const r = await this.#db.query(SQL.insert, [
          id,
          this.#node,
          req.profile,
          req.provider,
          req.connection,
          req.method,
          req.path,
          req.exe,
          req.pid,
          req.rule,
          since,
          since + timeoutMs,
        ]);
        inserted = (r.rowCount ?? 0) > 0;
      } catch (e) {
        this.#local.delete(id);
        throw e;
      }
      if (!inserted) {
        this.#local.delete(id); // an id another node holds: draw again
        continue;
      }
      entry.stored = true;
      entry.timer = this.#setTimer(() => void this.#timeout(id), timeoutMs);
      this.#emit({ type: 'held', held });
      return { held, outcome };
    }
    throw new AppError('ERR_INTERNAL', 'could not draw an unused approval id');
  }

  async list(): Promise<HeldRequest[]> {
    const { rows } = await this.#db.query<ApprovalRow>(SQL.list, [this.#node, this.#staleMs]);
    // This node's rows are only those it still holds (an end it could not write yet is not held).
    return rows.filter((r) => r.node !== this.#node || this.#local.has(r.id)).map(heldOf);
  }

  async answer(id: string, decision: 'approve' | 'reject', by: string, forMs?: number): Promise<HeldRequest> {
    const status: Status = decision === 'approve' ? 'approved' : 'rejected';
    const grantMs = decision === 'approve' && forMs !== undefined && forMs > 0 ? forMs : null;
    const { rows } = await this.#db.query<ApprovalRow>(SQL.decide, [
      id,
      status,
      by,
      decision === 'reject' ? 'owner' : null,
      grantMs,
      this.#node,
      this.#staleMs,
    ]);
    const decided = rows[0];
    if (decided === undefined) throw notFound(id);
    if (decided.node === this.#node && !this.#local.has(id)) {
      // A row of this node that it no longer holds (its end is not written yet): nothing waits.
      await this.#db.query(SQL.undecide, [id, status]);
      throw notFound(id);
    }
    const row = await this.#deliver(id, status);
    // Ended otherwise before the holder took the answer: its client left, it timed out, its node stopped.
    if (row.status !== status) throw notFound(id);
    const held = heldOf(row);
    if (grantMs !== null) await this.#grant(held, by, grantMs);
    return held;
  }

  async granted(
    profile: string,
    connection: string,
    method: string,
    path: string,
    now: number,
  ): Promise<boolean> {
    const r = await this.#db.query(SQL.granted, [profile, connection, method, path, now]);
    return (r.rowCount ?? 0) > 0;
  }

  async cancel(id: string): Promise<boolean> {
    if (!this.#settle(id, { result: 'cancelled' })) return false;
    await this.#end([id], 'cancelled', null);
    return true;
  }

  async rejectAll(reason: RejectReason, profile?: string): Promise<number> {
    const mine = [...this.#local.values()]
      .filter((e) => e.stored && (profile === undefined || e.held.profile === profile))
      .map((e) => e.held.id);
    for (const id of mine) this.#settle(id, { result: 'rejected', by: null, reason });
    await this.#end(mine, 'rejected', reason);
    // This node stopping ends only what it holds; a deleted profile's requests end on every node.
    if (profile === undefined) return mine.length;
    const others = await this.#db.query<{ id: string; node: string }>(SQL.rejectProfile, [profile]);
    await this.#db.query(SQL.dropGrants, [profile]);
    return mine.length + others.rows.filter((r) => r.node !== this.#node).length;
  }

  subscribe(listener: (ev: HeldEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops listening and the timers; what this node still holds is rejected (daemon stop). */
  async close(): Promise<void> {
    if (this.#local.size > 0) await this.rejectAll('shutdown').catch(() => undefined);
    this.#closed = true;
    clearInterval(this.#tick);
    this.#unsubscribe?.();
    for (const id of [...this.#waiters.keys()]) this.#wake(id);
    await this.#chain;
  }

  // --- delivery ------------------------------------------------------------------------------

  /**
   * After a decision is written: waits until the holder has claimed it, and returns the row. If it
   * is not claimed within deliveryMs the decision is taken back and the answer fails (503).
   */
  async #deliver(id: string, status: Status): Promise<ApprovalRow> {
    const deadline = Date.now() + this.#deliveryMs;
    if (this.#local.has(id)) await this.#check(id); // held here: delivered at once
    for (;;) {
      const row = await this.#row(id);
      if (row === undefined || row.status === 'held') throw notFound(id);
      if (row.delivered_at !== null) return row;
      if (Date.now() >= deadline) {
        const back = await this.#db.query(SQL.undecide, [id, status]);
        if ((back.rowCount ?? 0) > 0)
          throw unavailable(
            `node ${row.node}, which holds request ${id}, did not take the answer within ${Math.round(this.#deliveryMs / 1000)} s; nothing was decided`,
          );
        continue; // claimed (or ended) at the last moment: read it again
      }
      await this.#waitFor(id, Math.min(100, deadline - Date.now()));
    }
  }

  /** approve --for: the grant, and the same requests held now on any node approved with it. */
  async #grant(held: HeldRequest, by: string, forMs: number): Promise<void> {
    try {
      const k = [held.profile, held.connection, held.method, held.path];
      await this.#db.query(SQL.grant, [...k, this.#now() + forMs]);
      const same = await this.#db.query<{ id: string; node: string }>(SQL.approveSame, [...k, by, forMs]);
      for (const r of same.rows) if (this.#local.has(r.id)) void this.#check(r.id);
    } catch (e) {
      throw unavailable(
        `request ${held.id} was approved and went on, but the --for grant could not be stored (${e instanceof Error ? e.message : 'database error'})`,
      );
    }
  }

  /** A request this node holds: if its row was decided, claim the decision and release it. */
  async #check(id: string, again = true): Promise<void> {
    if (!this.#local.get(id)?.stored) return;
    let row: ApprovalRow | undefined;
    try {
      row = await this.#row(id);
      if (!this.#local.has(id)) return;
      if (row === undefined) return void this.#settle(id, LOST); // removed by hand: nothing to wait for
      if (row.status === 'held') return;
      if (row.delivered_at === null) {
        const claimed = await this.#db.query<ApprovalRow>(SQL.claim, [id]);
        const won = claimed.rows[0];
        if (won !== undefined) return void this.#settle(id, outcomeOf(won) ?? LOST);
        if (again) return this.#check(id, false); // taken back, or ended by a sweep: look once more
        return;
      }
    } catch {
      return; // the database is down: the poll tries again
    }
    this.#settle(id, outcomeOf(row) ?? LOST); // ended by another node (a sweep of this node's rows)
  }

  async #timeout(id: string): Promise<void> {
    if (!this.#local.has(id)) return;
    try {
      const r = await this.#db.query(SQL.end, [id, 'timeout', null]);
      if ((r.rowCount ?? 0) > 0) return void this.#settle(id, { result: 'timeout' });
      await this.#check(id); // a decision came first: it wins over the timeout
    } catch {
      // the database is down: the request times out all the same, and its row is ended later
    }
    // Whatever happened above, no request waits past its timeout.
    if (this.#settle(id, { result: 'timeout' })) await this.#end([id], 'timeout', null);
  }

  /** Writes the end of requests this node released; queued for the next maintenance if that fails. */
  async #end(ids: string[], status: Status, reason: RejectReason | null): Promise<void> {
    if (ids.length === 0) return;
    try {
      await this.#db.query(SQL.endAny, [ids, status, reason]);
      for (const id of ids) this.#unfinished.delete(id);
    } catch {
      for (const id of ids) this.#unfinished.set(id, { status, reason });
    }
  }

  #settle(id: string, outcome: HoldOutcome): boolean {
    const e = this.#local.get(id);
    if (!e) return false;
    this.#local.delete(id);
    this.#clearTimer(e.timer);
    e.settle(outcome);
    this.#emit({ type: 'released', held: e.held, outcome });
    return true;
  }

  async #row(id: string): Promise<ApprovalRow | undefined> {
    const { rows } = await this.#db.query<ApprovalRow>({
      name: 'authsome_approval_row',
      text: SQL.row,
      values: [id],
    });
    return rows[0];
  }

  // --- the feed ------------------------------------------------------------------------------

  #heard(key: string | undefined): void {
    if (this.#closed) return;
    if (key === undefined) {
      // The feed was down: anything may have changed. Every held request looks at its row again.
      for (const id of this.#local.keys()) void this.#check(id);
      for (const id of [...this.#waiters.keys()]) this.#wake(id);
      this.#enqueue(() => this.#remote.resync(true));
      return;
    }
    const id = key.slice(PREFIX.length);
    this.#wake(id);
    if (this.#local.has(id)) void this.#check(id);
    else this.#enqueue(() => this.#remote.heard(id));
  }

  /** Remote changes are handled one at a time, so a hold and its release are never seen out of order. */
  #enqueue(fn: () => Promise<void>): void {
    this.#chain = this.#chain.then(fn).catch(() => undefined);
  }

  #waitFor(id: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.#waiters.get(id);
      if (!set) this.#waiters.set(id, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.#waiters.get(id) === set) this.#waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      timer.unref();
      set.add(done);
    });
  }

  #wake(id: string): void {
    for (const w of [...(this.#waiters.get(id) ?? [])]) w();
  }

  // --- maintenance ---------------------------------------------------------------------------

  async #maintain(): Promise<void> {
    if (this.#closed || this.#maintaining) return;
    this.#maintaining = true;
    try {
      for (const [id, { status, reason }] of [...this.#unfinished]) await this.#end([id], status, reason);
      if ([...this.#local.values()].some((e) => e.stored)) {
        const { rows } = await this.#db.query<{ id: string }>(SQL.undelivered, [this.#node]);
        for (const { id } of rows) void this.#check(id);
      }
      if (Date.now() - this.#lastSweep >= this.#sweepMs) {
        this.#lastSweep = Date.now();
        await this.#db.query(SQL.sweepLost, [this.#node, this.#staleMs]);
        await this.#db.query(SQL.sweepExpired, [this.#node]);
        await this.#db.query(SQL.purge);
        this.#enqueue(() => this.#remote.resync(true));
      }
    } catch {
      // the database is down: everything here is tried again on the next tick
    } finally {
      this.#maintaining = false;
    }
  }

  #emit(ev: HeldEvent): void {
    for (const l of this.#listeners) {
      try {
        l(ev);
      } catch {
        // a failing watcher must not stop the others or the release
      }
    }
  }
}
