import { writeFile } from 'node:fs/promises';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditWriter, holdsRecord, type AuditRecord } from '../../../src/audit/index.js';
import { linesFromEnd } from '../../../src/audit/lines.js';
import { steppingClock, tempDir, type TempDir } from './helpers.js';

let t: TempDir;
beforeEach(async () => {
  t = await tempDir();
});
afterEach(async () => {
  await t.cleanup();
});

const backwards = async (path: string): Promise<string[]> => {
  const out: string[] = [];
  for await (const l of linesFromEnd(path)) out.push(l);
  return out;
};

describe('linesFromEnd', () => {
  it('gives the lines last to first, across 64 KiB windows and multi-byte characters (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.string({ unit: 'grapheme', maxLength: 3000 }).map((s) => s.replace(/\n/g, '')),
          {
            maxLength: 120,
          },
        ),
        fc.boolean(),
        async (lines, finalNewline) => {
          const text = lines.join('\n') + (finalNewline && lines.length > 0 ? '\n' : '');
          await writeFile(t.log, text);
          const expected = text === '' ? [] : text.replace(/\n$/, '').split('\n').reverse();
          expect(await backwards(t.log)).toEqual(expected);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('holdsRecord', () => {
  it('finds a record by seq and hash from the end, and only that one', async () => {
    const w = await AuditWriter.open(t.log, { clock: steppingClock() });
    const records: AuditRecord[] = [];
    for (let i = 0; i < 2000; i += 1)
      records.push(
        await w.append({ event: 'proxy.inject', profile: 'alice', detail: { pad: 'x'.repeat(i % 97) } }),
      );
    await w.close();
    const at = (i: number) => ({ seq: records[i]!.seq, hash: records[i]!.hash });
    expect(await holdsRecord(t.log, at(1999))).toBe(true);
    expect(await holdsRecord(t.log, at(3))).toBe(true); // far back, across windows
    expect(await holdsRecord(t.log, { seq: records[10]!.seq, hash: records[11]!.hash })).toBe(false);
    expect(await holdsRecord(t.log, { seq: 5000, hash: records[0]!.hash })).toBe(false);
  });
});
