import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ERROR_CODES } from '../../src/errors.js';

describe('docs/errors.md', () => {
  const doc = readFileSync(resolve(import.meta.dirname, '../../docs/errors.md'), 'utf8');
  // Table rows: | `CODE` | status | exit | meaning |  (column padding may vary: the file is prettier-formatted)
  const rows = new Map(
    doc
      .split('\n')
      .map((l) => l.split('|').map((c) => c.trim()))
      .filter((c) => /^`ERR_[A-Z_]+`$/.test(c[1] ?? ''))
      .map((c) => [c[1]!.slice(1, -1), { status: Number(c[2]), exit: Number(c[3]) }]),
  );
  it.each(Object.entries(ERROR_CODES))(
    'documents %s with its status and exit code',
    (code, { status, exit }) => {
      expect(rows.get(code)).toEqual({ status, exit });
    },
  );
  it('documents no code that does not exist', () => {
    expect([...rows.keys()].filter((c) => !(c in ERROR_CODES))).toEqual([]);
  });
});
