import { randomBytes } from 'node:crypto';
import { Level } from 'level';
import { openPgStore, type PgStore, type PgStoreOptions } from '../../../src/vault/pg-open.js';
import type { KvStore } from '../../../src/vault/types.js';
import { pgUrl, usePgSchemas, type PgSchemas } from '../../helpers/pg.js';
import { readAllBytes, useVaultFixtures } from './fixtures.js';

/**
 * The store's tests run against every engine: LevelDB always, PostgreSQL when the test server is
 * there (otherwise its suites are skipped, and the global setup has said so once).
 */

export type EngineName = 'level' | 'postgres';
export const ENGINES: ReadonlyArray<{ name: EngineName; skip: boolean }> = [
  { name: 'level', skip: false },
  { name: 'postgres', skip: pgUrl() === undefined },
];

export interface EngineFixture {
  readonly name: EngineName;
  /** The code an engine failure maps to. */
  readonly unavailable: 'ERR_VAULT_UNAVAILABLE' | 'ERR_STORE_UNAVAILABLE';
  key(): Uint8Array;
  /** A fresh, empty place for a store: a temp directory, or a fresh schema. */
  place(): Promise<string>;
  /** Opens (creating on first use) the store at place; closed after the test. */
  open(place: string, masterKey?: Uint8Array): Promise<KvStore>;
  /** Raw access below the seal (the store at place must be closed for LevelDB, which locks). */
  rawGet(place: string, key: string): Promise<Uint8Array | undefined>;
  rawPut(place: string, key: string, value: Uint8Array): Promise<void>;
  /** Every raw key, in the engine's own order. */
  rawKeys(place: string): Promise<string[]>;
  /** Every byte the engine holds for place (files, or every row as text), for canary scans. */
  rawBytes(place: string): Promise<Buffer>;
}

export function useEngine(name: EngineName): EngineFixture {
  return name === 'level' ? levelEngine() : pgEngine();
}

function levelEngine(): EngineFixture {
  const fx = useVaultFixtures();
  const withRaw = async <T>(dir: string, fn: (db: Level<string, Uint8Array>) => Promise<T>): Promise<T> => {
    const db = await fx.raw(dir);
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  };
  return {
    name: 'level',
    unavailable: 'ERR_VAULT_UNAVAILABLE',
    key: fx.key,
    place: async () => fx.tmp(),
    open: (dir, masterKey) => fx.open(dir, masterKey),
    rawGet: (dir, key) => withRaw(dir, (db) => db.get(key)),
    rawPut: (dir, key, value) => withRaw(dir, (db) => db.put(key, value)),
    rawKeys: (dir) => withRaw(dir, (db) => db.keys().all()),
    rawBytes: async (dir) => readAllBytes(dir),
  };
}

export interface PgEngineFixture extends EngineFixture {
  readonly schemas: PgSchemas;
  /** The full PostgreSQL store (feed, handle) at a schema, closed after the test. */
  openPg(schema: string, masterKey: Uint8Array, more?: Partial<PgStoreOptions>): Promise<PgStore>;
}

export function pgEngine(): PgEngineFixture {
  const schemas = usePgSchemas();
  const key = (): Uint8Array => new Uint8Array(randomBytes(32));
  const openPg = async (
    schema: string,
    masterKey: Uint8Array,
    more: Partial<PgStoreOptions> = {},
  ): Promise<PgStore> => {
    const url = pgUrl();
    if (url === undefined) throw new Error('no test PostgreSQL');
    const opened = await openPgStore({
      url,
      masterKey,
      schema,
      mode: 'create-or-open',
      poolMax: 3,
      ...more,
    });
    schemas.defer(() => opened.close());
    return opened;
  };
  return {
    name: 'postgres',
    unavailable: 'ERR_STORE_UNAVAILABLE',
    schemas,
    key,
    openPg,
    place: () => schemas.fresh(),
    open: async (schema, masterKey = key()) => (await openPg(schema, masterKey)).store,
    async rawGet(schema, k) {
      const { rows } = await schemas.admin<{ v: Buffer }>(
        `SELECT v FROM ${schema}.authsome_kv WHERE k = $1`,
        [Buffer.from(k)],
      );
      return rows[0]?.v;
    },
    async rawPut(schema, k, value) {
      await schemas.admin(
        `INSERT INTO ${schema}.authsome_kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`,
        [Buffer.from(k), Buffer.from(value)],
      );
    },
    async rawKeys(schema) {
      const { rows } = await schemas.admin<{ k: Buffer }>(`SELECT k FROM ${schema}.authsome_kv ORDER BY k`);
      return rows.map((r) => r.k.toString('utf8'));
    },
    async rawBytes(schema) {
      const tables = await schemas.snapshot(schema);
      const { rows } = await schemas.admin<{ v: Buffer }>(`SELECT v FROM ${schema}.authsome_kv`);
      return Buffer.concat([Buffer.from(JSON.stringify(tables)), ...rows.map((r) => r.v)]);
    },
  };
}
