import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, GENESIS, hashRecord, serializeRecord } from '../../../src/audit/index.js';
import type { AuditRecord } from '../../../src/audit/index.js';

describe('chain', () => {
  it('GENESIS is 64 zeros', () => {
    expect(GENESIS).toBe('0'.repeat(64));
  });

  it('canonical JSON uses the fixed key order, omits absent keys and sorts detail', () => {
    const json = canonicalJson({
      prev: GENESIS,
      detail: { z: 1, a: 'x', '10': true, '2': false },
      status: 200,
      profile: 'alice',
      event: 'proxy.inject',
      seq: 1,
      ts: '2025-01-01T00:00:00.000Z',
      host: 'api.example.com',
    });
    expect(json).toBe(
      '{"ts":"2025-01-01T00:00:00.000Z","seq":1,"event":"proxy.inject","profile":"alice",' +
        '"host":"api.example.com","status":200,"detail":{"10":true,"2":false,"a":"x","z":1},' +
        `"prev":"${GENESIS}"}`,
    );
  });

  it('hash is sha256(prev + newline + canonical JSON) and ignores an existing hash field', () => {
    const rec = {
      ts: '2025-01-01T00:00:00.000Z',
      seq: 1,
      event: 'login' as const,
      profile: 'bob',
      prev: GENESIS,
    };
    const expected = createHash('sha256')
      .update(`${GENESIS}\n${canonicalJson(rec)}`)
      .digest('hex');
    expect(hashRecord(rec)).toBe(expected);
    expect(hashRecord({ ...rec, hash: 'f'.repeat(64) } as AuditRecord)).toBe(expected);
  });

  it('serialized line parses back to the same record, hash last, for any field values', () => {
    const detail = fc.dictionary(
      fc.string({ maxLength: 8 }),
      fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.double({ noNaN: true, noDefaultInfinity: true })),
      { maxKeys: 5 },
    );
    fc.assert(
      fc.property(fc.string(), fc.option(fc.string(), { nil: undefined }), detail, (profile, host, d) => {
        const base = {
          ts: '2025-01-01T00:00:00.000Z',
          seq: 7,
          event: 'login' as const,
          profile,
          prev: GENESIS,
        };
        const unhashed = { ...base, ...(host === undefined ? {} : { host }), detail: d };
        const record: AuditRecord = { ...unhashed, hash: hashRecord(unhashed) };
        const line = serializeRecord(record);
        expect(line).not.toContain('\n');
        const back = JSON.parse(line) as AuditRecord;
        expect(Object.keys(back).at(-1)).toBe('hash');
        expect(hashRecord(back)).toBe(record.hash);
      }),
    );
  });

  it('any change of a hashed field changes the hash', () => {
    const rec = {
      ts: '2025-01-01T00:00:00.000Z',
      seq: 3,
      event: 'login' as const,
      profile: 'bob',
      prev: GENESIS,
    };
    const h = hashRecord(rec);
    expect(hashRecord({ ...rec, profile: 'bob2' })).not.toBe(h);
    expect(hashRecord({ ...rec, seq: 4 })).not.toBe(h);
    expect(hashRecord({ ...rec, prev: '1'.repeat(64) })).not.toBe(h);
    expect(hashRecord({ ...rec, detail: {} })).not.toBe(h);
  });
});

describe('chainRecord (the writer hot path)', () => {
  it('gives the same hash and line as hashRecord + serializeRecord', async () => {
    const { chainRecord, hashRecord: h, serializeRecord: s } = await import('../../../src/audit/chain.js');
    const unhashed = {
      ts: '2026-11-25T00:00:00.000Z',
      seq: 7,
      event: 'proxy.inject' as const,
      profile: 'me',
      provider: 'github',
      connection: 'work',
      method: 'GET',
      host: 'api.github.com',
      path: '/user',
      request_id: 'r1',
      detail: { b: 1, a: 'x' },
      prev: '0'.repeat(64),
    };
    const out = chainRecord(unhashed);
    expect(out.hash).toBe(h(unhashed));
    expect(out.line).toBe(s({ ...unhashed, hash: out.hash }));
  });
});
