import { randomBytes } from 'node:crypto';
import { AppError } from '../errors.js';

/**
 * Held approvals (SPEC section 9): a request an `approve` rule matched waits, its client connection
 * open, until the owner approves or rejects it, or the timeout passes. Behind an interface, so team
 * mode (SPEC section 10) can hold them in PostgreSQL and an approval given through any node releases
 * the request; the in-memory state below serves one daemon.
 */
export interface HeldRequest {
  /** 12 characters of a-z2-7 (60 random bits): short to type, nothing to guess. */
  readonly id: string;
  readonly profile: string;
  readonly provider: string;
  readonly connection: string;
  readonly method: string;
  /** Without the query. */
  readonly path: string;
  readonly exe: string | null;
  readonly pid: number | null;
  /** ISO time it was held. */
  readonly since: string;
  /** The approve rule's index (null if ever held by a default). */
  readonly rule: number | null;
  /** Team mode: the node whose proxy holds the request (its client connection). */
  readonly node?: string;
}

export type HoldInput = Omit<HeldRequest, 'id' | 'since' | 'node'>;

/** How a hold ended. The proxy sends the request on `approved` only. */
export type HoldOutcome =
  | { readonly result: 'approved'; readonly by: string; readonly forMs: number | null }
  | { readonly result: 'rejected'; readonly by: string | null; readonly reason: RejectReason }
  | { readonly result: 'timeout' }
  /** The client went away (cancel): nothing to answer, nothing goes upstream. */
  | { readonly result: 'cancelled' };

/**
 * owner: `authsome reject`; shutdown: the daemon stops; profile-deleted: the profile is gone;
 * node-lost (team mode): the node holding it stopped answering, so another node closed its record.
 */
export type RejectReason = 'owner' | 'shutdown' | 'profile-deleted' | 'node-lost';

export type HeldEvent =
  | { readonly type: 'held'; readonly held: HeldRequest }
  | { readonly type: 'released'; readonly held: HeldRequest; readonly outcome: HoldOutcome };

export interface ApprovalState {
  /** Holds a request; throws ERR_POLICY_HELD_FULL past the cap. `outcome` settles exactly once. */
  hold(req: HoldInput, timeoutMs: number): Promise<{ held: HeldRequest; outcome: Promise<HoldOutcome> }>;
  /** What is held now, oldest first. */
  list(): Promise<HeldRequest[]>;
  /**
   * The owner's answer (the daemon checks who may answer). Approving with `forMs` also lets the same
   * profile, connection, method and path through for that long, those held now included.
   * ERR_APPROVAL_NOT_FOUND for an unknown, answered, timed-out or cancelled id.
   */
  answer(id: string, decision: 'approve' | 'reject', by: string, forMs?: number): Promise<HeldRequest>;
  /** True while an `approve --for` grant covers this request. */
  granted(profile: string, connection: string, method: string, path: string, now: number): Promise<boolean>;
  /** The client went away: forget the request (its outcome settles as `cancelled`). */
  cancel(id: string): Promise<boolean>;
  /** Rejects every held request (or one profile's); returns how many. */
  rejectAll(reason: RejectReason, profile?: string): Promise<number>;
  /** Every hold and release, as it happens (`approvals --follow`, the dashboard). Returns unsubscribe. */
  subscribe(listener: (ev: HeldEvent) => void): () => void;
}

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
export const APPROVAL_ID = /^[a-z2-7]{12}$/;

export function newApprovalId(): string {
  const bytes = randomBytes(12);
  let id = '';
  for (const b of bytes) id += ID_ALPHABET[b & 31];
  return id;
}

export function notFound(id: string): AppError {
  return new AppError(
    'ERR_APPROVAL_NOT_FOUND',
    `no request waiting for approval has id ${APPROVAL_ID.test(id) ? id : '(malformed)'}`,
    'it was answered, timed out or its client left; list what waits with `authsome approvals`',
  );
}

const grantKey = (profile: string, connection: string, method: string, path: string) =>
  `${profile}\0${connection}\0${method}\0${path}`;

interface Entry {
  readonly held: HeldRequest;
  readonly settle: (o: HoldOutcome) => void;
  readonly timer: unknown;
}

export interface MemoryApprovalOptions {
  maxHeld: number;
  now?: () => number;
  /** Injected for tests; defaults to unref'd timers, so a held request never keeps the process up. */
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
}

export class MemoryApprovalState implements ApprovalState {
  readonly #held = new Map<string, Entry>();
  readonly #grants = new Map<string, number>();
  readonly #listeners = new Set<(ev: HeldEvent) => void>();
  readonly #maxHeld: number;
  readonly #now: () => number;
  readonly #setTimer: (fn: () => void, ms: number) => unknown;
  readonly #clearTimer: (t: unknown) => void;

  constructor(opts: MemoryApprovalOptions) {
    this.#maxHeld = opts.maxHeld;
    this.#now = opts.now ?? Date.now;
    this.#setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms).unref());
    this.#clearTimer = opts.clearTimer ?? ((t) => clearTimeout(t as NodeJS.Timeout));
  }

  async hold(
    req: HoldInput,
    timeoutMs: number,
  ): Promise<{ held: HeldRequest; outcome: Promise<HoldOutcome> }> {
    if (this.#held.size >= this.#maxHeld)
      throw new AppError(
        'ERR_POLICY_HELD_FULL',
        `${this.#held.size} requests already wait for approval (policy.maxHeld)`,
        'answer them with `authsome approvals`, `authsome approve ID` or `authsome reject ID`',
      );
    let id = newApprovalId();
    while (this.#held.has(id)) id = newApprovalId();
    const held: HeldRequest = Object.freeze({
      id,
      profile: req.profile,
      provider: req.provider,
      connection: req.connection,
      method: req.method,
      path: req.path,
      exe: req.exe,
      pid: req.pid,
      since: new Date(this.#now()).toISOString(),
      rule: req.rule,
    });
    let settle!: (o: HoldOutcome) => void;
    const outcome = new Promise<HoldOutcome>((resolve) => (settle = resolve));
    const timer = this.#setTimer(() => this.#release(id, { result: 'timeout' }), timeoutMs);
    this.#held.set(id, { held, settle, timer });
    this.#emit({ type: 'held', held });
    return { held, outcome };
  }

  async list(): Promise<HeldRequest[]> {
    return [...this.#held.values()].map((e) => e.held);
  }

  async answer(id: string, decision: 'approve' | 'reject', by: string, forMs?: number): Promise<HeldRequest> {
    const e = this.#held.get(id);
    if (!e) throw notFound(id);
    if (decision === 'reject') {
      this.#release(id, { result: 'rejected', by, reason: 'owner' });
      return e.held;
    }
    const outcome: HoldOutcome = { result: 'approved', by, forMs: forMs ?? null };
    this.#release(id, outcome);
    if (forMs !== undefined && forMs > 0) {
      const h = e.held;
      const key = grantKey(h.profile, h.connection, h.method, h.path);
      this.#grants.set(key, this.#now() + forMs);
      // The grant covers the same request held now too: one answer releases the queue of them.
      for (const other of [...this.#held.values()])
        if (grantKey(other.held.profile, other.held.connection, other.held.method, other.held.path) === key)
          this.#release(other.held.id, outcome);
    }
    this.#pruneGrants();
    return e.held;
  }

  async granted(
    profile: string,
    connection: string,
    method: string,
    path: string,
    now: number,
  ): Promise<boolean> {
    if (this.#grants.size === 0) return false;
    const until = this.#grants.get(grantKey(profile, connection, method, path));
    return until !== undefined && now < until;
  }

  async cancel(id: string): Promise<boolean> {
    return this.#release(id, { result: 'cancelled' });
  }

  async rejectAll(reason: RejectReason, profile?: string): Promise<number> {
    let n = 0;
    for (const e of [...this.#held.values()]) {
      if (profile !== undefined && e.held.profile !== profile) continue;
      if (this.#release(e.held.id, { result: 'rejected', by: null, reason })) n++;
    }
    if (profile !== undefined)
      for (const k of [...this.#grants.keys()]) if (k.startsWith(`${profile}\0`)) this.#grants.delete(k);
    return n;
  }

  subscribe(listener: (ev: HeldEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Settles one held request once; false when it was no longer held. */
  #release(id: string, outcome: HoldOutcome): boolean {
    const e = this.#held.get(id);
    if (!e) return false;
    this.#held.delete(id);
    this.#clearTimer(e.timer);
    e.settle(outcome);
    this.#emit({ type: 'released', held: e.held, outcome });
    return true;
  }

  #pruneGrants(): void {
    const now = this.#now();
    for (const [k, until] of this.#grants) if (until <= now) this.#grants.delete(k);
  }

  #emit(ev: HeldEvent): void {
    for (const l of this.#listeners) {
      try {
        l(ev);
      } catch {
        // a failing watcher (a closed --follow stream) must not stop the others or the release
      }
    }
  }
}
