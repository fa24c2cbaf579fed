/**
 * The policy model of SPEC section 9, in its normalised form: what `parsePolicy` returns, what is
 * stored (sealed, under `profile/<handle>/policy`) and what `policy show --json` prints.
 */
export type PolicyAction = 'allow' | 'deny' | 'approve';

export interface PolicyRule {
  readonly provider?: string;
  readonly connection?: string;
  /** Upper case, without repeats, in the order written. */
  readonly methods?: readonly string[];
  /** A path glob: `*` is one non-empty segment, `**` zero or more whole segments (glob.ts). */
  readonly path?: string;
  /** Real paths of the executables allowed to match (resolved at `policy set`). */
  readonly exe?: readonly string[];
  readonly action: PolicyAction;
  /** Normalised rate, e.g. "60/min"; only on `allow` rules. */
  readonly rate?: string;
  /** A free-text comment for people; ignored by matching and by the rule's content key. */
  readonly note?: string;
}

export interface Policy {
  readonly default: 'allow' | 'deny';
  readonly rules: readonly PolicyRule[];
  /** A free-text comment for people. */
  readonly description?: string;
}

/** A rate such as "60/min": a bucket of `count` tokens refilling continuously over `perMs`. */
export interface RateSpec {
  readonly text: string;
  readonly count: number;
  readonly perMs: number;
}

/** What the proxy knows about a request it would inject, once the connection is chosen. */
export interface RequestFacts {
  readonly provider: string;
  /** The chosen connection; undefined only for `policy check` of a profile without one. */
  readonly connection: string | undefined;
  /** As sent (methods are case-sensitive, RFC 9110 section 9.1). */
  readonly method: string;
  /** The request path as sent, without the query; never decoded or normalised by the caller. */
  readonly path: string;
  /** Real path of the calling executable; null or undefined when unknown. */
  readonly exe: string | null | undefined;
}

export interface Decision {
  readonly action: PolicyAction;
  /** 0-based index of the deciding rule; null when the default (or the normalising refusal) decided. */
  readonly ruleIndex: number | null;
  /** The deciding allow rule's rate, if it has one. */
  readonly rate?: RateSpec;
  /** Content key of the deciding rule (rate buckets are keyed by it, never by position). */
  readonly ruleKey?: string;
  /** Set when the request was refused because its path would need normalising to be read. */
  readonly reason?: 'needs-normalising';
}
