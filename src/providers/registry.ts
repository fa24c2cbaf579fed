import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../errors.js';
import { packageRoot } from '../config/settings.js';
import type { ProviderMatcher } from '../proxy/types.js';
import { isPlainHostName, prefixComparablePath } from './host.js';
import { parseProviderJson, validateProvider } from './schema.js';
import type { Destination, ProviderDef } from './types.js';

export const BUNDLED_PROVIDERS_DIR = join(packageRoot(), 'config', 'providers');

/** Reads and validates one definition file (`authsome provider add FILE`). */
export function readProviderFile(path: string, source: string = path): ProviderDef {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new AppError(
      'ERR_PROVIDER_INVALID',
      `${source}: cannot read the file (${code})`,
      'check the path and its permissions',
    );
  }
  return parseProviderJson(text, source);
}

/** Every config/providers/*.json, validated; a broken bundled file is a packaging bug, so all are reported at once. */
export function loadBundledProviders(dir: string = BUNDLED_PROVIDERS_DIR): ProviderDef[] {
  const defs: ProviderDef[] = [];
  const failures: string[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    const source = `config/providers/${file}`;
    try {
      const def = readProviderFile(join(dir, file), source);
      const expected = file.slice(0, -'.json'.length);
      if (def.name !== expected)
        throw new AppError(
          'ERR_PROVIDER_INVALID',
          `${source}: invalid provider definition:\n  - name: must equal the file name "${expected}"`,
        );
      defs.push(def);
    } catch (e) {
      if (!(e instanceof AppError)) throw e;
      failures.push(e.message);
    }
  }
  if (failures.length > 0) {
    throw new AppError(
      'ERR_PROVIDER_INVALID',
      failures.join('\n'),
      'a bundled provider file is broken; reinstall authsome or fix the file',
    );
  }
  return defs;
}

export interface CustomProvider {
  readonly def: ProviderDef;
  /** Must be true to replace a bundled provider of the same name (`provider add --force`). */
  readonly override: boolean;
}

export interface RegistryInput {
  readonly bundled: readonly ProviderDef[];
  readonly custom?: readonly CustomProvider[];
}

export type ProviderOrigin = 'bundled' | 'custom' | 'override';

/** The rules of one "host:port" (or wildcard "parent:port"): a whole-host owner and/or path-prefix owners. */
interface PortEntry {
  whole: ProviderDef | undefined;
  prefixes: Map<string, ProviderDef>;
  maxPrefixLength: number;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Longest declared prefix that `target` sits under, walking segment boundaries only ("/v1" ≠ "/v10"). */
function pick(entry: PortEntry | undefined, target: unknown): ProviderDef | undefined {
  if (!entry) return undefined;
  if (entry.prefixes.size > 0 && typeof target === 'string') {
    const path = prefixComparablePath(target);
    if (path !== undefined) {
      // Start no deeper than the longest prefix, so a huge path costs no more than a short one.
      let end = Math.min(path.length, entry.maxPrefixLength);
      if (end < path.length && path[end] !== '/') end = path.lastIndexOf('/', end);
      while (end > 0) {
        const hit = path[end - 1] === '/' ? undefined : entry.prefixes.get(path.slice(0, end));
        if (hit) return hit;
        end = path.lastIndexOf('/', end - 1);
      }
    }
  }
  return entry.whole;
}

/**
 * Bundled + custom providers, indexed once: exact rules in a Map keyed "host:port", "*.parent" rules
 * in a Map keyed "parent:port". A request costs two Map lookups plus a few per path segment of the
 * longest declared prefix; there is no scan over providers and no regex built from a definition.
 * An exact host beats a wildcard; within one host:port the longest matching prefix beats the whole host.
 */
export class ProviderRegistry implements ProviderMatcher {
  readonly #byName = new Map<string, { def: ProviderDef; origin: ProviderOrigin }>();
  readonly #exact = new Map<string, PortEntry>();
  readonly #wild = new Map<string, PortEntry>();

  constructor(input: RegistryInput) {
    for (const raw of input.bundled) {
      // Re-validated here too: a definition that skipped the loader still cannot claim an odd host.
      const def = deepFreeze(validateProvider(raw, `bundled provider "${String(raw.name)}"`));
      if (this.#byName.has(def.name))
        throw new AppError('ERR_PROVIDER_EXISTS', `bundled provider "${def.name}" is defined twice`);
      this.#byName.set(def.name, { def, origin: 'bundled' });
    }
    const customNames = new Set<string>();
    for (const c of input.custom ?? []) {
      const def = deepFreeze(validateProvider(c.def, `custom provider "${String(c.def.name)}"`));
      if (customNames.has(def.name))
        throw new AppError('ERR_PROVIDER_EXISTS', `custom provider "${def.name}" is defined twice`);
      customNames.add(def.name);
      const bundled = this.#byName.has(def.name);
      if (bundled && !c.override) {
        throw new AppError(
          'ERR_PROVIDER_EXISTS',
          `"${def.name}" is a bundled provider`,
          'add it with --force to override the bundled definition, or choose another name',
        );
      }
      this.#byName.set(def.name, { def, origin: bundled ? 'override' : 'custom' });
    }
    for (const { def } of this.#byName.values()) this.#index(def);
  }

  #index(def: ProviderDef): void {
    for (const rule of def.hosts) {
      const port = rule.port ?? 443;
      const wildcard = rule.host.startsWith('*.');
      const map = wildcard ? this.#wild : this.#exact;
      const key = `${wildcard ? rule.host.slice(2) : rule.host}:${port}`;
      let entry = map.get(key);
      if (!entry) map.set(key, (entry = { whole: undefined, prefixes: new Map(), maxPrefixLength: 0 }));
      const prefix = rule.pathPrefix;
      const holder = prefix === undefined ? entry.whole : entry.prefixes.get(prefix);
      if (holder && holder !== def) {
        throw new AppError(
          'ERR_PROVIDER_EXISTS',
          `providers "${holder.name}" and "${def.name}" both claim ${rule.host}:${port}${prefix ?? ''}`,
          'remove one of them, or give one a different pathPrefix',
        );
      }
      if (prefix === undefined) entry.whole = def;
      else {
        entry.prefixes.set(prefix, def);
        entry.maxPrefixLength = Math.max(entry.maxPrefixLength, prefix.length);
      }
    }
  }

  get(name: string): ProviderDef | undefined {
    return this.#byName.get(name)?.def;
  }

  origin(name: string): ProviderOrigin | undefined {
    return this.#byName.get(name)?.origin;
  }

  /** All providers, sorted by name. */
  list(): ProviderDef[] {
    return [...this.#byName.values()]
      .map((v) => v.def)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The provider for exactly this destination. Hosts that are not plain lower-case DNS names never match. */
  match(dest: Destination): ProviderDef | undefined {
    const { host, port, path } = dest;
    if (!isPlainHostName(host) || !validPort(port)) return undefined;
    const hit = pick(this.#exact.get(`${host}:${port}`), path);
    if (hit) return hit;
    return pick(this.#wild.get(`${host.slice(host.indexOf('.') + 1)}:${port}`), path);
  }

  covers(host: string, port: number): boolean {
    if (!isPlainHostName(host) || !validPort(port)) return false;
    return (
      this.#exact.has(`${host}:${port}`) || this.#wild.has(`${host.slice(host.indexOf('.') + 1)}:${port}`)
    );
  }
}

function validPort(port: unknown): port is number {
  return typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535;
}
