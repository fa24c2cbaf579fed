import type { RateSpec } from './types.js';

export type TakeResult = { readonly ok: true } | { readonly ok: false; readonly retryAfterS: number };

/**
 * Where rate counters live. In memory for one daemon; team mode (SPEC section 10) puts them in
 * PostgreSQL so every node counts the same requests: hence async, and the clock passed in.
 */
export interface RateState {
  /** Takes one token from the bucket `key` (refilled continuously at spec.count per spec.perMs). */
  take(key: string, spec: RateSpec, now: number): Promise<TakeResult>;
}

/**
 * SPEC 9: counters are keyed by profile, connection and the rule's content (decide's `ruleKey`),
 * never its position. Names match the name rule (no '/'), and ruleKey is hex: the key is injective.
 */
export function rateKey(profile: string, connection: string, ruleKey: string): string {
  return `${profile}/${connection}/${ruleKey}`;
}

interface Bucket {
  tokens: number;
  at: number;
  readonly capacity: number;
  readonly perMs: number;
}

const OK: TakeResult = Object.freeze({ ok: true });

/** The level of a bucket at `now`, refilled continuously since it was last touched. */
function level(b: Bucket, now: number): number {
  // A clock that steps back refills nothing (never a free burst).
  const elapsed = Math.max(0, now - b.at);
  return Math.min(b.capacity, b.tokens + (elapsed * b.capacity) / b.perMs);
}

/**
 * Token buckets in a Map. A bucket that has refilled to full is the same as no bucket, so idle full
 * ones are swept away: memory is bounded by the buckets in use (profiles × connections × rules with
 * a rate), never by the number of requests.
 */
export class MemoryRateState implements RateState {
  readonly #buckets = new Map<string, Bucket>();
  readonly #sweepAbove: number;
  #takes = 0;

  constructor(opts: { sweepAbove?: number } = {}) {
    this.#sweepAbove = opts.sweepAbove ?? 1024;
  }

  take(key: string, spec: RateSpec, now: number): Promise<TakeResult> {
    return Promise.resolve(this.takeNow(key, spec, now));
  }

  /** The synchronous core of take() (the in-memory state needs no I/O). */
  takeNow(key: string, spec: RateSpec, now: number): TakeResult {
    if (++this.#takes % 256 === 0 || this.#buckets.size > this.#sweepAbove) this.sweep(now);
    let b = this.#buckets.get(key);
    if (b === undefined || b.capacity !== spec.count || b.perMs !== spec.perMs) {
      b = { tokens: spec.count, at: now, capacity: spec.count, perMs: spec.perMs };
      this.#buckets.set(key, b);
    }
    const tokens = level(b, now);
    b.at = Math.max(b.at, now);
    if (tokens >= 1) {
      b.tokens = tokens - 1;
      return OK;
    }
    b.tokens = tokens;
    const waitMs = ((1 - tokens) * b.perMs) / b.capacity;
    return { ok: false, retryAfterS: Math.max(1, Math.ceil(waitMs / 1000)) };
  }

  /** Drops buckets that have refilled to full (they would start full again anyway). */
  sweep(now: number): void {
    for (const [k, b] of this.#buckets) if (level(b, now) >= b.capacity) this.#buckets.delete(k);
  }

  get size(): number {
    return this.#buckets.size;
  }
}
