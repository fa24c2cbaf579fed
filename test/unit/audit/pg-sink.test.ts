import { describe, expect, it } from 'vitest';
import { PgAuditSink, readAuditDb, verifyAuditDb } from '../../../src/audit/pg-sink.js';
import { isAppError } from '../../../src/errors.js';
import { hasPg } from '../../helpers/pg.js';
import { pgEngine } from '../vault/engines.js';

/**
 * The team audit trail (SPEC section 10): one chain per node in PostgreSQL, committed before append
 * resolves, group commit, continued after a restart, merged by time for readers, verified per chain.
 */
describe.skipIf(!hasPg)('PgAuditSink', () => {
  const fx = pgEngine();

  async function db() {
    const schema = await fx.schemas.fresh();
    const opened = await fx.openPg(schema, fx.key());
    return { schema, db: opened.db };
  }

  it('chains each node apart, commits before resolving, and a reopened node continues its chain', async () => {
    const { db: d, schema } = await db();
    const a = await PgAuditSink.open(d, 'node-a');
    const b = await PgAuditSink.open(d, 'node-b');
    const recs = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 ? a : b).append({ event: 'proxy.inject', profile: 'me', path: `/p${i}` }),
      ),
    );
    expect(recs.every((r, i) => r.node === (i % 2 ? 'node-a' : 'node-b'))).toBe(true);
    expect(a.head.seq).toBe(20);
    expect(b.head.seq).toBe(20);
    // Every record it resolved with is in the database already.
    const rows = await fx.schemas.admin<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.authsome_audit`);
    expect(Number(rows.rows[0]!.n)).toBe(40);
    const again = await PgAuditSink.open(d, 'node-a');
    expect(again.head).toEqual(a.head);
    const next = await again.append({ event: 'daemon.start', profile: '-' });
    expect(next).toMatchObject({ seq: 21, prev: a.head.hash, node: 'node-a' });
    const verdicts = await verifyAuditDb(d);
    expect(verdicts.map((v) => [v.node, v.ok, v.rows])).toEqual([
      ['node-a', true, 21],
      ['node-b', true, 20],
    ]);
    const merged = await readAuditDb(d, { event: 'proxy.inject' });
    expect(merged).toHaveLength(40);
    expect(merged.map((r) => r.ts)).toEqual([...merged.map((r) => r.ts)].sort());
    expect(await readAuditDb(d, { node: 'node-b', limit: 3 })).toHaveLength(3);
    expect(
      await a.holds({ seq: 5, hash: merged.find((r) => r.node === 'node-a' && r.seq === 5)!.hash }),
    ).toBe(true);
  });

  it('names the first broken row of a chain: a changed record, a row copied from another node, a gap', async () => {
    const { db: d, schema } = await db();
    const a = await PgAuditSink.open(d, 'a');
    const b = await PgAuditSink.open(d, 'b');
    for (let i = 0; i < 5; i++) {
      await a.append({ event: 'login', profile: 'me' });
      await b.append({ event: 'login', profile: 'me' });
    }
    await fx.schemas.admin(
      `UPDATE ${schema}.authsome_audit SET record = replace(record, '"profile":"me"', '"profile":"xx"') WHERE node = 'a' AND seq = 3`,
    );
    await fx.schemas.admin(`DELETE FROM ${schema}.authsome_audit WHERE node = 'b' AND seq = 2`);
    const v = await verifyAuditDb(d);
    expect(v.find((x) => x.node === 'a')).toMatchObject({ ok: false, firstBroken: { seq: 3 } });
    expect(v.find((x) => x.node === 'b')).toMatchObject({ ok: false, firstBroken: { seq: 2 } });
  });

  it('an unreachable database: appends reject with ERR_STORE_UNAVAILABLE, and the chain goes on once it is back', async () => {
    const { db: d } = await db();
    let down = false;
    const flaky = {
      query: <R extends Record<string, unknown>>(text: string, values?: unknown[]) =>
        down ? Promise.reject(new Error('connection refused')) : d.query<R>(text, values),
    };
    const s = await PgAuditSink.open(flaky, 'n');
    await s.append({ event: 'login', profile: 'me' });
    down = true;
    const err = await s.append({ event: 'proxy.inject', profile: 'me' }).catch((e: unknown) => e);
    expect(isAppError(err) && err.code).toBe('ERR_STORE_UNAVAILABLE');
    await expect(s.ready()).rejects.toBeDefined();
    down = false;
    const r = await s.append({ event: 'proxy.inject', profile: 'me' });
    expect(r.seq).toBe(2);
    expect((await verifyAuditDb(d))[0]).toMatchObject({ ok: true, rows: 2 });
  });
});
