import { describe, expect, it } from 'vitest';
import { table } from '../../../src/cli/output.js';

describe('table', () => {
  it('aligns columns and leaves no trailing spaces, even when the last column is empty', () => {
    const out = table([
      ['NAME', 'HOSTS', 'CONNECTIONS'],
      ['openai', 'api.openai.com', ''],
      ['x', 'a.b', 'work'],
    ]);
    expect(out.split('\n')).toEqual([
      'NAME    HOSTS           CONNECTIONS',
      'openai  api.openai.com',
      'x       a.b             work',
    ]);
  });
});
