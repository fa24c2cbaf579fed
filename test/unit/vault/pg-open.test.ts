import { describe, expect, it } from 'vitest';
import { connectionKey, KEYCHECK_KEY } from '../../../src/vault/keys.js';
import { MIGRATIONS, SCHEMA_VERSION, type Migration } from '../../../src/vault/pg-schema.js';
import { hasPg } from '../../helpers/pg.js';
import { pgEngine } from './engines.js';
import { expectCode } from './fixtures.js';

const conn = connectionKey('alice', 'github', 'work');
const TEAM_TABLES = [
  'authsome_approvals',
  'authsome_audit',
  'authsome_grants',
  'authsome_kv',
  'authsome_migrations',
  'authsome_nodes',
  'authsome_rate',
];
/** The versions this code applies, and the one after it. */
const KNOWN = MIGRATIONS.map((m) => m.version);
const NEXT = SCHEMA_VERSION + 1;

/** One more schema version: what a newer authsome would bring. */
const V2: Migration = {
  version: NEXT,
  name: 'test: one more table',
  sql: 'CREATE TABLE authsome_v2_probe (x int)',
};

describe.skipIf(!hasPg)('opening the PostgreSQL store', () => {
  const fx = pgEngine();
  const { schemas } = fx;
  const versions = async (schema: string): Promise<number[]> =>
    (
      await schemas.admin<{ version: number }>(`SELECT version FROM ${schema}.authsome_migrations ORDER BY 1`)
    ).rows.map((r) => r.version);

  it('initialises an empty database in one go: tables, migrations, key-check record', async () => {
    const schema = await schemas.fresh();
    const opened = await fx.openPg(schema, fx.key(), { mode: 'create' });
    expect(opened.schemaVersion).toBe(SCHEMA_VERSION);
    const snap = await schemas.snapshot(schema);
    expect(Object.keys(snap)).toEqual(TEAM_TABLES);
    expect(await versions(schema)).toEqual(MIGRATIONS.map((m) => m.version));
    expect(await fx.rawKeys(schema)).toEqual([KEYCHECK_KEY]);
    expect(snap['authsome_audit']).toEqual([]);
    expect(snap['authsome_nodes']).toEqual([]);
  });

  it("refuses to join an empty database ('open'), creating nothing", async () => {
    const schema = await schemas.fresh();
    const e = await expectCode(fx.openPg(schema, fx.key(), { mode: 'open' }), 'ERR_HOME_NOT_INITIALISED');
    expect(e.message).toContain('holds no authsome vault');
    expect(await schemas.snapshot(schema)).toEqual({});
  });

  it("refuses 'create' on an initialised database (ERR_STORE_INITIALISED), changing nothing", async () => {
    const schema = await schemas.fresh();
    const key = fx.key();
    await (await fx.openPg(schema, key)).store.put(conn, { t: 1 });
    const before = await schemas.snapshot(schema);
    await expectCode(fx.openPg(schema, key, { mode: 'create' }), 'ERR_STORE_INITIALISED');
    expect(await schemas.snapshot(schema)).toEqual(before);
  });

  it('with a wrong master key: sealed, and not a row or a migration written, even one that is due', async () => {
    const schema = await schemas.fresh();
    const right = fx.key();
    const first = await fx.openPg(schema, right);
    await first.store.put(conn, { token: 't' });
    await first.db.query("INSERT INTO authsome_nodes (name, host) VALUES ('a', 'h')");
    await first.close();
    const before = await schemas.snapshot(schema);
    // A newer node (it knows one more migration) with the wrong key must not migrate before refusing.
    for (const mode of ['open', 'create-or-open', 'create'] as const) {
      const e = await expectCode(
        fx.openPg(schema, fx.key(), { mode, migrations: [...MIGRATIONS, V2] }),
        'ERR_VAULT_SEALED',
      );
      expect(e.message).toContain('nothing was written');
    }
    expect(await schemas.snapshot(schema)).toEqual(before);
    expect(await versions(schema)).toEqual(KNOWN);
    // The right key migrates, and reads what was there.
    const again = await fx.openPg(schema, right, { migrations: [...MIGRATIONS, V2] });
    expect(again.schemaVersion).toBe(NEXT);
    expect(await versions(schema)).toEqual([...KNOWN, NEXT]);
    expect(await again.store.get(conn)).toEqual({ token: 't' });
  });

  it('a node older than the database schema refuses to start (ERR_STORE_SCHEMA), writing nothing', async () => {
    const schema = await schemas.fresh();
    const key = fx.key();
    await (await fx.openPg(schema, key, { migrations: [...MIGRATIONS, V2] })).close();
    const before = await schemas.snapshot(schema);
    const e = await expectCode(fx.openPg(schema, key), 'ERR_STORE_SCHEMA');
    expect(e.message).toContain(`schema version ${NEXT}`);
    expect((e as { hint?: string }).hint).toMatch(/upgrade authsome/);
    // And a schema far ahead (a hand-made row) the same way.
    await schemas.admin(`INSERT INTO ${schema}.authsome_migrations (version, name) VALUES (999, 'future')`);
    await expectCode(fx.openPg(schema, key, { migrations: [...MIGRATIONS, V2] }), 'ERR_STORE_SCHEMA');
    const after = await schemas.snapshot(schema);
    expect(after['authsome_kv']).toEqual(before['authsome_kv']);
  });

  it('nodes starting together on an empty database initialise it once', async () => {
    const schema = await schemas.fresh();
    const key = fx.key();
    const opened = await Promise.all([1, 2, 3].map(() => fx.openPg(schema, key, { poolMax: 1 })));
    expect(opened.map((o) => o.schemaVersion)).toEqual([SCHEMA_VERSION, SCHEMA_VERSION, SCHEMA_VERSION]);
    expect(await versions(schema)).toEqual(KNOWN);
    expect(await fx.rawKeys(schema)).toEqual([KEYCHECK_KEY]);
    await opened[0]!.store.put(conn, { n: 1 });
    expect(await opened[2]!.store.get(conn)).toEqual({ n: 1 });
  });

  it('of two nodes racing to initialise with different keys, one wins and the other is sealed', async () => {
    const schema = await schemas.fresh();
    const results = await Promise.allSettled([fx.openPg(schema, fx.key()), fx.openPg(schema, fx.key())]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const failed = results.find((r) => r.status === 'rejected');
    expect((failed as PromiseRejectedResult).reason).toMatchObject({ code: 'ERR_VAULT_SEALED' });
    expect(await versions(schema)).toEqual(KNOWN);
  });

  it('nodes upgrading together apply each migration once (advisory lock)', async () => {
    const schema = await schemas.fresh();
    const key = fx.key();
    await (await fx.openPg(schema, key)).close();
    // V2 is a CREATE TABLE: applied twice it would fail, and so would one of the opens.
    const opened = await Promise.all(
      [1, 2, 3].map(() => fx.openPg(schema, key, { poolMax: 1, migrations: [...MIGRATIONS, V2] })),
    );
    expect(opened.map((o) => o.schemaVersion)).toEqual([NEXT, NEXT, NEXT]);
    expect(await versions(schema)).toEqual([...KNOWN, NEXT]);
  });

  it('a migration that fails leaves the schema as it was (each one is a transaction)', async () => {
    const schema = await schemas.fresh();
    const key = fx.key();
    await (await fx.openPg(schema, key)).close();
    const broken: Migration = {
      version: NEXT,
      name: 'test: half a migration',
      sql: 'CREATE TABLE authsome_half (x int); SELECT no_such_function()',
    };
    await expectCode(
      fx.openPg(schema, key, { migrations: [...MIGRATIONS, broken] }),
      'ERR_STORE_UNAVAILABLE',
    );
    expect(await versions(schema)).toEqual(KNOWN);
    expect(Object.keys(await schemas.snapshot(schema))).toEqual(TEAM_TABLES);
  });

  it('a team database of schema 1 is migrated to the policy tables (version 2) by the first node that opens it', async () => {
    const schema = await schemas.fresh();
    const key = fx.key();
    const v1 = await fx.openPg(schema, key, { migrations: MIGRATIONS.filter((m) => m.version === 1) });
    await v1.store.put(conn, { t: 1 });
    await v1.close();
    expect(Object.keys(await schemas.snapshot(schema))).toEqual(
      TEAM_TABLES.filter((t) => !['authsome_approvals', 'authsome_grants', 'authsome_rate'].includes(t)),
    );
    const now = await fx.openPg(schema, key);
    expect(now.schemaVersion).toBe(SCHEMA_VERSION);
    expect(await versions(schema)).toEqual(KNOWN);
    expect(Object.keys(await schemas.snapshot(schema))).toEqual(TEAM_TABLES);
    expect(await now.store.get(conn)).toEqual({ t: 1 });
  });

  it('keeps one schema per store: two schemas in one database do not see each other', async () => {
    const [s1, s2] = [await schemas.fresh(), await schemas.fresh()];
    const a = await fx.openPg(s1, fx.key());
    const b = await fx.openPg(s2, fx.key());
    await a.store.put(conn, { in: 's1' });
    expect(await b.store.get(conn)).toBeUndefined();
  });
});
