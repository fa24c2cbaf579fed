import { describe, expect, it } from 'vitest';
import { isAppError } from '../../../src/errors.js';
import { PgRateState } from '../../../src/policy/pg-rate.js';
import { rateKey } from '../../../src/policy/rate.js';
import { parseRate } from '../../../src/policy/rate-spec.js';
import { hasPg } from '../../helpers/pg.js';
import { pgEngine } from '../vault/engines.js';

/**
 * Rate buckets in PostgreSQL (SPEC section 10, issue 15 item 4): the same token-bucket answers as the
 * in-memory state, and counted across nodes: two "nodes" (two stores, two pools) taking concurrently
 * from one bucket never let through more than its capacity plus what refilled meanwhile.
 */
const spec = (t: string) => parseRate(t)!;

describe.skipIf(!hasPg)('PgRateState', () => {
  const fx = pgEngine();

  async function twoNodes() {
    const schema = await fx.schemas.fresh();
    const key = fx.key();
    const a = await fx.openPg(schema, key, { poolMax: 5 });
    const b = await fx.openPg(schema, key, { poolMax: 5 });
    return { schema, a, b };
  }

  it('answers as a token bucket: a full burst, then 429 seconds until the next token, refilled continuously', async () => {
    const { a } = await twoNodes();
    const s = new PgRateState(a.db, { clock: 'caller' });
    const k = rateKey('agent', 'work', 'abc');
    for (let i = 0; i < 60; i++) expect(await s.take(k, spec('60/min'), 0)).toEqual({ ok: true });
    expect(await s.take(k, spec('60/min'), 0)).toEqual({ ok: false, retryAfterS: 1 });
    expect(await s.take(k, spec('60/min'), 999)).toEqual({ ok: false, retryAfterS: 1 });
    expect(await s.take(k, spec('60/min'), 1000)).toEqual({ ok: true });
    expect((await s.take(k, spec('60/min'), 1000)).ok).toBe(false);
    const day = spec('100/day');
    for (let i = 0; i < 100; i++) await s.take('d', day, 0);
    expect(await s.take('d', day, 0)).toEqual({ ok: false, retryAfterS: 864 });
  });

  it('keeps keys apart, gives nothing back when a clock steps back, and starts full when the rate changes', async () => {
    const { a } = await twoNodes();
    const s = new PgRateState(a.db, { clock: 'caller' });
    const one = spec('1/min');
    expect((await s.take('agent/work/r1', one, 100_000)).ok).toBe(true);
    expect((await s.take('agent/work/r1', one, 100_000)).ok).toBe(false);
    expect((await s.take('agent/personal/r1', one, 100_000)).ok).toBe(true);
    expect((await s.take('agent/work/r1', one, 0)).ok).toBe(false); // the clock stepped back
    expect((await s.take('agent/work/r1', one, 100_000)).ok).toBe(false);
    expect((await s.take('agent/work/r1', one, 160_000)).ok).toBe(true);
    expect((await s.take('agent/work/r1', spec('2/min'), 160_000)).ok).toBe(true); // a new rate: full
  });

  it('counts the takes of two nodes together: concurrent takes never pass the limit plus one refill', async () => {
    const { a, b } = await twoNodes();
    const nodes = [new PgRateState(a.db), new PgRateState(b.db)]; // the database's clock
    const r = spec('20/min');
    const k = rateKey('agent', 'work', 'f00d');
    const start = Date.now();
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => nodes[i % 2]!.take(k, r, Date.now())),
    );
    const elapsed = Date.now() - start;
    const passed = results.filter((x) => x.ok).length;
    // Every token of the full bucket was used; beyond it only what refilled while the takes ran.
    expect(passed).toBeGreaterThanOrEqual(20);
    expect(passed).toBeLessThanOrEqual(20 + 1 + Math.floor((elapsed * 20) / 60_000));
    for (const x of results) if (!x.ok) expect(x.retryAfterS).toBeGreaterThanOrEqual(1);
    // And alternating, one after another, the same: the 21st and 22nd are refused on either node.
    const k2 = rateKey('agent', 'work', 'beef');
    const seq: boolean[] = [];
    for (let i = 0; i < 22; i++) seq.push((await nodes[i % 2]!.take(k2, r, Date.now())).ok);
    expect(seq.slice(0, 20).every(Boolean)).toBe(true);
    expect(seq.slice(20)).toEqual([false, false]);
  });

  it('sweeps buckets that have refilled to full and keeps the ones still counting; no secret in the rows', async () => {
    const { a, schema } = await twoNodes();
    const s = new PgRateState(a.db, { clock: 'caller' });
    for (let i = 0; i < 50; i++) await s.take(`agent/work/idle${i}`, spec('10/sec'), 0);
    await s.take('agent/work/busy', spec('1/day'), 0);
    expect(await s.sweep(1000)).toBe(50);
    const rows = await fx.schemas.admin<{ k: string }>(`SELECT k FROM ${schema}.authsome_rate`);
    expect(rows.rows.map((x) => x.k)).toEqual(['agent/work/busy']);
    expect((await s.take('agent/work/busy', spec('1/day'), 1000)).ok).toBe(false);
  });

  it('fails closed: with the database unreachable a take is ERR_STORE_UNAVAILABLE, never allowed', async () => {
    const { a } = await twoNodes();
    const s = new PgRateState(a.db);
    expect((await s.take('agent/work/x', spec('5/min'), Date.now())).ok).toBe(true);
    await a.db.close();
    const e = await s.take('agent/work/x', spec('5/min'), Date.now()).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isAppError(e) && e.code).toBe('ERR_STORE_UNAVAILABLE');
    expect(isAppError(e) && e.status).toBe(503);
  });
});
