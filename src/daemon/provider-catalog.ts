import { AppError } from '../errors.js';
import { assertName, closest } from '../names.js';
import type { KvStore } from '../vault/types.js';
import { providerKey } from '../vault/keys.js';
import { ProviderRegistry, loadBundledProviders, validateProvider } from '../providers/index.js';
import { underWildcard } from '../providers/host.js';
import type { Destination, ProviderDef } from '../providers/types.js';
import type { ProviderMatcher } from '../proxy/types.js';

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

  static async open(store: KvStore): Promise<ProviderCatalog> {
    const cat = new ProviderCatalog(store, loadBundledProviders());
    for (const row of await store.list('provider/')) {
      const def = validateProvider(row.value['definition'], `stored provider ${row.key}`);
      cat.#custom.push({ def, override: row.value['override'] === true });
    }
    cat.#rebuild();
    return cat;
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
