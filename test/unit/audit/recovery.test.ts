import { appendFile, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditWriter, readAudit, verifyAudit } from '../../../src/audit/index.js';
import { steppingClock, tempDir, type TempDir } from './helpers.js';

let t: TempDir;
let writer: AuditWriter | undefined;
beforeEach(async () => {
  t = await tempDir();
});
afterEach(async () => {
  await writer?.close();
  writer = undefined;
  await t.cleanup();
});

async function seed(n: number): Promise<string> {
  const w = await AuditWriter.open(t.log, { clock: steppingClock() });
  for (let i = 0; i < n; i += 1) await w.append({ event: 'login', profile: `p${i}` });
  await w.close();
  return readFile(t.log, 'utf8');
}

async function tornFiles(): Promise<string[]> {
  return (await readdir(t.dir)).filter((f) => f.startsWith('audit.log.torn-'));
}

describe('torn tail recovery on open', () => {
  // Each builds the bytes a crash left after three good lines.
  const cases: Array<[string, (good: string[]) => string]> = [
    ['a fragment without newline', () => '{"ts":"2025-01-01T00:00:09.000Z","seq":4,"ev'],
    ['a complete-looking line without newline', () => '{"ts":"x","seq":4}'],
    ['an invalid line with newline', () => 'garbage\n'],
    ['zero-filled blocks', () => '\0'.repeat(4096)],
    [
      'a line whose hash does not match, then a fragment',
      (g) => `${(g[2] ?? '').replace('"p2"', '"p9"')}\n{"ts`,
    ],
  ];

  it.each(cases)('%s: saved aside, truncated, reported, chain valid', async (_name, makeTail) => {
    const good = await seed(3);
    const tail = makeTail(good.trimEnd().split('\n'));
    await appendFile(t.log, tail);

    writer = await AuditWriter.open(t.log, { clock: () => new Date('2025-02-03T04:05:06.789Z') });
    const torn = await tornFiles();
    expect(torn).toEqual(['audit.log.torn-2025-02-03T04-05-06-789Z']);
    const savedTo = join(t.dir, torn[0] ?? '');
    expect(await readFile(savedTo, 'utf8')).toBe(tail);
    expect((await stat(savedTo)).mode & 0o777).toBe(0o600);

    const records = await readAudit(t.log);
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    expect(records[3]).toMatchObject({
      event: 'audit.recovered',
      profile: '-',
      detail: { torn_bytes: Buffer.byteLength(tail), saved_to: savedTo },
    });
    expect((await readFile(t.log, 'utf8')).startsWith(good)).toBe(true);
    expect(await verifyAudit(t.log)).toEqual({ ok: true, lines: 4 });
  });

  it('a real record that lost its newline is torn too (verify would reject it), not kept', async () => {
    const good = await seed(3);
    await writeFile(t.log, good.slice(0, -1));
    writer = await AuditWriter.open(t.log);
    const records = await readAudit(t.log);
    expect(records.map((r) => [r.seq, r.event])).toEqual([
      [1, 'login'],
      [2, 'login'],
      [3, 'audit.recovered'],
    ]);
    expect(await verifyAudit(t.log)).toEqual({ ok: true, lines: 3 });
  });

  it('a clean log is left alone: no torn file, no event', async () => {
    const good = await seed(2);
    writer = await AuditWriter.open(t.log);
    expect(await tornFiles()).toEqual([]);
    expect(await readFile(t.log, 'utf8')).toBe(good);
  });

  it('a log of nothing but garbage is moved aside whole and the chain restarts', async () => {
    await writeFile(t.log, 'not json\nnor this\n', { mode: 0o600 });
    writer = await AuditWriter.open(t.log);
    const records = await readAudit(t.log);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ seq: 1, event: 'audit.recovered', detail: { torn_bytes: 18 } });
    expect(await verifyAudit(t.log)).toEqual({ ok: true, lines: 1 });
  });

  it('finds the head past the first read window (lines bigger than 64 KiB)', async () => {
    const w = await AuditWriter.open(t.log);
    for (let i = 0; i < 3; i += 1)
      await w.append({ event: 'login', profile: 'a', reason: 'x'.repeat(50_000) });
    await w.close();
    await appendFile(t.log, 'y'.repeat(70_000));
    writer = await AuditWriter.open(t.log);
    expect(writer.head.seq).toBe(4);
    expect(await verifyAudit(t.log)).toEqual({ ok: true, lines: 4 });
  });

  it('two recoveries at the same instant do not overwrite each other', async () => {
    await seed(1);
    const clock = () => new Date('2025-02-03T04:05:06.789Z');
    await appendFile(t.log, 'torn-1');
    await (await AuditWriter.open(t.log, { clock })).close();
    await appendFile(t.log, 'torn-2');
    writer = await AuditWriter.open(t.log, { clock });
    expect((await tornFiles()).sort()).toEqual([
      'audit.log.torn-2025-02-03T04-05-06-789Z',
      'audit.log.torn-2025-02-03T04-05-06-789Z-1',
    ]);
    expect(await verifyAudit(t.log)).toEqual({ ok: true, lines: 3 });
  });
});
