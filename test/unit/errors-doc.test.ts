import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ERROR_CODES } from '../../src/errors.js';

describe('docs/errors.md', () => {
  const doc = readFileSync(resolve(import.meta.dirname, '../../docs/errors.md'), 'utf8');
  it.each(Object.entries(ERROR_CODES))(
    'documents %s with its status and exit code',
    (code, { status, exit }) => {
      expect(doc).toContain(`| \`${code}\` | ${status} | ${exit} |`);
    },
  );
});
