import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MemoryRateState, rateKey } from '../../../src/policy/rate.js';
import { RateFoldLog } from '../../../src/policy/rate-fold.js';
import { parseRate } from '../../../src/policy/rate-spec.js';

const spec = (t: string) => parseRate(t)!;

describe('parseRate', () => {
  it('reads N/unit in short and long spellings and normalises the unit', () => {
    expect(parseRate('60/min')).toEqual({ text: '60/min', count: 60, perMs: 60_000 });
    expect(parseRate('1000/day')).toEqual({ text: '1000/day', count: 1000, perMs: 86_400_000 });
    expect(parseRate('5/s')?.text).toBe('5/sec');
    expect(parseRate('5/second')?.text).toBe('5/sec');
    expect(parseRate('2/h')?.text).toBe('2/hour');
    expect(parseRate('7/d')?.perMs).toBe(86_400_000);
    for (const bad of ['0/min', '-1/min', '1.5/min', '60/week', '60 / min', '60/MIN', '', '/min', '0100/min'])
      expect(parseRate(bad), bad).toBeUndefined();
  });
});

describe('MemoryRateState: token buckets', () => {
  it('lets a full bucket through, then refuses with the seconds until the next token', async () => {
    const s = new MemoryRateState();
    const k = rateKey('agent', 'work', 'abc');
    for (let i = 0; i < 60; i++) expect(await s.take(k, spec('60/min'), 0)).toEqual({ ok: true });
    expect(await s.take(k, spec('60/min'), 0)).toEqual({ ok: false, retryAfterS: 1 });
    expect(await s.take(k, spec('60/min'), 999)).toEqual({ ok: false, retryAfterS: 1 });
    expect(await s.take(k, spec('60/min'), 1000)).toEqual({ ok: true });
    expect((await s.take(k, spec('60/min'), 1000)).ok).toBe(false);
  });

  it('refills continuously, and says how long a slow bucket takes', async () => {
    const s = new MemoryRateState();
    expect((await s.take('k', spec('2/sec'), 0)).ok).toBe(true);
    expect((await s.take('k', spec('2/sec'), 0)).ok).toBe(true);
    expect(await s.take('k', spec('2/sec'), 250)).toEqual({ ok: false, retryAfterS: 1 });
    expect((await s.take('k', spec('2/sec'), 500)).ok).toBe(true);
    const day = spec('1000/day');
    for (let i = 0; i < 1000; i++) await s.take('d', day, 0);
    expect(await s.take('d', day, 0)).toEqual({ ok: false, retryAfterS: 87 });
  });

  it('counts each key alone (profile, connection, rule content)', async () => {
    const s = new MemoryRateState();
    const one = spec('1/hour');
    expect((await s.take(rateKey('a', 'work', 'r1'), one, 0)).ok).toBe(true);
    expect((await s.take(rateKey('a', 'work', 'r1'), one, 0)).ok).toBe(false);
    expect((await s.take(rateKey('a', 'personal', 'r1'), one, 0)).ok).toBe(true);
    expect((await s.take(rateKey('b', 'work', 'r1'), one, 0)).ok).toBe(true);
    expect((await s.take(rateKey('a', 'work', 'r2'), one, 0)).ok).toBe(true);
  });

  it('gives no tokens back when the clock steps backwards', async () => {
    const s = new MemoryRateState();
    const one = spec('1/min');
    expect((await s.take('k', one, 100_000)).ok).toBe(true);
    expect((await s.take('k', one, 0)).ok).toBe(false);
    expect((await s.take('k', one, 100_000)).ok).toBe(false);
    expect((await s.take('k', one, 160_000)).ok).toBe(true);
  });

  it('forgets buckets that have refilled to full, and keeps the ones still counting', () => {
    const s = new MemoryRateState();
    for (let i = 0; i < 100; i++) s.takeNow(`idle${i}`, spec('10/sec'), 0);
    s.takeNow('busy', spec('1/day'), 0);
    expect(s.size).toBe(101);
    s.sweep(1000);
    expect(s.size).toBe(1);
    expect(s.takeNow('busy', spec('1/day'), 1000).ok).toBe(false);
  });

  it('sweeps by itself, so memory follows the buckets in use, not the requests', () => {
    const s = new MemoryRateState({ sweepAbove: 50 });
    for (let i = 0; i < 10_000; i++) s.takeNow(`k${i}`, spec('5/sec'), i * 1000);
    expect(s.size).toBeLessThanOrEqual(51);
  });

  it('never lets more through than the capacity plus what refilled (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.constantFrom('sec', 'min'),
        fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 200 }),
        (count, unit, gaps) => {
          const r = spec(`${count}/${unit}`);
          const s = new MemoryRateState();
          let now = 0;
          let passed = 0;
          for (const g of gaps) {
            now += g;
            if (s.takeNow('k', r, now).ok) passed++;
          }
          expect(passed).toBeLessThanOrEqual(count + Math.floor((now * count) / r.perMs));
        },
      ),
    );
  });
});

describe('RateFoldLog: one rate_limited record per rule and profile per second', () => {
  const rec = (path: string) => ({ event: 'policy.rate_limited', profile: 'agent', rule: 3, path });

  it('writes the first refusal at once and folds the rest of the second into one record', () => {
    const log = new RateFoldLog<ReturnType<typeof rec>>();
    expect(log.add('agent/r', rec('/a'), 0)).toEqual([{ ...rec('/a'), count: 1 }]);
    for (let i = 1; i <= 5; i++) expect(log.add('agent/r', rec(`/b${i}`), i * 100)).toEqual([]);
    expect(log.due(999)).toEqual([]);
    expect(log.due(1000)).toEqual([{ ...rec('/b5'), count: 5 }]);
    // nothing in the next second: the key goes quiet, and the next refusal is written at once
    expect(log.due(2000)).toEqual([]);
    expect(log.pending).toBe(0);
    expect(log.add('agent/r', rec('/c'), 2500)).toEqual([{ ...rec('/c'), count: 1 }]);
  });

  it('keeps keys apart', () => {
    const log = new RateFoldLog<ReturnType<typeof rec>>();
    expect(log.add('agent/r1', rec('/a'), 0)).toHaveLength(1);
    expect(log.add('agent/r2', rec('/a'), 0)).toHaveLength(1);
    expect(log.add('other/r1', rec('/a'), 0)).toHaveLength(1);
    expect(log.add('agent/r1', rec('/a'), 1)).toHaveLength(0);
  });

  it('writes a late window when the next refusal comes before due() was called', () => {
    const log = new RateFoldLog<ReturnType<typeof rec>>();
    log.add('k', rec('/1'), 0);
    log.add('k', rec('/2'), 10);
    expect(log.add('k', rec('/3'), 1500)).toEqual([{ ...rec('/2'), count: 1 }]);
    expect(log.flush()).toEqual([{ ...rec('/3'), count: 1 }]);
  });

  it('loses nothing at shutdown: flush writes every folded count', () => {
    const log = new RateFoldLog<ReturnType<typeof rec>>();
    log.add('a', rec('/a'), 0);
    log.add('a', rec('/a2'), 1);
    log.add('b', rec('/b'), 0);
    expect(log.flush()).toEqual([{ ...rec('/a2'), count: 1 }]);
    expect(log.pending).toBe(0);
    expect(log.flush()).toEqual([]);
  });

  it('never writes two records of a key within a second, and the counts add up (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('a', 'b'), fc.integer({ min: 0, max: 700 })), { maxLength: 300 }),
        fc.integer({ min: 1, max: 1500 }),
        (events, tickMs) => {
          const log = new RateFoldLog<{ key: string }>(1000);
          const written: Array<{ key: string; at: number; count: number }> = [];
          let now = 0;
          let nextTick = tickMs;
          for (const [key, gap] of events) {
            now += gap;
            while (nextTick <= now) {
              for (const r of log.due(nextTick)) written.push({ key: r.key, at: nextTick, count: r.count });
              nextTick += tickMs;
            }
            for (const r of log.add(key, { key }, now)) written.push({ key, at: now, count: r.count });
          }
          for (const r of log.flush()) written.push({ key: r.key, at: Infinity, count: r.count });
          for (const key of ['a', 'b']) {
            const mine = written.filter((w) => w.key === key);
            const total = events.filter(([k]) => k === key).length;
            expect(mine.reduce((n, w) => n + w.count, 0)).toBe(total);
            for (let i = 1; i < mine.length; i++)
              expect(mine[i]!.at - mine[i - 1]!.at).toBeGreaterThanOrEqual(1000);
          }
        },
      ),
    );
  });
});
