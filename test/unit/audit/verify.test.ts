import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditWriter, hashRecord, verifyAudit } from '../../../src/audit/index.js';
import type { AuditRecord } from '../../../src/audit/index.js';
import { steppingClock, tempDir, type TempDir } from './helpers.js';

let t: TempDir;
let lines: string[];

beforeEach(async () => {
  t = await tempDir();
  const w = await AuditWriter.open(t.log, { clock: steppingClock() });
  for (let i = 0; i < 5; i += 1) await w.append({ event: 'proxy.inject', profile: 'alice', status: 200 });
  await w.close();
  lines = (await readFile(t.log, 'utf8')).trimEnd().split('\n');
});
afterEach(async () => {
  await t.cleanup();
});

const write = (ls: string[], trailingNewline = true) =>
  writeFile(t.log, ls.join('\n') + (trailingNewline ? '\n' : ''));
const line = (i: number): string => lines[i] ?? '';

describe('verifyAudit', () => {
  it('accepts an intact log and counts lines', async () => {
    expect(await verifyAudit(t.log)).toEqual({ ok: true, lines: 5 });
  });

  it('a missing or empty log is valid', async () => {
    expect(await verifyAudit(join(t.dir, 'none'))).toEqual({ ok: true, lines: 0 });
    await writeFile(t.log, '');
    expect(await verifyAudit(t.log)).toEqual({ ok: true, lines: 0 });
  });

  it("with the daemon's head: holds it, or names where the log falls short of it", async () => {
    const head = (i: number) => {
      const r = JSON.parse(line(i)) as AuditRecord;
      return { seq: r.seq, hash: r.hash };
    };
    expect(await verifyAudit(t.log, head(4))).toEqual({ ok: true, lines: 5 });
    expect(await verifyAudit(t.log, head(2))).toEqual({ ok: true, lines: 5 }); // written since: fine
    await write(lines.slice(0, 3));
    const cut = await verifyAudit(t.log, head(4));
    expect(cut).toMatchObject({ ok: false, lines: 3, firstBroken: { line: 4 } });
    expect(cut.firstBroken?.reason).toContain('the log ends at seq 3, the daemon has written up to seq 5');
    expect(await verifyAudit(join(t.dir, 'none'), head(0))).toMatchObject({
      ok: false,
      firstBroken: { line: 1 },
    });
    // A different valid chain of the same length (another log swapped in) does not hold the daemon's record.
    const other = await tempDir();
    try {
      const w = await AuditWriter.open(other.log, { clock: steppingClock() });
      for (let i = 0; i < 5; i += 1) await w.append({ event: 'proxy.inject', profile: 'bob', status: 200 });
      await w.close();
      const swapped = await verifyAudit(other.log, head(4));
      expect(swapped).toMatchObject({ ok: false, firstBroken: { line: 5 } });
      expect(swapped.firstBroken?.reason).toContain('not the record the daemon wrote as seq 5');
    } finally {
      await other.cleanup();
    }
  });

  it('names an edited line', async () => {
    await write(lines.map((l, i) => (i === 2 ? l.replace('"alice"', '"mallory"') : l)));
    const r = await verifyAudit(t.log);
    expect(r).toMatchObject({ ok: false, lines: 5, firstBroken: { line: 3 } });
    expect(r.firstBroken?.reason).toMatch(/hash/);
  });

  it('an edit with a recomputed hash is caught at the next line', async () => {
    const rec = JSON.parse(line(2)) as AuditRecord;
    const forged = { ...rec, status: 500 };
    forged.hash = hashRecord(forged);
    await write(lines.map((l, i) => (i === 2 ? JSON.stringify(forged) : l)));
    expect(await verifyAudit(t.log)).toMatchObject({ ok: false, firstBroken: { line: 4 } });
  });

  it('names the position of a deleted line', async () => {
    await write(lines.filter((_, i) => i !== 1));
    expect(await verifyAudit(t.log)).toMatchObject({ ok: false, lines: 4, firstBroken: { line: 2 } });
  });

  it('names the first of two reordered lines', async () => {
    await write([line(0), line(1), line(3), line(2), line(4)]);
    const r = await verifyAudit(t.log);
    expect(r).toMatchObject({ ok: false, firstBroken: { line: 3 } });
    expect(r.firstBroken?.reason).toMatch(/seq/);
  });

  it('reports an unparseable line', async () => {
    await write([line(0), '{"oops', line(1)]);
    expect(await verifyAudit(t.log)).toMatchObject({
      ok: false,
      lines: 3,
      firstBroken: { line: 2, reason: 'not valid JSON' },
    });
  });

  it('reports an added field that the hash would not cover', async () => {
    await write(lines.map((l, i) => (i === 1 ? l.replace('{', '{"note":"x",') : l)));
    expect(await verifyAudit(t.log)).toMatchObject({
      firstBroken: { line: 2, reason: 'unexpected key "note"' },
    });
  });

  it('reports a final line without newline as torn', async () => {
    await write(lines, false);
    const r = await verifyAudit(t.log);
    expect(r).toMatchObject({ ok: false, lines: 5, firstBroken: { line: 5 } });
    expect(r.firstBroken?.reason).toMatch(/torn/);
  });

  it('a chain that does not start at seq 1 / GENESIS is broken at line 1', async () => {
    await write(lines.slice(1));
    expect(await verifyAudit(t.log)).toMatchObject({ ok: false, firstBroken: { line: 1 } });
  });
});
