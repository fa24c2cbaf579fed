import type { HeldEvent, HeldRequest, HoldOutcome } from './approvals.js';
import { heldOf, outcomeOf, type ApprovalRow } from './pg-approval-rows.js';

/** A row that is gone, or a state this code does not know: the request is refused all the same. */
export const LOST: HoldOutcome = Object.freeze({ result: 'rejected', by: null, reason: 'node-lost' });

/**
 * The requests other nodes hold, as this node last heard of them (pg-approvals.ts): turns the change
 * feed's `approval/<id>` notifications into the `held` / `released` events that `approvals --follow`
 * and the dashboard watch, each request told once as held and once as released. The caller runs
 * heard() and resync() one at a time, so a hold and its release are never seen out of order.
 */
export class RemoteHolds {
  readonly #node: string;
  readonly #row: (id: string) => Promise<ApprovalRow | undefined>;
  readonly #live: () => Promise<ApprovalRow[]>;
  readonly #emit: (ev: HeldEvent) => void;
  readonly #known = new Map<string, HeldRequest>();
  /** Requests already told as released (the last 1024): a late notification is old news. */
  readonly #gone = new Set<string>();

  constructor(opts: {
    node: string;
    row: (id: string) => Promise<ApprovalRow | undefined>;
    /** Every live node's held rows (this node's included: they are skipped). */
    live: () => Promise<ApprovalRow[]>;
    emit: (ev: HeldEvent) => void;
  }) {
    this.#node = opts.node;
    this.#row = opts.row;
    this.#live = opts.live;
    this.#emit = opts.emit;
  }

  /** A notification about another node's request. */
  async heard(id: string): Promise<void> {
    const row = await this.#row(id);
    if (row === undefined || row.node === this.#node || this.#gone.has(id)) return;
    // Seen for the first time already decided (held and answered between two looks): still told
    // as held, then released, so every watcher sees each request come and go once.
    let known = this.#known.get(id);
    if (known === undefined) {
      known = heldOf(row);
      this.#known.set(id, known);
      this.#emit({ type: 'held', held: known });
    }
    if (row.delivered_at !== null) this.#released(known, outcomeOf(row) ?? LOST);
  }

  /** Reads what every other live node holds; with emit, tells watchers what came and went. */
  async resync(emit: boolean): Promise<void> {
    const seen = new Set<string>();
    for (const row of await this.#live()) {
      if (row.node === this.#node || this.#gone.has(row.id)) continue;
      seen.add(row.id);
      if (this.#known.has(row.id)) continue;
      const held = heldOf(row);
      this.#known.set(row.id, held);
      if (emit) this.#emit({ type: 'held', held });
    }
    for (const [id, held] of [...this.#known]) {
      if (seen.has(id)) continue;
      if (!emit) {
        this.#known.delete(id);
        continue;
      }
      const row = await this.#row(id).catch(() => undefined);
      // Decided and not yet delivered: still waiting for its holder (or to be taken back).
      if (row !== undefined && row.delivered_at === null && row.status !== 'held') continue;
      this.#released(held, (row && outcomeOf(row)) ?? LOST);
    }
  }

  #released(held: HeldRequest, outcome: HoldOutcome): void {
    this.#known.delete(held.id);
    this.#gone.add(held.id);
    if (this.#gone.size > 1024) this.#gone.delete(this.#gone.values().next().value!);
    this.#emit({ type: 'released', held, outcome });
  }
}
