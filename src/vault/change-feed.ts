/**
 * Change feed for the daemon's caches (SPEC section 10): a write through any node reaches every node's
 * subscribers. For LevelDB the feed is in-process and always up; for PostgreSQL it is LISTEN/NOTIFY
 * (pg-feed.ts), and while its connection is down `up` is false and callers read through to the store.
 */

/** key: the record that changed. undefined: anything under the prefix may have changed; drop it all. */
export type ChangeListener = (key: string | undefined) => void;
export type StatusListener = (up: boolean) => void;

export interface ChangeFeed {
  /**
   * True while every change is being delivered. False while the listening connection is down: a cache
   * must not answer from its entries then (read through), because a change may be going unseen.
   */
  readonly up: boolean;
  /**
   * Calls listener for each changed key that starts with prefix ('' for every key), synchronously in
   * the order the changes are learnt. When the feed comes back up after being down, every listener is
   * called once with undefined before `up` turns true. Listeners must not throw. Returns unsubscribe.
   */
  subscribe(prefix: string, listener: ChangeListener): () => void;
  /** Called with false when the feed goes down and true when it is back (after the undefined above). */
  onStatus(listener: StatusListener): () => void;
  close(): Promise<void>;
}

/** Fan-out to subscribers; the engines' feeds are built on it. */
export class FeedHub implements ChangeFeed {
  readonly #subs = new Set<{ prefix: string; listener: ChangeListener }>();
  readonly #status = new Set<StatusListener>();
  #up: boolean;

  constructor(up: boolean) {
    this.#up = up;
  }

  get up(): boolean {
    return this.#up;
  }

  subscribe(prefix: string, listener: ChangeListener): () => void {
    if (typeof prefix !== 'string') throw new TypeError('prefix must be a string');
    const sub = { prefix, listener };
    this.#subs.add(sub);
    return () => void this.#subs.delete(sub);
  }

  onStatus(listener: StatusListener): () => void {
    this.#status.add(listener);
    return () => void this.#status.delete(listener);
  }

  /** keys: what changed; 'all': anything may have changed. */
  emit(keys: readonly string[] | 'all'): void {
    for (const { prefix, listener } of [...this.#subs]) {
      if (keys === 'all') call(listener, undefined);
      else for (const key of keys) if (key.startsWith(prefix)) call(listener, key);
    }
  }

  /** Going up first tells everyone that anything may have changed while nobody was listening. */
  setUp(up: boolean): void {
    if (up === this.#up) return;
    if (up) this.emit('all');
    this.#up = up;
    for (const listener of [...this.#status]) {
      try {
        listener(up);
      } catch {
        /* listeners must not throw */
      }
    }
  }

  async close(): Promise<void> {
    this.#subs.clear();
    this.#status.clear();
  }
}

function call(listener: ChangeListener, key: string | undefined): void {
  try {
    listener(key);
  } catch {
    /* a cache that throws must not stop the others from hearing about the change */
  }
}

/**
 * A bounded key → value cache kept correct by a feed. It answers from memory only while the feed is
 * up, and stores a loaded value only if nothing under its prefix changed (and the feed stayed up)
 * while the load was in flight: otherwise a read that started before a revoke could put the revoked
 * record back after the revoke's notification had already cleared it.
 */
export class FeedCache<V> {
  readonly #map = new Map<string, V>();
  readonly #feed: ChangeFeed;
  readonly #max: number;
  readonly #unsubscribe: () => void;
  /** Bumped on every change under the prefix; a load that saw it move does not store its result. */
  #generation = 0;

  constructor(feed: ChangeFeed, prefix: string, maxEntries = 10_000) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new TypeError('maxEntries must be >= 1');
    this.#feed = feed;
    this.#max = maxEntries;
    this.#unsubscribe = feed.subscribe(prefix, (key) => {
      this.#generation++;
      if (key === undefined) this.#map.clear();
      else this.#map.delete(key);
    });
  }

  get size(): number {
    return this.#map.size;
  }

  async get(key: string, load: (key: string) => Promise<V>): Promise<V> {
    if (this.#feed.up && this.#map.has(key)) return this.#map.get(key) as V;
    const generation = this.#generation;
    const wasUp = this.#feed.up;
    const value = await load(key);
    if (wasUp && this.#feed.up && generation === this.#generation) {
      if (this.#map.size >= this.#max && !this.#map.has(key)) {
        const oldest = this.#map.keys().next();
        if (!oldest.done) this.#map.delete(oldest.value);
      }
      this.#map.set(key, value);
    }
    return value;
  }

  /** Drops one entry (for a write this node just made, before its notification arrives). */
  delete(key: string): void {
    this.#generation++;
    this.#map.delete(key);
  }

  close(): void {
    this.#unsubscribe();
    this.#map.clear();
  }
}
