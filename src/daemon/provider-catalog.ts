import { AppError } from '../errors.js';
import { assertName, closest } from '../names.js';
import type { KvStore } from '../vault/types.js';
import { providerKey } from '../vault/keys.js';
import { ProviderRegistry, loadBundledProviders, validateProvider } from '../providers/index.js';
import { underWildcard } from '../providers/host.js';
import type { Destination, ProviderDef } from '../providers/types.js';
import type { ProviderMatcher } from '../proxy/types.js';
import type { ChangeFeed } from '../vault/change-feed.js';

export type ProviderSource = 'bundled' | 'custom' | 'custom (overrides bundled)';

/**
 * Bundled providers (validated once at start) plus the install's custom ones (kept in the store
 * under provider/<name>). The matcher is rebuilt only when a custom provider changes, so the
 * proxy's hot path is a map lookup.
 */
export class ProviderCatalog implements ProviderMatcher {
  readonly #store: KvStore;
  readonly #bundled: ProviderDef[];
  #custom: Array<{ def: ProviderDef; override: boolean }> = [];
  #registry: ProviderRegistry;

  private constructor(store: KvStore, bundled: ProviderDef[]) {
    this.#store = store;
    this.#bundled = bundled;
    this.#registry = new ProviderRegistry({ bundled, custom: [] });
  }

  static async open(store: KvStore, feed?: ChangeFeed): Promise<ProviderCatalog> {
    const cat = new ProviderCatalog(store, loadBundledProviders());
    cat.#custom = await cat.#load();
    cat.#rebuild();
    if (feed) cat.#follow(feed);
    return cat;
  }

  async #load(): Promise<Array<{ def: ProviderDef; override: boolean }>> {
    const custom: Array<{ def: ProviderDef; override: boolean }> = [];
    for (const row of await this.#store.list('provider/')) {
      const def = validateProvider(row.value['definition'], `stored provider ${row.key}`);
      custom.push({ def, override: row.value['override'] === true });
    }
    return custom;
  }

  #reloading: Promise<void> | undefined;
  #again = false;
  #poll: NodeJS.Timeout | undefined;
  #unfollow: Array<() => void> = [];

  /**
   * Team mode (SPEC section 10): a custom provider added, replaced or removed through another node is
   * reloaded here when its change arrives. The matcher is the proxy's synchronous hot path, so while
   * the feed is down the definitions are reloaded every second instead of read per request.
   */
  #follow(feed: ChangeFeed): void {
    this.#unfollow.push(feed.subscribe('provider/', () => this.reload()));
    this.#unfollow.push(
      feed.onStatus((up) => {
        clearInterval(this.#poll);
        this.#poll = undefined;
        if (up) return;
        this.#poll = setInterval(() => this.reload(), 1000);
        this.#poll.unref();
      }),
    );
  }

  /** Reads the custom providers again (coalesced; a failed read keeps the current set and retries on the next change). */
  reload(): void {
    if (this.#reloading) {
      this.#again = true;
      return;
    }
    this.#reloading = (async () => {
      do {
        this.#again = false;
        try {
          const custom = await this.#load();
          new ProviderRegistry({ bundled: this.#bundled, custom }); // a clash keeps the current set
          this.#custom = custom;
          this.#rebuild();
        } catch {
          // the store is unreachable or a record is bad: keep serving what was loaded
        }
      } while (this.#again);
    })().finally(() => {
      this.#reloading = undefined;
    });
  }

  close(): void {
    clearInterval(this.#poll);
    for (const u of this.#unfollow.splice(0)) u();
  }

  #rebuild(): void {
    this.#registry = new ProviderRegistry({ bundled: this.#bundled, custom: this.#custom });
  }

  match(dest: Destination): ProviderDef | undefined {
    return this.#registry.match(dest);
  }

  covers(host: string, port: number): boolean {
    return this.#registry.covers(host, port);
  }

  get(name: string): ProviderDef | undefined {
    return this.#registry.get(name);
  }

  require(name: string): ProviderDef {
    assertName('provider', name);
    const def = this.get(name);
    if (!def) {
      const guess = closest(
        name,
        this.#registry.list().map((d) => d.name),
      );
      throw new AppError(
        'ERR_PROVIDER_NOT_FOUND',
        `unknown provider "${name}"${guess ? ` — did you mean "${guess}"?` : ''}`,
        'run `authsome provider list` to see the providers',
      );
    }
    return def;
  }

  sourceOf(name: string): ProviderSource {
    const custom = this.#custom.find((c) => c.def.name === name);
    if (!custom) return 'bundled';
    return custom.override ? 'custom (overrides bundled)' : 'custom';
  }

  list(): Array<{ name: string; def: ProviderDef; source: ProviderSource }> {
    return this.#registry
      .list()
      .map((def) => ({ name: def.name, def, source: this.sourceOf(def.name) }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Without `force`, a definition may neither replace a provider of its name (bundled or custom: the
   * connections of that name would follow the new hosts) nor claim a host another provider covers
   * (a path prefix there, or an exact host under its wildcard, takes those requests from it).
   */
  async addCustom(definition: unknown, force: boolean, file: string): Promise<ProviderDef> {
    const def = validateProvider(definition, file);
    const isBundled = this.#bundled.some((b) => b.name === def.name);
    if (!force) {
      if (isBundled || this.#custom.some((c) => c.def.name === def.name)) {
        throw new AppError(
          'ERR_PROVIDER_EXISTS',
          `"${def.name}" is ${isBundled ? 'a bundled' : 'already a custom'} provider`,
          `add --force to ${isBundled ? 'override' : 'replace'} it, or choose another name`,
        );
      }
      const clash = this.#registry
        .list()
        .map((other) => ({ other, host: sharedHost(def, other) }))
        .find((c) => c.host !== undefined);
      if (clash) {
        throw new AppError(
          'ERR_PROVIDER_EXISTS',
          `provider "${clash.other.name}" already covers ${clash.host}: "${def.name}" would take requests from it`,
          `add --force if that is intended, or give "${def.name}" other hosts`,
        );
      }
    }
    const next = [...this.#custom.filter((c) => c.def.name !== def.name), { def, override: isBundled }];
    // Build first: a clash (two providers claiming one host) refuses the change before anything is stored.
    new ProviderRegistry({ bundled: this.#bundled, custom: next });
    await this.#store.put(providerKey(def.name), {
      definition: def as unknown as Record<string, unknown>,
      override: isBundled,
    });
    this.#custom = next;
    this.#rebuild();
    return def;
  }

  async removeCustom(name: string): Promise<void> {
    if (!this.#custom.some((c) => c.def.name === name)) {
      const hint = this.#bundled.some((b) => b.name === name)
        ? 'bundled providers cannot be removed'
        : 'run `authsome provider list`';
      throw new AppError('ERR_PROVIDER_NOT_FOUND', `no custom provider "${name}"`, hint);
    }
    await this.#store.del(providerKey(name));
    this.#custom = this.#custom.filter((c) => c.def.name !== name);
    this.#rebuild();
  }
}

/**
 * The first host:port where a rule of `added` would take requests from `existing`: the same host, or
 * an exact host under one of its wildcards (an exact host wins over a wildcard, so a new wildcard over
 * an existing exact host takes nothing).
 */
function sharedHost(added: ProviderDef, existing: ProviderDef): string | undefined {
  for (const x of added.hosts)
    for (const y of existing.hosts) {
      if ((x.port ?? 443) !== (y.port ?? 443)) continue;
      if (x.host === y.host || underWildcard(y.host, x.host)) return `${x.host}:${x.port ?? 443}`;
    }
  return undefined;
}
