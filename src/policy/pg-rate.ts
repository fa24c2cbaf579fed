import type { PgHandle } from '../vault/pg-store.js';
import type { RateSpec } from './types.js';
import type { RateState, TakeResult } from './rate.js';

/**
 * Rate buckets in PostgreSQL (team mode, SPEC section 10: "rate limits count the requests of all
 * nodes"). One row per rateKey (profile/connection/ruleKey: no secret), taken in ONE statement: the
 * INSERT … ON CONFLICT DO UPDATE locks the row and computes the refill from the latest committed
 * level, so concurrent takes from any number of nodes are serialised by the database and the count
 * over all nodes stays within the capacity plus what refilled meanwhile (issue 15 item 4).
 *
 * The clock is the database's (statement_timestamp()) by default: every node refills by one clock,
 * whatever its own says. `clock: 'caller'` uses the `now` passed to take() instead (unit tests).
 * A database error is thrown (ERR_STORE_UNAVAILABLE, 503): never "allowed because the counter was
 * unreachable".
 */

export interface PgRateOptions {
  /** 'database' (default): refill by the database's clock; 'caller': by the `now` given to take(). */
  readonly clock?: 'database' | 'caller';
  /** How often full buckets are swept away (default 60 s; at most one sweep in flight). */
  readonly sweepEveryMs?: number;
}

/** Milliseconds since the epoch: the caller's ($n) or the statement's start in the database. */
const nowMs = (param: string) =>
  `coalesce(${param}::double precision, extract(epoch FROM statement_timestamp()) * 1000)`;

/** The bucket's level before this take: refilled since it was last touched, or full if its rate changed. */
const LEVEL = `(CASE WHEN b.capacity <> EXCLUDED.capacity OR b.per_ms <> EXCLUDED.per_ms
    THEN EXCLUDED.capacity::double precision
    ELSE least(b.capacity::double precision,
               b.tokens + greatest(0, EXCLUDED.at_ms - b.at_ms) * b.capacity / b.per_ms) END)`;
// A clock that steps back refills nothing (greatest(0, …)) and never moves at_ms back.
const AT = 'greatest(b.at_ms, EXCLUDED.at_ms)';
const AFTER = `(${LEVEL} - CASE WHEN ${LEVEL} >= 1 THEN 1 ELSE 0 END)`;

const TAKE = `INSERT INTO authsome_rate AS b (k, capacity, per_ms, tokens, at_ms, full_ms, ok)
  SELECT $1, $2, $3, $2 - 1, t.now, t.now + $3::double precision / $2, true
    FROM (SELECT ${nowMs('$4')} AS now) t
  ON CONFLICT (k) DO UPDATE SET
    ok = ${LEVEL} >= 1,
    tokens = ${AFTER},
    at_ms = ${AT},
    full_ms = ${AT} + (EXCLUDED.capacity - ${AFTER}) * EXCLUDED.per_ms / EXCLUDED.capacity,
    capacity = EXCLUDED.capacity,
    per_ms = EXCLUDED.per_ms
  RETURNING ok, tokens, capacity, per_ms`;

/** A bucket that has refilled to full is the same as no bucket: the table holds the buckets in use. */
const SWEEP = `DELETE FROM authsome_rate WHERE full_ms <= ${nowMs('$1')}`;

const OK: TakeResult = Object.freeze({ ok: true });

export class PgRateState implements RateState {
  readonly #db: PgHandle;
  readonly #caller: boolean;
  readonly #sweepEveryMs: number;
  #lastSweep = Date.now();
  #sweeping = false;
  /** The latest `now` passed to take() (the sweep's clock with clock: 'caller'). */
  #lastNow = 0;

  constructor(db: PgHandle, opts: PgRateOptions = {}) {
    this.#db = db;
    this.#caller = opts.clock === 'caller';
    this.#sweepEveryMs = opts.sweepEveryMs ?? 60_000;
  }

  async take(key: string, spec: RateSpec, now: number): Promise<TakeResult> {
    if (!Number.isSafeInteger(spec.count) || spec.count < 1 || !(spec.perMs > 0))
      throw new TypeError('invalid rate');
    this.#lastNow = Math.max(this.#lastNow, now);
    this.#maybeSweep();
    const { rows } = await this.#db.query<{ ok: boolean; tokens: number; capacity: number; per_ms: number }>({
      name: 'authsome_rate_take',
      text: TAKE,
      values: [key, spec.count, spec.perMs, this.#caller ? now : null],
    });
    const row = rows[0];
    if (row === undefined) throw new TypeError('the rate statement returned no row');
    if (row.ok) return OK;
    const waitMs = ((1 - row.tokens) * row.per_ms) / row.capacity;
    return { ok: false, retryAfterS: Math.max(1, Math.ceil(waitMs / 1000)) };
  }

  /** Deletes the buckets that have refilled to full; returns how many. */
  async sweep(now?: number): Promise<number> {
    const r = await this.#db.query(SWEEP, [this.#caller && now !== undefined ? now : null]);
    return r.rowCount ?? 0;
  }

  #maybeSweep(): void {
    const t = Date.now();
    if (this.#sweeping || t - this.#lastSweep < this.#sweepEveryMs) return;
    this.#sweeping = true;
    this.#lastSweep = t;
    // Off the request's path; a failed sweep is only tried again later (the rows are correct anyway).
    void this.sweep(this.#lastNow)
      .catch(() => undefined)
      .finally(() => (this.#sweeping = false));
  }
}
