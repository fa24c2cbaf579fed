export const AUDIT_EVENTS = [
  'proxy.inject',
  'proxy.deny',
  'proxy.error',
  'proxy.secret_echo',
  'connection.add',
  'connection.remove',
  'connection.default',
  'profile.create',
  'profile.delete',
  'session.mint',
  'session.revoke',
  'provider.add',
  'provider.remove',
  'provider.client',
  'login',
  'logout',
  'token.refresh',
  'token.refresh_failed',
  'daemon.start',
  'daemon.stop',
  'audit.recovered',
  'audit.gap',
  'ca.rotate',
  'doctor.probe',
  // policy (SPEC section 9)
  'policy.set',
  'policy.clear',
  'policy.deny',
  'policy.rate_limited',
  'policy.approval_wait',
  'policy.approved',
  'policy.rejected',
  'policy.approval_timeout',
  // dashboard (SPEC section 11): a cookie session made from a one-time link, and its logout
  'ui.login',
  'ui.logout',
] as const;

export type AuditEventName = (typeof AUDIT_EVENTS)[number];

/** What callers hand to the writer. Never a secret value. */
export interface AuditInput {
  event: AuditEventName;
  profile: string;
  provider?: string;
  connection?: string;
  method?: string;
  host?: string;
  /** Path without query. */
  path?: string;
  status?: number;
  request_id?: string;
  reason?: string;
  /** Policy: the deciding rule's 0-based index, null when the policy's default decided (SPEC section 9). */
  rule?: number | null;
  /** The calling process of a loopback connection, where known (SPEC section 9, caller attribution). */
  pid?: number | null;
  exe?: string | null;
  /** Folded records: how many events of this kind the one record stands for. */
  count?: number;
  /** Team mode: the node that wrote the record (SPEC section 10). */
  node?: string;
  /** Small, non-secret extras (token id, ttl...). */
  detail?: Record<string, string | number | boolean>;
}

/** One line of audit.log. */
export interface AuditRecord extends AuditInput {
  ts: string;
  seq: number;
  prev: string;
  hash: string;
}

export interface AuditSink {
  /** Resolves once the record is durably on disk (fsync, group commit). Rejects with ERR_AUDIT_UNAVAILABLE. */
  append(input: AuditInput): Promise<AuditRecord>;
}
