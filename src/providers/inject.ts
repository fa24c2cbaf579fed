import { AppError } from '../errors.js';
import { Secret } from '../secret.js';
import { parseTemplate, type TemplateArg, type TemplatePart } from './template.js';
import type { CredentialFields, ProviderDef } from './types.js';

/**
 * Injection, pure: definition + credential fields in, header/query values out. This module is the only
 * caller of Secret.reveal() on the request path, and no error it throws contains a field value.
 *
 * Two entry points:
 *  - planInjection(def, fields) → { setHeaders, removeHeaderNames, query } for a proxy that edits its own
 *    header list: drop every caller header whose lower-cased name is in removeHeaderNames, then append
 *    setHeaders; replace query parameters named in `query` (case-insensitively) with the given values.
 *  - applyInjection(def, fields, headers, target) does exactly that on a copy of a raw header list
 *    ([name, value] pairs, as from rawHeaders) and an origin-form target ("/path?query").
 */

export interface InjectionPlan {
  /** [name as the provider spells it, value], in rule order. */
  readonly setHeaders: Array<[string, string]>;
  /** Lower-case name of every header this provider injects: the proxy strips all caller copies. */
  readonly removeHeaderNames: readonly string[];
  /** [parameter name, raw (unencoded) value] to set in the query string. */
  readonly query: Array<[string, string]>;
}

interface CompiledRule {
  readonly type: 'header' | 'query';
  readonly name: string;
  readonly parts: readonly TemplatePart[];
}

interface Compiled {
  readonly rules: readonly CompiledRule[];
  readonly headerNames: readonly string[];
}

const compiledCache = new WeakMap<ProviderDef, Compiled>();

function compile(def: ProviderDef): Compiled {
  const cached = compiledCache.get(def);
  if (cached) return cached;
  const rules = def.inject.map((r, i): CompiledRule => {
    const parsed = parseTemplate(r.template);
    if (!parsed.ok)
      throw new AppError(
        'ERR_PROVIDER_INVALID',
        `provider "${def.name}": inject[${i}].template ${parsed.reason}`,
      );
    return { type: r.type, name: r.name, parts: parsed.parts };
  });
  const headerNames = [...new Set(rules.filter((r) => r.type === 'header').map((r) => r.name.toLowerCase()))];
  const compiled = { rules, headerNames };
  // Only a frozen definition (as the registry hands out) can be cached: a mutable one could change under us.
  if (Object.isFrozen(def) && Object.isFrozen(def.inject)) compiledCache.set(def, compiled);
  return compiled;
}

/** Header names (lower-case) the provider injects. Needs no secrets, so a proxy can strip even when injection fails. */
export function injectedHeaderNames(def: ProviderDef): readonly string[] {
  return compile(def).headerNames;
}

// Printable ASCII only: CR/LF/NUL would split or truncate the header, and obs-text (0x80-0xff) is sent
// as Latin-1 by Node, which no API key legitimately needs.
const HEADER_SAFE = /^[\x20-\x7e]*$/;
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x1f\x7f]/;

function fail(def: ProviderDef, field: string, problem: string): never {
  throw new AppError(
    'ERR_PROVIDER_INVALID',
    `connection field "${field}" of provider "${def.name}" ${problem}`,
    `store the credential again: authsome login ${def.name}`,
  );
}

function value(def: ProviderDef, fields: CredentialFields, name: string, inHeader: boolean): string {
  const secret: unknown = Object.hasOwn(fields, name) ? fields[name] : undefined;
  if (!(secret instanceof Secret)) {
    throw new AppError(
      'ERR_PROVIDER_INVALID',
      `connection lacks field "${name}" required by provider "${def.name}"`,
      `store the credential again: authsome login ${def.name}`,
    );
  }
  const v = secret.reveal();
  if (v.length === 0) fail(def, name, 'is empty');
  if (inHeader ? !HEADER_SAFE.test(v) : CONTROL.test(v)) {
    fail(
      def,
      name,
      inHeader
        ? 'contains characters that are never sent in a header (only printable ASCII is: no CR, LF, NUL)'
        : 'contains control characters (CR, LF, NUL…), which are never injected',
    );
  }
  // Parsers strip surrounding whitespace, which would silently change the credential (a pasted newline's cousin).
  if (inHeader && v.trim() !== v) fail(def, name, 'has leading or trailing whitespace');
  if (!inHeader) {
    try {
      encodeURIComponent(v); // throws on lone surrogates, which have no UTF-8 form
    } catch {
      fail(def, name, 'is not well-formed Unicode');
    }
  }
  return v;
}

function base64(def: ProviderDef, fields: CredentialFields, args: readonly TemplateArg[]): string {
  let text = '';
  let userIdDone = false;
  for (const a of args) {
    if (a.kind === 'lit') {
      text += a.text;
      userIdDone ||= a.text.includes(':');
      continue;
    }
    // Encoded, so any byte is safe on the wire; but a ':' in the user-id would shift the split (RFC 7617 section 2).
    const v = value(def, fields, a.name, false);
    if (!userIdDone && v.includes(':'))
      fail(def, a.name, "contains ':' but is the user-id of HTTP Basic auth");
    text += v;
  }
  return Buffer.from(text, 'utf8').toString('base64');
}

function render(def: ProviderDef, fields: CredentialFields, rule: CompiledRule): string {
  const inHeader = rule.type === 'header';
  let out = '';
  for (const p of rule.parts) {
    if (p.kind === 'lit') out += p.text;
    else if (p.kind === 'field') out += value(def, fields, p.name, inHeader);
    else out += base64(def, fields, p.args);
  }
  return out;
}

export function planInjection(def: ProviderDef, fields: CredentialFields): InjectionPlan {
  const { rules, headerNames } = compile(def);
  const setHeaders: Array<[string, string]> = [];
  const query: Array<[string, string]> = [];
  for (const rule of rules)
    (rule.type === 'header' ? setHeaders : query).push([rule.name, render(def, fields, rule)]);
  return { setHeaders, removeHeaderNames: headerNames, query };
}

/** Replaces caller copies of the injected parameters (compared case-insensitively after decoding). */
function withQuery(target: string, params: ReadonlyArray<[string, string]>): string {
  if (target.includes('#'))
    throw new AppError('ERR_PROXY_BAD_REQUEST', 'the request target contains a fragment');
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const names = new Set(params.map(([n]) => n.toLowerCase()));
  const kept = (q < 0 ? [] : target.slice(q + 1).split('&')).filter((pair) => {
    const rawName = pair.split('=', 1)[0] ?? '';
    let name: string;
    try {
      name = decodeURIComponent(rawName.replace(/\+/g, ' '));
    } catch {
      throw new AppError('ERR_PROXY_BAD_REQUEST', 'the request target has a malformed query string');
    }
    return !names.has(name.toLowerCase());
  });
  const added = params.map(([n, v]) => `${n}=${encodeURIComponent(v)}`);
  return `${path}?${[...kept, ...added].join('&')}`;
}

/**
 * Returns a new header list (caller copies of injected headers removed, provider headers appended)
 * and a new target (query parameters set). Inputs are not modified.
 */
export function applyInjection(
  def: ProviderDef,
  fields: CredentialFields,
  headers: ReadonlyArray<readonly [string, string]>,
  target: string,
): { headers: Array<[string, string]>; target: string } {
  return applyPlan(planInjection(def, fields), headers, target);
}

/** applyInjection with the plan already made (the proxy keeps plans per cached credential). */
export function applyPlan(
  plan: InjectionPlan,
  headers: ReadonlyArray<readonly [string, string]>,
  target: string,
): { headers: Array<[string, string]>; target: string } {
  const strip = new Set(plan.removeHeaderNames);
  const out = headers.filter(([n]) => !strip.has(n.toLowerCase())).map(([n, v]): [string, string] => [n, v]);
  out.push(...plan.setHeaders);
  return { headers: out, target: plan.query.length > 0 ? withQuery(target, plan.query) : target };
}
