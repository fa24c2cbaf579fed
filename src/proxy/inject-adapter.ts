import { AppError } from '../errors.js';
import type { CredentialFields, ProviderDef } from '../providers/types.js';

/**
 * Minimal stand-in for the providers module's pure injection function (to be swapped for it):
 * renders each InjectRule template ("Bearer {{api_key}}") from the credential fields.
 */
export interface Injection {
  /** Header name (as the provider spells it) and value. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** Query parameters to set (name, value), replacing caller copies. */
  readonly query: ReadonlyArray<readonly [string, string]>;
}

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g;
// RFC 9110 5.5: a field value must not contain CR, LF or NUL (header splitting).
const UNSAFE_VALUE = /[\r\n\0]/;

const stripCache = new WeakMap<ProviderDef, ReadonlySet<string>>();

/** Lower-case names of the headers this provider injects (cached per definition object). */
export function injectedHeaderNames(def: ProviderDef): ReadonlySet<string> {
  let s = stripCache.get(def);
  if (!s) {
    s = new Set(def.inject.filter((r) => r.type === 'header').map((r) => r.name.toLowerCase()));
    stripCache.set(def, s);
  }
  return s;
}

function render(template: string, fields: CredentialFields, def: ProviderDef): string {
  return template.replace(PLACEHOLDER, (_m, name: string) => {
    const f = fields[name];
    // Name the field, never its value.
    if (!f)
      throw new AppError(
        'ERR_PROVIDER_INVALID',
        `provider ${def.name} uses field "${name}", which this connection lacks`,
        `run \`authsome login ${def.name}\` again`,
      );
    return f.reveal();
  });
}

export function renderInjection(def: ProviderDef, fields: CredentialFields): Injection {
  const headers: Array<readonly [string, string]> = [];
  const query: Array<readonly [string, string]> = [];
  for (const rule of def.inject) {
    const value = render(rule.template, fields, def);
    if (rule.type === 'header') {
      if (UNSAFE_VALUE.test(value)) {
        throw new AppError(
          'ERR_PROVIDER_INVALID',
          `the stored credential for ${def.name} cannot be sent in a header`,
          `store it again with \`authsome login ${def.name}\``,
        );
      }
      headers.push([rule.name, value]);
    } else {
      query.push([rule.name, value]);
    }
  }
  return { headers, query };
}

/** Sets query parameters on an origin-form target, dropping every caller copy of those names first. */
export function applyQuery(pathAndQuery: string, params: Injection['query']): string {
  if (params.length === 0) return pathAndQuery;
  const q = pathAndQuery.indexOf('?');
  const path = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q);
  const names = new Set(params.map(([n]) => n));
  const kept: string[] = [];
  if (q >= 0) {
    for (const part of pathAndQuery.slice(q + 1).split('&')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const rawName = eq < 0 ? part : part.slice(0, eq);
      let name: string;
      try {
        name = decodeURIComponent(rawName.replace(/\+/g, ' '));
      } catch {
        name = rawName;
      }
      if (!names.has(name)) kept.push(part);
    }
  }
  for (const [n, v] of params) kept.push(`${encodeURIComponent(n)}=${encodeURIComponent(v)}`);
  return `${path}?${kept.join('&')}`;
}
