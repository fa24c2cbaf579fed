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

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'team mode: kv with change notifications, audit, nodes', sql: V1 },
];

/** The newest schema this code knows; a database beyond it is refused (ERR_STORE_SCHEMA). */
export const SCHEMA_VERSION = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);
