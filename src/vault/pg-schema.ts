/**
 * The PostgreSQL schema, versioned. Migrations only ever add: a node must be able to tell, with the
 * read-only queries of pg-open.ts, whether a database is empty, whose master key it holds and how new
 * its schema is, whatever version wrote it. So two things are fixed forever: the table
 * authsome_kv (k bytea, v bytea) with the key-check record at k = 'meta/keycheck', and the table
 * authsome_migrations (version, name, applied_at). See docs/team.md, "Store".
 */

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** The table that says which migrations are applied; created with the first one, never altered. */
export const MIGRATIONS_TABLE = `CREATE TABLE authsome_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;

const V1 = `
-- The vault: record key (UTF-8 bytes: bytea compares bytewise, which is LevelDB's order, whatever the
-- database's encoding or collation) -> sealed value (version || nonce || XChaCha20-Poly1305 ciphertext,
-- the key as associated data). Nothing in this table is readable without the master key.
CREATE TABLE authsome_kv (
  k bytea PRIMARY KEY,
  v bytea NOT NULL
);

-- The change feed: every statement that changes authsome_kv, whoever runs it (a node, or an operator
-- restoring rows by hand), notifies channel 'authsome_kv:<schema>' after commit with a JSON array of
-- the changed keys, or '*' (anything may have changed) when the list would not fit a notification.
CREATE FUNCTION authsome_kv_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  payload text;
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT json_agg(convert_from(k, 'UTF8'))::text INTO payload FROM authsome_new;
  ELSIF TG_OP = 'UPDATE' THEN
    SELECT json_agg(convert_from(k, 'UTF8'))::text INTO payload
      FROM (SELECT k FROM authsome_new UNION SELECT k FROM authsome_old) AS changed;
  ELSIF TG_OP = 'DELETE' THEN
    SELECT json_agg(convert_from(k, 'UTF8'))::text INTO payload FROM authsome_old;
  ELSE
    payload := '*';
  END IF;
  IF payload IS NULL THEN
    RETURN NULL;
  END IF;
  IF octet_length(payload) > 7000 THEN
    payload := '*';
  END IF;
  PERFORM pg_notify('authsome_kv:' || TG_TABLE_SCHEMA, payload);
  RETURN NULL;
END
$$;
CREATE TRIGGER authsome_kv_insert AFTER INSERT ON authsome_kv
  REFERENCING NEW TABLE AS authsome_new FOR EACH STATEMENT EXECUTE FUNCTION authsome_kv_notify();
CREATE TRIGGER authsome_kv_update AFTER UPDATE ON authsome_kv
  REFERENCING OLD TABLE AS authsome_old NEW TABLE AS authsome_new
  FOR EACH STATEMENT EXECUTE FUNCTION authsome_kv_notify();
CREATE TRIGGER authsome_kv_delete AFTER DELETE ON authsome_kv
  REFERENCING OLD TABLE AS authsome_old FOR EACH STATEMENT EXECUTE FUNCTION authsome_kv_notify();
CREATE TRIGGER authsome_kv_truncate AFTER TRUNCATE ON authsome_kv
  FOR EACH STATEMENT EXECUTE FUNCTION authsome_kv_notify();

-- The audit trail (SPEC sections 6 and 10): one hash chain per node. record is the canonical JSON
-- exactly as hashed (without hash); hash = sha256(prev || '\\n' || record).
CREATE TABLE authsome_audit (
  node text NOT NULL,
  seq bigint NOT NULL,
  ts timestamptz NOT NULL,
  record text NOT NULL,
  prev text NOT NULL,
  hash text NOT NULL,
  PRIMARY KEY (node, seq)
);
CREATE INDEX authsome_audit_ts ON authsome_audit (ts, node, seq);

-- The nodes sharing this database: a name is fixed at init; a live node (recent heartbeat) holds it.
CREATE TABLE authsome_nodes (
  name text PRIMARY KEY,
  host text NOT NULL,
  pid integer,
  joined_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  heartbeat_at timestamptz
);
`;

const V2 = `
-- Policy state shared by the nodes (SPEC sections 9 and 10). Nothing secret in any of it: keys are
-- profile, connection and rule-content hashes; held requests carry what \`authsome approvals\` shows.

-- Rate limits: one token bucket per rateKey(profile, connection, ruleKey), taken in one statement
-- (src/policy/pg-rate.ts). Times are milliseconds since the epoch (the database's clock by default).
-- full_ms: when the bucket will have refilled to full, after which a row is the same as none (swept).
CREATE TABLE authsome_rate (
  k text PRIMARY KEY,
  capacity integer NOT NULL,
  per_ms double precision NOT NULL,
  tokens double precision NOT NULL,
  at_ms double precision NOT NULL,
  full_ms double precision NOT NULL,
  ok boolean NOT NULL
);
CREATE INDEX authsome_rate_full ON authsome_rate (full_ms);

-- Held approvals (src/policy/pg-approvals.ts). A row is held by the node whose proxy keeps the client
-- connection open; any node may decide it (status approved/rejected, delivered_at still null), and the
-- holding node claims the decision (sets delivered_at) before it releases the request. Rows the holder
-- ends itself (timeout, cancelled, shutdown) are delivered at once. reason: why a rejection happened.
CREATE TABLE authsome_approvals (
  id text PRIMARY KEY,
  node text NOT NULL,
  profile text NOT NULL,
  provider text NOT NULL,
  connection text NOT NULL,
  method text NOT NULL,
  path text NOT NULL,
  exe text,
  pid integer,
  rule integer,
  since timestamptz NOT NULL,
  expires timestamptz NOT NULL,
  status text NOT NULL DEFAULT 'held'
    CHECK (status IN ('held', 'approved', 'rejected', 'timeout', 'cancelled')),
  decided_by text,
  reason text,
  for_ms bigint,
  decided_at timestamptz,
  delivered_at timestamptz
);
CREATE INDEX authsome_approvals_held ON authsome_approvals (since) WHERE status = 'held';
CREATE INDEX authsome_approvals_undelivered ON authsome_approvals (node) WHERE delivered_at IS NULL;
CREATE INDEX authsome_approvals_decided ON authsome_approvals (decided_at);

-- approve --for: the same profile, connection, method and path pass until \`until\`.
CREATE TABLE authsome_grants (
  profile text NOT NULL,
  connection text NOT NULL,
  method text NOT NULL,
  path text NOT NULL,
  until timestamptz NOT NULL,
  PRIMARY KEY (profile, connection, method, path)
);

-- Every change of a held request reaches every node on the change feed's channel, as the name
-- 'approval/<id>' (not a record key of authsome_kv: nothing under that prefix is ever stored there).
CREATE FUNCTION authsome_approvals_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('authsome_kv:' || TG_TABLE_SCHEMA, json_build_array('approval/' || NEW.id)::text);
  RETURN NULL;
END
$$;
CREATE TRIGGER authsome_approvals_change AFTER INSERT OR UPDATE ON authsome_approvals
  FOR EACH ROW EXECUTE FUNCTION authsome_approvals_notify();
`;

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'team mode: kv with change notifications, audit, nodes', sql: V1 },
  { version: 2, name: 'policy across nodes: rate buckets, held approvals, grants', sql: V2 },
];

/** The newest schema this code knows; a database beyond it is refused (ERR_STORE_SCHEMA). */
export const SCHEMA_VERSION = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);
