import { applyInjection, injectedHeaderNames as providerHeaderNames } from '../providers/inject.js';
import type { CredentialFields, ProviderDef } from '../providers/types.js';

/**
 * The proxy's seam to the providers module's pure injection function (src/providers/inject.ts),
 * which owns the template grammar ({{field}}, {{base64(a, ':', b)}}) and the value checks (no
 * CR/LF/NUL in headers...). The proxy only needs: which header names to strip from the caller,
 * and the headers/target to send.
 */
export interface Injection {
  /** Header name (as the provider spells it) and value, appended after the caller's headers. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** Origin-form target with injected query parameters set (caller copies replaced). */
  readonly pathAndQuery: string;
}

const stripCache = new WeakMap<ProviderDef, ReadonlySet<string>>();

/** Lower-case names of the headers this provider injects (cached per definition object). */
export function injectedHeaderNames(def: ProviderDef): ReadonlySet<string> {
  let s = stripCache.get(def);
  if (!s) {
    s = new Set(providerHeaderNames(def));
    stripCache.set(def, s);
  }
  return s;
}

export function renderInjection(def: ProviderDef, fields: CredentialFields, pathAndQuery: string): Injection {
  const r = applyInjection(def, fields, [], pathAndQuery);
  return { headers: r.headers, pathAndQuery: r.target };
}
