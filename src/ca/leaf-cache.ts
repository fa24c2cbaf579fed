import type { SecureContext } from 'node:tls';
import { LeafMinter } from './leaf.js';
import type { LeafEntry, LeafSource, LocalCa } from './types.js';

export interface LeafCacheOptions {
  /** Most hosts kept; the least recently used is dropped past it. */
  maxEntries?: number;
  /** Re-mint when a leaf is this close to its notAfter. */
  renewBeforeMs?: number;
  /** Injected clock (tests). */
  now?: () => number;
}

/**
 * Per-host leaf contexts: a bounded LRU (Map insertion order) plus a single-flight map, so a burst
 * of first requests to one host costs one mint.
 */
export class LeafCache implements LeafSource {
  readonly #minter: LeafMinter;
  readonly #max: number;
  readonly #renewBeforeMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, LeafEntry>();
  readonly #inflight = new Map<string, Promise<LeafEntry>>();
  #minted = 0;

  private constructor(minter: LeafMinter, opts: LeafCacheOptions) {
    this.#minter = minter;
    this.#max = opts.maxEntries ?? 1000;
    this.#renewBeforeMs = opts.renewBeforeMs ?? 24 * 3600_000;
    this.#now = opts.now ?? Date.now;
  }

  static async create(ca: LocalCa, opts: LeafCacheOptions = {}): Promise<LeafCache> {
    return new LeafCache(await LeafMinter.create(ca), opts);
  }

  /** How many leaves were minted so far (tests, stats). */
  get minted(): number {
    return this.#minted;
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * Mints ahead of time (e.g. the exact hosts of the installed providers at daemon start), so the
   * first request to such a host pays no minting. Failures are left to the request that needs it.
   */
  async warm(hosts: Iterable<string>): Promise<void> {
    for (const h of hosts) await this.leafFor(h).catch(() => undefined);
  }

  async secureContextFor(host: string): Promise<SecureContext> {
    return (await this.leafFor(host)).context;
  }

  leafFor(host: string): Promise<LeafEntry> {
    const hit = this.#entries.get(host);
    if (hit && hit.notAfter - this.#now() > this.#renewBeforeMs) {
      this.#entries.delete(host);
      this.#entries.set(host, hit);
      return Promise.resolve(hit);
    }
    const pending = this.#inflight.get(host);
    if (pending) return pending;
    const p = this.#mint(host).finally(() => this.#inflight.delete(host));
    this.#inflight.set(host, p);
    return p;
  }

  async #mint(host: string): Promise<LeafEntry> {
    const leaf = await this.#minter.mint(host, this.#now());
    this.#minted++;
    const entry: LeafEntry = { host, ...leaf };
    this.#entries.delete(host);
    this.#entries.set(host, entry);
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
    return entry;
  }
}
