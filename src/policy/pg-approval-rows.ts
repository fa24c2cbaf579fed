import type { HeldRequest, HoldOutcome, RejectReason } from './approvals.js';

/**
 * The rows of authsome_approvals (src/vault/pg-schema.ts, version 2) and the statements on them, for
 * pg-approvals.ts. Status moves held → approved | rejected (decided by any node, delivered_at null)
 * → delivered (the holding node claimed it), or held → timeout | cancelled | rejected (ended by the
 * holder itself, or by a sweep of a lost node's rows: delivered at once).
 */

export type Status = 'held' | 'approved' | 'rejected' | 'timeout' | 'cancelled';

export interface ApprovalRow {
  id: string;
  node: string;
  profile: string;
  provider: string;
  connection: string;
  method: string;
  path: string;
  exe: string | null;
  pid: number | null;
  rule: number | null;
  since: Date;
  status: Status;
  decided_by: string | null;
  reason: string | null;
  /** bigint: the driver gives it as a string. */
  for_ms: string | null;
  delivered_at: Date | null;
}

const REASONS: ReadonlySet<string> = new Set<RejectReason>([
  'owner',
  'shutdown',
  'profile-deleted',
  'node-lost',
]);

export function heldOf(row: ApprovalRow): HeldRequest {
  return Object.freeze({
    id: row.id,
    profile: row.profile,
    provider: row.provider,
    connection: row.connection,
    method: row.method,
    path: row.path,
    exe: row.exe,
    pid: row.pid,
    since: row.since.toISOString(),
    rule: row.rule,
    node: row.node,
  });
}

/** What a decided row means for the held request (undefined while it is still held). */
export function outcomeOf(
  row: Pick<ApprovalRow, 'status' | 'decided_by' | 'reason' | 'for_ms'>,
): HoldOutcome | undefined {
  switch (row.status) {
    case 'held':
      return undefined;
    case 'approved':
      return {
        result: 'approved',
        by: row.decided_by ?? '-',
        forMs: row.for_ms === null ? null : Number(row.for_ms),
      };
    case 'rejected':
      return {
        result: 'rejected',
        by: row.decided_by,
        // A reason this code does not know (a newer node's): the request is refused all the same.
        reason: row.reason !== null && REASONS.has(row.reason) ? (row.reason as RejectReason) : 'node-lost',
      };
    case 'timeout':
      return { result: 'timeout' };
    case 'cancelled':
      return { result: 'cancelled' };
  }
}

const COLUMNS = `id, node, profile, provider, connection, method, path, exe, pid, rule, since, status,
  decided_by, reason, for_ms, delivered_at`;

/** The row's node is alive: this node ($me), or one whose heartbeat is fresher than $stale ms. */
const alive = (me: string, stale: string) => `(a.node = ${me} OR EXISTS (SELECT 1 FROM authsome_nodes n
  WHERE n.name = a.node AND n.heartbeat_at > now() - make_interval(secs => ${stale}::double precision / 1000)))`;

const ms = (p: string) => `to_timestamp(${p}::double precision / 1000)`;

export const SQL = {
  insert: `INSERT INTO authsome_approvals
      (id, node, profile, provider, connection, method, path, exe, pid, rule, since, expires)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, ${ms('$11')}, ${ms('$12')})
    ON CONFLICT (id) DO NOTHING RETURNING id`,
  row: `SELECT ${COLUMNS} FROM authsome_approvals WHERE id = $1`,
  /** What waits, on every live node, oldest first. */
  list: `SELECT ${COLUMNS} FROM authsome_approvals a
    WHERE a.status = 'held' AND ${alive('$1', '$2')} ORDER BY a.since, a.id`,
  /** Any node's decision on a held request of a live node; the holder delivers it. */
  decide: `UPDATE authsome_approvals a
    SET status = $2, decided_by = $3, reason = $4, for_ms = $5, decided_at = now()
    WHERE a.id = $1 AND a.status = 'held' AND ${alive('$6', '$7')}
    RETURNING ${COLUMNS}`,
  /** The decision not delivered in time is taken back (only while still undelivered). */
  undecide: `UPDATE authsome_approvals
    SET status = 'held', decided_by = NULL, reason = NULL, for_ms = NULL, decided_at = NULL
    WHERE id = $1 AND status = $2 AND delivered_at IS NULL RETURNING id`,
  /** The holder takes a decision: exactly one claim succeeds, and an undecide after it fails. */
  claim: `UPDATE authsome_approvals SET delivered_at = now()
    WHERE id = $1 AND status <> 'held' AND delivered_at IS NULL
    RETURNING status, decided_by, reason, for_ms`,
  /** The holder ends a request itself (timeout, cancelled, shutdown): only one still held. */
  end: `UPDATE authsome_approvals
    SET status = $2, reason = $3, decided_at = now(), delivered_at = now()
    WHERE id = $1 AND status = 'held' RETURNING id`,
  /** The holder ends a request whatever was decided meanwhile (client gone, daemon stopping). */
  endAny: `UPDATE authsome_approvals
    SET status = $2, reason = $3, decided_at = coalesce(decided_at, now()), delivered_at = now()
    WHERE id = ANY($1::text[]) AND delivered_at IS NULL`,
  /** At start: rows this node left behind (a crash, a kill): no connection waits for them any more. */
  leftovers: `UPDATE authsome_approvals
    SET status = 'rejected', reason = 'shutdown', decided_at = coalesce(decided_at, now()), delivered_at = now()
    WHERE node = $1 AND delivered_at IS NULL`,
  /** Decisions waiting for this node to claim them (the safety net under the notifications). */
  undelivered: `SELECT id FROM authsome_approvals
    WHERE node = $1 AND delivered_at IS NULL AND status <> 'held'`,
  /** Every node's held rows of a deleted profile: rejected, each holder delivers. */
  rejectProfile: `UPDATE authsome_approvals
    SET status = 'rejected', decided_by = NULL, reason = 'profile-deleted', for_ms = NULL, decided_at = now()
    WHERE profile = $1 AND status = 'held' RETURNING id, node`,
  dropGrants: `DELETE FROM authsome_grants WHERE profile = $1`,
  grant: `INSERT INTO authsome_grants AS g (profile, connection, method, path, until)
    VALUES ($1, $2, $3, $4, ${ms('$5')})
    ON CONFLICT (profile, connection, method, path) DO UPDATE SET until = greatest(g.until, EXCLUDED.until)`,
  /** The grant covers the same requests held now, on every node. */
  approveSame: `UPDATE authsome_approvals a
    SET status = 'approved', decided_by = $5, reason = NULL, for_ms = $6, decided_at = now()
    WHERE profile = $1 AND connection = $2 AND method = $3 AND path = $4 AND status = 'held'
    RETURNING id, node`,
  granted: `SELECT 1 FROM authsome_grants
    WHERE profile = $1 AND connection = $2 AND method = $3 AND path = $4 AND until > ${ms('$5')}`,
  /** Rows of nodes that stopped without saying so (stale heartbeat): none may look alive. */
  sweepLost: `UPDATE authsome_approvals a
    SET status = 'rejected', reason = 'node-lost', decided_at = coalesce(decided_at, now()), delivered_at = now()
    WHERE a.delivered_at IS NULL AND a.node <> $1 AND NOT ${alive('$1', '$2')}`,
  /** Rows long past their timeout (their holder should have ended them). */
  sweepExpired: `UPDATE authsome_approvals
    SET status = 'timeout', decided_at = coalesce(decided_at, now()), delivered_at = now()
    WHERE delivered_at IS NULL AND node <> $1 AND expires < now() - interval '60 seconds'`,
  /** Finished rows are kept an hour (for an operator looking into one), then dropped; old grants too. */
  purge: `WITH gone AS (DELETE FROM authsome_approvals WHERE delivered_at < now() - interval '1 hour')
    DELETE FROM authsome_grants WHERE until < now() - interval '1 minute'`,
} as const;
