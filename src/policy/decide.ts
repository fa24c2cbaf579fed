import { createHash } from 'node:crypto';
import { compileGlob, exactSegments, looseSegments, matchSegments, pathProblem, type Glob } from './glob.js';
import { parseRate } from './rate-spec.js';
import type { Decision, Policy, PolicyRule, RequestFacts } from './types.js';

/**
 * The one decision of SPEC section 9: the first rule whose provider, connection, methods, path and
 * exe all match decides; none matching, the default (allow when there is no policy). Pure: same
 * policy and facts, same answer; the proxy, `policy check` and `explain` all call it.
 *
 * Doubt goes to the stricter side:
 * - deny and approve rules compare methods and paths case-insensitively (and paths decoded, see
 *   glob.ts), allow rules case-sensitively, byte for byte: HTTP methods are case-sensitive
 *   (RFC 9110 9.1), so `get` is not GET for an allow, but `delete` is DELETE for a deny;
 * - while any rule that could decide this request's provider names a path, a path that would need
 *   normalising is refused before any rule (SPEC 9 says "any rule of the policy"; rules of other
 *   providers can never match the request, so they add no doubt);
 * - an unknown caller never matches a rule naming `exe` (SPEC). So an exe list belongs in an allow
 *   rule under a deny default: a deny rule naming exe is escaped by a caller that is not attributed.
 */

interface CompiledRule {
  readonly provider: string | undefined;
  readonly connection: string | undefined;
  /** Upper case; deny/approve compare the request method upper-cased, allow as sent. */
  readonly methods: ReadonlySet<string> | undefined;
  readonly glob: Glob | undefined;
  readonly exe: ReadonlySet<string> | undefined;
  readonly strict: boolean;
  /** Shared, frozen: deciding allocates nothing. */
  readonly decision: Decision;
}

export interface CompiledPolicy {
  readonly policy: Policy;
  readonly rules: readonly CompiledRule[];
  readonly namesPaths: boolean;
  /**
   * The providers whose requests a path rule can decide (a rule without a provider covers them all):
   * only their paths are held to the normalising rule. A GitLab path with `%2F` is not refused
   * because a GitHub rule names a path: no GitHub rule can match it either way.
   */
  readonly pathsFor: { readonly all: boolean; readonly providers: ReadonlySet<string> };
  /** Some rule names `exe`: the proxy must find the calling process before deciding. */
  readonly namesExe: boolean;
  readonly fallback: Decision;
}

const ALLOW_NO_POLICY: Decision = Object.freeze({ action: 'allow', ruleIndex: null });
const DEFAULTS: Record<Policy['default'], Decision> = {
  allow: ALLOW_NO_POLICY,
  deny: Object.freeze({ action: 'deny', ruleIndex: null }),
};
const NEEDS_NORMALISING: Decision = Object.freeze({
  action: 'deny',
  ruleIndex: null,
  reason: 'needs-normalising',
});

/**
 * A rule's identity for rate buckets: a hash of its content (its note aside), so moving a rule or
 * editing another leaves its count alone, and changing it (its rate included) starts a fresh one.
 */
export function ruleKey(rule: PolicyRule): string {
  const { note: _note, ...content } = rule;
  return createHash('sha256').update(JSON.stringify(content)).digest('hex').slice(0, 16);
}

function compileRule(rule: PolicyRule, index: number): CompiledRule {
  const rate = rule.rate === undefined ? undefined : parseRate(rule.rate);
  if (rule.rate !== undefined && !rate) throw new TypeError(`rules[${index}].rate is not a rate`);
  const decision: Decision = Object.freeze({
    action: rule.action,
    ruleIndex: index,
    ruleKey: ruleKey(rule),
    ...(rate ? { rate } : {}),
  });
  return {
    provider: rule.provider,
    connection: rule.connection,
    methods: rule.methods && new Set(rule.methods.map((m) => m.toUpperCase())),
    glob: rule.path === undefined ? undefined : compileGlob(rule.path),
    exe: rule.exe && new Set(rule.exe),
    strict: rule.action !== 'allow',
    decision,
  };
}

/** Compiles a parsed (normalised) policy once; the result is what `decide` walks per request. */
export function compilePolicy(policy: Policy): CompiledPolicy {
  const rules = policy.rules.map(compileRule);
  return {
    policy,
    rules,
    namesPaths: rules.some((r) => r.glob !== undefined),
    pathsFor: {
      all: rules.some((r) => r.glob !== undefined && r.provider === undefined),
      providers: new Set(
        rules.filter((r) => r.glob !== undefined && r.provider !== undefined).map((r) => r.provider!),
      ),
    },
    namesExe: rules.some((r) => r.exe !== undefined),
    fallback: DEFAULTS[policy.default],
  };
}

const compiled = new WeakMap<Policy, CompiledPolicy>();

function isCompiled(p: Policy | CompiledPolicy): p is CompiledPolicy {
  return 'namesPaths' in p;
}

/** Both path views, each computed at most once per request, and only when a rule needs it. */
class PathViews {
  #exact: string[] | undefined;
  #loose: string[] | undefined;
  constructor(readonly path: string) {}
  get exact(): string[] {
    return (this.#exact ??= exactSegments(this.path));
  }
  get loose(): string[] {
    return (this.#loose ??= looseSegments(this.path));
  }
}

export function decide(policy: Policy | CompiledPolicy | undefined, facts: RequestFacts): Decision {
  if (policy === undefined) return ALLOW_NO_POLICY;
  let c: CompiledPolicy;
  if (isCompiled(policy)) c = policy;
  else {
    c = compiled.get(policy) ?? compilePolicy(policy);
    compiled.set(policy, c);
  }
  if (
    c.namesPaths &&
    (c.pathsFor.all || c.pathsFor.providers.has(facts.provider)) &&
    pathProblem(facts.path) !== undefined
  )
    return NEEDS_NORMALISING;
  const views = new PathViews(facts.path);
  let upperMethod: string | undefined;
  for (const r of c.rules) {
    if (r.provider !== undefined && r.provider !== facts.provider) continue;
    if (r.connection !== undefined && r.connection !== facts.connection) continue;
    if (r.methods !== undefined) {
      const m = r.strict ? (upperMethod ??= facts.method.toUpperCase()) : facts.method;
      if (!r.methods.has(m)) continue;
    }
    if (r.exe !== undefined && (typeof facts.exe !== 'string' || !r.exe.has(facts.exe))) continue;
    if (r.glob !== undefined) {
      const ok = r.strict
        ? matchSegments(r.glob.loose, views.loose, true)
        : matchSegments(r.glob.exact, views.exact, false);
      if (!ok) continue;
    }
    return r.decision;
  }
  return c.fallback;
}

/** Why a path is refused while the policy names paths (for `policy check` and `explain`), or undefined. */
export { pathProblem } from './glob.js';
