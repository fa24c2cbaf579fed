import pg from 'pg';
import { AppError } from '../errors.js';
import { KEYCHECK_KEY } from './keys.js';
import {
  clientConfig,
  DEFAULT_TIMEOUTS,
  parsePgUrl,
  passwordCallback,
  SCHEMA_NAME,
  Scrubber,
  type PasswordSource,
  type PgTimeouts,
} from './pg-config.js';
import { PgChangeFeed } from './pg-feed.js';
import { MIGRATIONS, MIGRATIONS_TABLE, type Migration } from './pg-schema.js';
import { pgHandle, PgRawKv, type PgHandle } from './pg-store.js';
import { initSodium } from './seal.js';
import { checkMasterKey, newKeyCheck, SealedKvStore, verifyKeyCheck } from './sealed-store.js';
import type { KvStore } from './types.js';

/**
 * Opening the PostgreSQL store, in the order SPEC section 10 requires: read-only queries first (is the
 * database empty, does our master key open its key-check record, how new is its schema), and only
 * when all of that passes any write (the first initialisation, or a migration). A wrong key, a schema
 * newer than this code, or an empty database where one was expected: refused with nothing written.
 */

/**
 * open: the database must already hold a vault (daemon start, init --join).
 * create: it must not (init --store): an initialised database is ERR_STORE_INITIALISED.
 * create-or-open: either; initialises an empty one (tests, and LevelDB-like first starts).
 */
export type PgOpenMode = 'open' | 'create' | 'create-or-open';

export interface PgStoreOptions {
  readonly url: string;
  readonly masterKey: Uint8Array;
  readonly mode?: PgOpenMode;
  readonly password?: PasswordSource;
  /** PEM of the CA that signed the database server's certificate (store.caFile). */
  readonly caPem?: string | undefined;
  /** Default 'public'. Tests use one schema each. */
  readonly schema?: string;
  readonly timeouts?: Partial<PgTimeouts>;
  /** Pool size (default 10). */
  readonly poolMax?: number;
  readonly feed?: {
    readonly pingMs?: number;
    readonly initialBackoffMs?: number;
    readonly maxBackoffMs?: number;
  };
  /** The migrations this code knows (default MIGRATIONS); tests pass others to act as older or newer code. */
  readonly migrations?: readonly Migration[];
}

export interface PgStore {
  readonly store: KvStore;
  readonly feed: PgChangeFeed;
  readonly db: PgHandle;
  /** The schema version the database is at after opening (the newest this code knows). */
  readonly schemaVersion: number;
  close(): Promise<void>;
}

const HINTS = {
  sealed: 'use the server/master.key of the nodes that initialised this database',
  corrupt: 'restore the database from a backup',
};

/**
 * Two nodes migrating (or initialising) one schema at once: the second waits for the first. The lock
 * is per schema (a literal name, since current_schema() is null before the schema exists), in a key
 * space of its own (0x61757468, "auth") to stay clear of other applications' advisory locks.
 */
async function lock(c: pg.PoolClient, schema: string): Promise<void> {
  await c.query('SELECT pg_advisory_xact_lock(1635087464, hashtext($1))', [schema]);
}

export async function openPgStore(opts: PgStoreOptions): Promise<PgStore> {
  checkMasterKey(opts.masterKey);
  await initSodium();
  const parsed = parsePgUrl(opts.url);
  // A CA file only makes sense for TLS: naming one turns verified TLS on, even on loopback.
  const target = { ...parsed, tls: parsed.tls || opts.caPem !== undefined };
  const schema = opts.schema ?? 'public';
  if (!SCHEMA_NAME.test(schema)) throw new TypeError(`invalid schema name ${JSON.stringify(schema)}`);
  const scrubber = new Scrubber();
  const password = passwordCallback(opts.password ?? {}, scrubber);
  const timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
  const base = { password, caPem: opts.caPem, schema, timeouts };
  const pool = new pg.Pool({
    ...clientConfig(target, { ...base, applicationName: 'authsome' }),
    max: opts.poolMax ?? 10,
    idleTimeoutMillis: 30_000,
  });
  // An idle connection the server drops emits 'error' on the pool; unhandled, it would end the process.
  pool.on('error', () => undefined);
  const db = pgHandle(pool, target.display, schema, scrubber);
  let schemaVersion: number;
  try {
    schemaVersion = await prepare(db, opts.masterKey, opts.mode ?? 'open', opts.migrations ?? MIGRATIONS);
  } catch (e) {
    await db.close().catch(() => undefined);
    throw db.failure(e);
  }
  const feed = new PgChangeFeed({
    // Named per schema, so an operator (or a test) can tell which connection is whose feed.
    config: clientConfig(target, { ...base, applicationName: `authsome-feed ${schema}` }),
    channel: `authsome_kv:${schema}`,
    ...opts.feed,
  });
  await feed.start();
  const store = new SealedKvStore(new PgRawKv(db), opts.masterKey, (keys) => feed.local(keys));
  return {
    store,
    feed,
    db,
    schemaVersion,
    async close() {
      await feed.close();
      await store.close();
    },
  };
}

interface DbState {
  readonly hasKv: boolean;
  readonly hasMigrations: boolean;
  readonly keyCheck: Buffer | undefined;
  readonly anyRecord: boolean;
  readonly version: number;
}

/** Read-only: what is there. */
async function inspect(db: PgHandle): Promise<DbState> {
  const { rows } = await db.query<{ kv: boolean; mig: boolean }>(
    "SELECT to_regclass('authsome_kv') IS NOT NULL AS kv, to_regclass('authsome_migrations') IS NOT NULL AS mig",
  );
  const hasKv = rows[0]?.kv === true;
  const hasMigrations = rows[0]?.mig === true;
  let keyCheck: Buffer | undefined;
  let anyRecord = false;
  if (hasKv) {
    const check = await db.query<{ v: Buffer }>('SELECT v FROM authsome_kv WHERE k = $1', [
      Buffer.from(KEYCHECK_KEY),
    ]);
    keyCheck = check.rows[0]?.v;
    anyRecord = (await db.query('SELECT 1 FROM authsome_kv LIMIT 1')).rows.length > 0;
  }
  let version = 0;
  if (hasMigrations) {
    const v = await db.query<{ v: number | null }>('SELECT max(version) AS v FROM authsome_migrations');
    version = v.rows[0]?.v ?? 0;
  }
  return { hasKv, hasMigrations, keyCheck, anyRecord, version };
}

async function prepare(
  db: PgHandle,
  masterKey: Uint8Array,
  mode: PgOpenMode,
  migrations: readonly Migration[],
): Promise<number> {
  const known = newestOf(migrations);
  // Twice at most: an empty database another node initialises while we wait for the lock is then
  // opened like any initialised one (its key checked first).
  for (let round = 0; round < 2; round++) {
    const state = await inspect(db);
    if (state.hasKv || state.hasMigrations) {
      verify(state, masterKey, db.display);
      if (mode === 'create') {
        throw new AppError(
          'ERR_STORE_INITIALISED',
          `the database ${db.display} already holds an authsome vault`,
          'to add a node to it: authsome init --join URL --master-key FILE',
        );
      }
      if (state.version > known) throw tooNew(db.display, state.version, known);
      if (state.version < known) await migrate(db, migrations);
      return known;
    }
    if (mode === 'open') {
      throw new AppError(
        'ERR_HOME_NOT_INITIALISED',
        `the database ${db.display} (schema ${db.schema}) holds no authsome vault`,
        'initialise it from the first node with: authsome init --store URL',
      );
    }
    if (await initialise(db, masterKey, migrations)) return known;
  }
  throw new AppError('ERR_STORE_UNAVAILABLE', `the database ${db.display} changed while opening it`, 'retry');
}

/** The key check: before any write, and before the schema version decides anything. */
function verify(state: DbState, masterKey: Uint8Array, display: string): void {
  if (state.keyCheck !== undefined) {
    verifyKeyCheck(masterKey, state.keyCheck, HINTS);
    return;
  }
  throw new AppError(
    'ERR_VAULT_CORRUPT',
    state.anyRecord
      ? `the database ${display} holds records but no key-check record`
      : `the database ${display} has authsome tables but no key-check record`,
    HINTS.corrupt,
  );
}

function newestOf(migrations: readonly Migration[]): number {
  return migrations.reduce((max, m) => Math.max(max, m.version), 0);
}

function tooNew(display: string, version: number, known: number): AppError {
  return new AppError(
    'ERR_STORE_SCHEMA',
    `the database ${display} has schema version ${version}, newer than this authsome knows (${known})`,
    'upgrade authsome on this node to the version the other nodes run',
  );
}

/**
 * Creates everything in one transaction: migrations table, every migration, the key-check record. So
 * a database is either empty or fully initialised with its key-check record, never in between.
 * Returns false if another node initialised it while we waited for the lock (nothing written).
 */
async function initialise(
  db: PgHandle,
  masterKey: Uint8Array,
  migrations: readonly Migration[],
): Promise<boolean> {
  return db.transaction(async (c) => {
    await lock(c, db.schema);
    // SCHEMA_NAME allows only [a-z0-9_], so the name needs no quoting.
    if (db.schema !== 'public') await c.query(`CREATE SCHEMA IF NOT EXISTS ${db.schema}`);
    const { rows } = await c.query<{ mig: boolean }>(
      "SELECT to_regclass('authsome_migrations') IS NOT NULL AS mig",
    );
    if (rows[0]?.mig === true) return false;
    await c.query(MIGRATIONS_TABLE);
    for (const m of sorted(migrations)) await apply(c, m);
    await c.query('INSERT INTO authsome_kv (k, v) VALUES ($1, $2)', [
      Buffer.from(KEYCHECK_KEY),
      Buffer.from(newKeyCheck(masterKey)),
    ]);
    return true;
  });
}

function sorted(migrations: readonly Migration[]): Migration[] {
  return [...migrations].sort((a, b) => a.version - b.version);
}

async function apply(c: pg.PoolClient, m: Migration): Promise<void> {
  await c.query(m.sql);
  await c.query('INSERT INTO authsome_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
}

/**
 * Each pending migration in its own transaction, under the advisory lock, re-reading the version
 * inside it: a node that waited for another's migration finds it applied and skips it.
 */
export async function migrate(db: PgHandle, migrations: readonly Migration[]): Promise<number> {
  const newest = newestOf(migrations);
  let version = 0;
  for (const m of sorted(migrations)) {
    version = await db.transaction(async (c) => {
      await lock(c, db.schema);
      const { rows } = await c.query<{ v: number | null }>(
        'SELECT max(version) AS v FROM authsome_migrations',
      );
      const current = rows[0]?.v ?? 0;
      if (current > newest) throw tooNew(db.display, current, newest);
      if (current >= m.version) return current;
      await apply(c, m);
      return m.version;
    });
  }
  return version;
}
