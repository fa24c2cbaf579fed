import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditWriter, matchesFilter, readAudit } from '../../../src/audit/index.js';
import type { AuditInput } from '../../../src/audit/index.js';
import { steppingClock, tempDir, type TempDir } from './helpers.js';

let t: TempDir;
const T0 = Date.parse('2025-01-01T00:00:00.000Z');

// 12 records, one second apart: profiles alternate, providers cycle, every third is a deny.
beforeAll(async () => {
  t = await tempDir();
  const w = await AuditWriter.open(t.log, { clock: steppingClock(T0) });
  for (let i = 0; i < 12; i += 1) {
    const input: AuditInput = {
      event: i % 3 === 2 ? 'proxy.deny' : 'proxy.inject',
      profile: i % 2 === 0 ? 'alice' : 'bob',
      provider: ['github', 'openai', 'slack'][i % 3] ?? 'github',
      connection: i < 6 ? 'work' : 'personal',
      request_id: `r${i}`,
    };
    await w.append(input);
  }
  await w.close();
  await appendFile(t.log, 'not json\n{"half":'); // skipped by the reader
});
afterAll(async () => {
  await t.cleanup();
});

const ids = async (filter: Parameters<typeof readAudit>[1]) =>
  (await readAudit(t.log, filter)).map((r) => r.request_id);

describe('readAudit', () => {
  it('returns every well-formed record in order, skipping malformed lines', async () => {
    expect(await ids({})).toEqual(Array.from({ length: 12 }, (_, i) => `r${i}`));
  });

  it('filters by profile, provider, connection and event', async () => {
    expect(await ids({ profile: 'bob' })).toEqual(['r1', 'r3', 'r5', 'r7', 'r9', 'r11']);
    expect(await ids({ provider: 'openai' })).toEqual(['r1', 'r4', 'r7', 'r10']);
    expect(await ids({ connection: 'personal', profile: 'alice' })).toEqual(['r6', 'r8', 'r10']);
    expect(await ids({ event: 'proxy.deny' })).toEqual(['r2', 'r5', 'r8', 'r11']);
    expect(await ids({ profile: 'carol' })).toEqual([]);
  });

  it('hideProbes leaves out doctor.probe and the probe session’s records, and nothing else', () => {
    const rec = (event: string, detail?: Record<string, string | number | boolean>) =>
      ({
        ts: new Date(T0).toISOString(),
        seq: 1,
        prev: '',
        hash: '',
        event,
        profile: 'a',
        ...(detail ? { detail } : {}),
      }) as never;
    const hidden = { hideProbes: true };
    expect(matchesFilter(rec('doctor.probe'), hidden)).toBe(false);
    expect(matchesFilter(rec('session.mint', { id: 'x', probe: true }), hidden)).toBe(false);
    expect(matchesFilter(rec('session.mint', { id: 'x' }), hidden)).toBe(true);
    expect(matchesFilter(rec('proxy.deny'), hidden)).toBe(true);
    expect(matchesFilter(rec('doctor.probe'), {})).toBe(true);
  });

  it('filters by since (inclusive)', async () => {
    expect(await ids({ since: new Date(T0 + 9000) })).toEqual(['r9', 'r10', 'r11']);
  });

  it('limit keeps the last N after filtering', async () => {
    expect(await ids({ limit: 2 })).toEqual(['r10', 'r11']);
    expect(await ids({ profile: 'alice', limit: 3 })).toEqual(['r6', 'r8', 'r10']);
    expect(await ids({ limit: 0 })).toEqual([]);
    expect(await ids({ limit: 100 })).toHaveLength(12);
    await expect(readAudit(t.log, { limit: -1 })).rejects.toThrow(TypeError);
  });

  it('a missing file reads as empty', async () => {
    expect(await readAudit(join(t.dir, 'missing.log'))).toEqual([]);
  });
});
