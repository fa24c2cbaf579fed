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
