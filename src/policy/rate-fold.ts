/**
 * Folding of repeated `policy.rate_limited` records (SPEC section 9): a caller hammering a limit
 * must not flood the audit log either. Per key (rule and profile) at most one record per window
 * (1 s): the first refusal of a quiet key is written at once (count 1), the refusals that follow
 * within the window are counted, and written as one record (the latest refusal, with `count`) when
 * the window closes. A key with nothing folded when its window closes goes quiet again.
 *
 * Pure apart from the records it holds: the caller passes the time and writes what comes back (the
 * daemon ticks `due` once a second while anything is pending, and calls `flush` at shutdown, so a
 * count is never lost).
 */
export class RateFoldLog<R extends object> {
  readonly #windowMs: number;
  readonly #keys = new Map<string, { windowEnd: number; folded: number; last: R }>();

  constructor(windowMs = 1000) {
    this.#windowMs = windowMs;
  }

  /** One refusal; returns the records to write now (zero or one). */
  add(key: string, record: R, now: number): Array<R & { count: number }> {
    const k = this.#keys.get(key);
    if (k === undefined || (k.windowEnd <= now && k.folded === 0)) {
      this.#keys.set(key, { windowEnd: now + this.#windowMs, folded: 0, last: record });
      return [{ ...record, count: 1 }];
    }
    if (k.windowEnd > now) {
      k.folded++;
      k.last = record;
      return [];
    }
    // The window closed and nobody called due(): write what it folded, and fold this one next.
    const out = { ...k.last, count: k.folded };
    this.#keys.set(key, { windowEnd: now + this.#windowMs, folded: 1, last: record });
    return [out];
  }

  /** Records of windows closed by `now`. */
  due(now: number): Array<R & { count: number }> {
    const out: Array<R & { count: number }> = [];
    for (const [key, k] of this.#keys) {
      if (k.windowEnd > now) continue;
      if (k.folded === 0) {
        this.#keys.delete(key);
        continue;
      }
      out.push({ ...k.last, count: k.folded });
      k.folded = 0;
      k.windowEnd = now + this.#windowMs;
    }
    return out;
  }

  /** Everything folded and not yet written (shutdown); the log is empty afterwards. */
  flush(): Array<R & { count: number }> {
    const out: Array<R & { count: number }> = [];
    for (const k of this.#keys.values()) if (k.folded > 0) out.push({ ...k.last, count: k.folded });
    this.#keys.clear();
    return out;
  }

  /** Keys with an open window (something may still come due). */
  get pending(): number {
    return this.#keys.size;
  }
}
