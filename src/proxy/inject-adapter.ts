import {
  applyPlan,
  injectedHeaderNames as providerHeaderNames,
  planInjection,
  type InjectionPlan,
} from '../providers/inject.js';
import { parseTemplate } from '../providers/template.js';
import type { CredentialFields, ProviderDef } from '../providers/types.js';
import { buildNeedles } from './secret-scan.js';

/**
 * The proxy's seam to the providers module's pure injection function (src/providers/inject.ts),
 * which owns the template grammar ({{field}}, {{base64(a, ':', b)}}) and the value checks (no
 * CR/LF/NUL in headers...). The proxy only needs: which header names to strip from the caller,
 * the headers/target to send, and what to look for in the response (secret-scan.ts).
 */
export interface Injection {
  /** Header name (as the provider spells it) and value, appended after the caller's headers. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** Origin-form target with injected query parameters set (caller copies replaced). */
  readonly pathAndQuery: string;
}

const stripCache = new WeakMap<ProviderDef, ReadonlySet<string>>();
const strippedCache = new WeakMap<ProviderDef, ReadonlySet<string>>();

/**
 * Caller headers removed from an injected request: every copy of each injected header, plus
 * Accept-Encoding, so that a compliant upstream answers uncompressed and the secret scanner reads
 * the body as sent (a non-compliant one is decoded, see relay.ts); Sec-WebSocket-Extensions, so
 * an injected WebSocket negotiates no permessage-deflate that would hide an echo in its frames; and
 * Range / If-Range / Request-Range, so that an endpoint echoing the request cannot be read back in slices shorter
 * than any needle (RFC 9110 14.2: a server may ignore Range and send the whole 200, which clients handle).
 */
export function strippedForInjection(def: ProviderDef): ReadonlySet<string> {
  let s = strippedCache.get(def);
  if (!s) {
    s = new Set([
      ...injectedHeaderNames(def),
      'accept-encoding',
      'sec-websocket-extensions',
      'range',
      'if-range',
      'request-range', // the legacy spelling Apache httpd still honours (CVE-2011-3192)
    ]);
    strippedCache.set(def, s);
  }
  return s;
}

/** Lower-case names of the headers this provider injects (cached per definition object). */
export function injectedHeaderNames(def: ProviderDef): ReadonlySet<string> {
  let s = stripCache.get(def);
  if (!s) {
    s = new Set(providerHeaderNames(def));
    stripCache.set(def, s);
  }
  return s;
}

const identifierCache = new WeakMap<ProviderDef, ReadonlySet<string>>();

/**
 * Fields that are only ever the user-id of a base64 Basic credential (Twilio's account SID, an
 * e-mail address): identifiers the upstream legitimately repeats in its answers, so not needles.
 * Every other field is treated as secret.
 */
function identifierFields(def: ProviderDef): ReadonlySet<string> {
  let s = identifierCache.get(def);
  if (s) return s;
  const userIds = new Set<string>();
  const elsewhere = new Set<string>();
  for (const rule of def.inject) {
    const parsed = parseTemplate(rule.template);
    if (!parsed.ok) continue;
    for (const part of parsed.parts) {
      if (part.kind === 'field') elsewhere.add(part.name);
      if (part.kind !== 'base64') continue;
      let beforeColon = true;
      for (const a of part.args) {
        if (a.kind === 'lit') beforeColon &&= !a.text.includes(':');
        else (beforeColon ? userIds : elsewhere).add(a.name);
      }
    }
  }
  s = new Set([...userIds].filter((f) => !elsewhere.has(f)));
  identifierCache.set(def, s);
  return s;
}

/**
 * Per credential object (the credential source hands out the same object while it is cached): the
 * rendered plan and the response needles, computed once instead of on every request.
 */
const planCache = new WeakMap<
  CredentialFields,
  { def: ProviderDef; plan: InjectionPlan; needles: readonly Buffer[] }
>();

function planFor(def: ProviderDef, fields: CredentialFields) {
  const hit = planCache.get(fields);
  if (hit && hit.def === def) return hit;
  const plan = planInjection(def, fields);
  const entry = { def, plan, needles: needlesOf(def, fields, plan) };
  planCache.set(fields, entry);
  return entry;
}

function needlesOf(def: ProviderDef, fields: CredentialFields, plan: InjectionPlan): readonly Buffer[] {
  const ids = identifierFields(def);
  const secrets: string[] = [];
  // The adapter is the injector's seam: revealing here only feeds the response scanner.
  for (const name of def.fields) {
    const value = Object.hasOwn(fields, name) ? fields[name] : undefined;
    if (value !== undefined && !ids.has(name)) secrets.push(value.reveal());
  }
  return buildNeedles([...plan.setHeaders.map(([, v]) => v), ...plan.query.map(([, v]) => v)], secrets);
}

/** What the response scanner (secret-scan.ts) looks for after injecting these fields. */
export function responseNeedles(def: ProviderDef, fields: CredentialFields): readonly Buffer[] {
  return planFor(def, fields).needles;
}

export function renderInjection(def: ProviderDef, fields: CredentialFields, pathAndQuery: string): Injection {
  const r = applyPlan(planFor(def, fields).plan, [], pathAndQuery);
  return { headers: r.headers, pathAndQuery: r.target };
}
