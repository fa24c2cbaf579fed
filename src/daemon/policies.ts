import { AppError } from '../errors.js';
import type { AuditInput, AuditSink } from '../audit/types.js';
import type { KvStore } from '../vault/types.js';
import type { PolicyGate } from '../proxy/types.js';
import { profileScope } from '../vault/scope.js';
import {
  compilePolicy,
  decide,
  MemoryApprovalState,
  MemoryRateState,
  parsePolicy,
  RateFoldLog,
  rateKey,
  type ApprovalState,
  type CompiledPolicy,
  type Decision,
  type HeldRequest,
  type HoldInput,
  type HoldOutcome,
  type Policy,
  type RateState,
  type RequestFacts,
  type TakeResult,
} from '../policy/index.js';

/** Relative key under the target profile's prefix: `profile/<handle>/policy` (SPEC section 9). */
const POLICY_KEY = 'policy';
const RECORD_VERSION = 1;

export interface StoredPolicy {
  readonly policy: Policy;
  readonly setAt: string;
  readonly setBy: string;
}

export interface PolicyServiceOptions {
  /** settings.policy.approvalTimeoutS, in ms. */
  readonly approvalTimeoutMs: number;
  /** settings.policy.maxHeld. */
  readonly maxHeld: number;
  readonly now?: () => number;
  /** Team mode passes shared states here; the defaults live in this process. */
  readonly approvals?: ApprovalState;
  readonly rates?: RateState;
  /** settings.policy.attributeCallers. */
  readonly attributeAll?: boolean;
  /**
   * Team mode: `() => feed.up`. While it returns false a change made through another node may go
   * unheard, so compiled policies are read through to the store instead of trusted from the cache
   * (SPEC section 10). Unset (LevelDB): the cache is always trusted, as before.
   */
  readonly fresh?: () => boolean;
}

type ReleasedNote = {
  readonly version: number;
  readonly id: string;
  readonly profile: string;
  readonly result: HoldOutcome['result'];
};

/**
 * The daemon's side of policies: the sealed records, a cache of compiled policies (dropped on every
 * set, clear and profile delete, so a change applies from the next request with no restart), the
 * held approvals, the rate buckets and the folding of `policy.rate_limited` records.
 *
 * For the proxy pipeline, after the connection is chosen and before the audit record:
 *   const d = await policies.decide(profile, { provider, connection, method, path, exe });
 *   deny    → 403 ERR_POLICY_DENIED, audit policy.deny {rule: d.ruleIndex, pid, exe, reason?}
 *   allow + d.rate → policies.takeRate(profile, connection, d): not ok → 429 with Retry-After,
 *             policies.rateLimited(profile, d, record) (folded: at most one record per second)
 *   approve → policies.granted(...) ? go on : policies.hold(...), audit policy.approval_wait,
 *             await outcome: approved → go on (audit policy.approved), rejected / timeout → 403 and
 *             audit; the client closing meanwhile → policies.approvals.cancel(held.id)
 */
export class PolicyService implements PolicyGate {
  readonly approvals: ApprovalState;
  readonly attributeAll: boolean;
  readonly rates: RateState;
  readonly approvalTimeoutMs: number;
  readonly #store: KvStore;
  readonly #audit: AuditSink;
  readonly #now: () => number;
  readonly #fresh: (() => boolean) | undefined;
  /** profile → its compiled policy (undefined: none set). The promise itself is cached: a hit allocates nothing. */
  readonly #cache = new Map<string, Promise<CompiledPolicy | undefined>>();
  readonly #fold = new RateFoldLog<AuditInput>();
  #foldTimer: NodeJS.Timeout | undefined;
  // `approvals --follow` long-polls: a version bumped on every hold and release, and who waits for it.
  #version = 0;
  readonly #released: ReleasedNote[] = [];
  readonly #waiters = new Set<() => void>();
  #closed = false;

  constructor(store: KvStore, audit: AuditSink, opts: PolicyServiceOptions) {
    this.#store = store;
    this.#audit = audit;
    this.#now = opts.now ?? Date.now;
    this.#fresh = opts.fresh;
    this.approvalTimeoutMs = opts.approvalTimeoutMs;
    this.attributeAll = opts.attributeAll ?? false;
    this.approvals = opts.approvals ?? new MemoryApprovalState({ maxHeld: opts.maxHeld, now: this.#now });
    this.rates = opts.rates ?? new MemoryRateState();
    this.approvals.subscribe((ev) => {
      this.#version++;
      if (ev.type === 'released') {
        this.#released.push({
          version: this.#version,
          id: ev.held.id,
          profile: ev.held.profile,
          result: ev.outcome.result,
        });
        if (this.#released.length > 256) this.#released.shift();
      }
      this.#wake();
    });
  }

  // --- the stored policies -------------------------------------------------------------------

  /** The profile's policy as stored (re-validated), or undefined. ERR_VAULT_CORRUPT for a damaged record. */
  async stored(profile: string): Promise<StoredPolicy | undefined> {
    const rec = await profileScope(this.#store, profile).get(POLICY_KEY);
    if (rec === undefined) return undefined;
    try {
      if (
        rec['version'] !== RECORD_VERSION ||
        typeof rec['setAt'] !== 'string' ||
        typeof rec['setBy'] !== 'string'
      )
        throw new TypeError('malformed');
      return { policy: parsePolicy(rec['policy']), setAt: rec['setAt'], setBy: rec['setBy'] };
    } catch {
      // Fail closed: the proxy refuses this profile's requests until the policy is set or cleared.
      throw new AppError(
        'ERR_VAULT_CORRUPT',
        `the stored policy of profile "${profile}" is damaged`,
        `set it again (authsome policy set ${profile} FILE) or clear it (authsome policy clear ${profile})`,
      );
    }
  }

  /** The compiled policy the proxy applies (cached), or undefined when none is set. */
  get(profile: string): Promise<CompiledPolicy | undefined> {
    if (this.#fresh !== undefined && !this.#fresh()) {
      // Read through, and keep nothing from before: the entries may be what the lost changes changed.
      if (this.#cache.size > 0) this.#cache.clear();
      return this.stored(profile).then((s) => (s ? compilePolicy(s.policy) : undefined));
    }
    const hit = this.#cache.get(profile);
    if (hit) return hit;
    const loading = this.stored(profile).then((s) => (s ? compilePolicy(s.policy) : undefined));
    // A damaged record is read again next time (it may be repaired). A set or clear drops the entry
    // once its write is done, so a read that raced it is never kept.
    loading.catch(() => this.#cache.get(profile) === loading && this.#cache.delete(profile));
    this.#cache.set(profile, loading);
    return loading;
  }

  /** decide() with the profile's current policy. */
  async decide(profile: string, facts: RequestFacts): Promise<Decision> {
    return decide(await this.get(profile), facts);
  }

  /** Stores a policy that parsePolicy accepted and whose exe paths are resolved. */
  async set(profile: string, policy: Policy, by: string): Promise<void> {
    await profileScope(this.#store, profile).put(POLICY_KEY, {
      version: RECORD_VERSION,
      policy: policy as unknown as Record<string, unknown>,
      setAt: new Date(this.#now()).toISOString(),
      setBy: by,
    });
    this.invalidate(profile);
  }

  /** Removes the profile's policy; false when it had none. */
  async clear(profile: string): Promise<boolean> {
    const scope = profileScope(this.#store, profile);
    // A damaged record exists too, and clearing it is the way out.
    const existed = await scope.get(POLICY_KEY).then(
      (v) => v !== undefined,
      () => true,
    );
    if (existed) await scope.del(POLICY_KEY);
    this.invalidate(profile);
    return existed;
  }

  /** Drops a cached policy (team mode calls this from the store's change feed too). */
  invalidate(profile: string): void {
    this.#cache.delete(profile);
  }

  /** Drops every cached policy (the change feed came back: anything may have changed meanwhile). */
  invalidateAll(): void {
    this.#cache.clear();
  }

  /** The profile was deleted: its cached policy, held requests and grants go with it. */
  async forget(profile: string): Promise<void> {
    this.invalidate(profile);
    await this.approvals.rejectAll('profile-deleted', profile);
  }

  // --- rates ---------------------------------------------------------------------------------

  /** One token of the deciding rule's bucket (ok when the decision has no rate). */
  takeRate(profile: string, connection: string, d: Decision): Promise<TakeResult> {
    if (d.rate === undefined || d.ruleKey === undefined) return Promise.resolve({ ok: true });
    return this.rates.take(rateKey(profile, connection, d.ruleKey), d.rate, this.#now());
  }

  /**
   * A request refused by a rate: its `policy.rate_limited` record is folded with the others of the
   * same rule and profile (SPEC 9) and written best effort, at most one a second.
   */
  rateLimited(profile: string, d: Decision, record: AuditInput): void {
    const key = `${profile}/${d.ruleKey ?? String(d.ruleIndex)}`;
    this.#write(this.#fold.add(key, record, this.#now()));
    if (this.#fold.pending > 0 && this.#foldTimer === undefined) {
      this.#foldTimer = setInterval(() => {
        this.#write(this.#fold.due(this.#now()));
        if (this.#fold.pending === 0) this.#stopFoldTimer();
      }, 1000);
      this.#foldTimer.unref();
    }
  }

  #write(records: AuditInput[]): Promise<unknown> {
    return Promise.all(records.map((r) => this.#audit.append(r).catch(() => undefined)));
  }

  #stopFoldTimer(): void {
    if (this.#foldTimer !== undefined) clearInterval(this.#foldTimer);
    this.#foldTimer = undefined;
  }

  // --- approvals -----------------------------------------------------------------------------

  /** Holds a request for the configured timeout (ERR_POLICY_HELD_FULL past policy.maxHeld). */
  hold(req: HoldInput): Promise<{ held: HeldRequest; outcome: Promise<HoldOutcome> }> {
    if (this.#closed)
      return Promise.reject(
        new AppError(
          'ERR_POLICY_APPROVAL_REJECTED',
          'the daemon is stopping',
          'send the request again later',
        ),
      );
    return this.approvals.hold(req, this.approvalTimeoutMs);
  }

  cancel(id: string): Promise<boolean> {
    return this.approvals.cancel(id);
  }

  granted(profile: string, connection: string, method: string, path: string): Promise<boolean> {
    return this.approvals.granted(profile, connection, method, path, this.#now());
  }

  /** Version of the held list (bumped on every hold and release). */
  get version(): number {
    return this.#version;
  }

  /** Releases since `version` (the last 256 are kept), for `approvals --follow`. */
  releasedSince(version: number): Array<{ id: string; profile: string; result: HoldOutcome['result'] }> {
    return this.#released
      .filter((r) => r.version > version)
      .map(({ id, profile, result }) => ({ id, profile, result }));
  }

  /** Resolves when the held list changes after `version`, after `timeoutMs`, or at shutdown. */
  waitForChange(version: number, timeoutMs: number): Promise<void> {
    if (this.#version !== version || this.#closed || timeoutMs <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      this.#waiters.add(done);
    });
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /**
   * Daemon stop, before the proxy drains: what is held is rejected (the pipeline audits each as
   * policy.rejected with reason shutdown), long-polls return, folded counts are written.
   */
  async shutdown(): Promise<void> {
    this.#closed = true;
    await this.approvals.rejectAll('shutdown');
    this.#wake();
    this.#stopFoldTimer();
    await this.#write(this.#fold.flush());
  }
}
