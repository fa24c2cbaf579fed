import { describe, expect, it } from 'vitest';
import { fitTable, table } from '../../../src/cli/output.js';

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

describe('fitTable', () => {
  const rows = [
    [['datadog'], ['bundled'], ['api.datadoghq.com', 'api.us3.datadoghq.com', 'api.us5.datadoghq.com'], []],
    [['github'], ['bundled'], ['api.github.com'], ['personal', 'work']],
    [['long'], ['custom'], ['a-very-long-host-name-that-cannot-fit.example.com'], []],
  ];
  it('wraps the flexible columns between items to fit the width', () => {
    const out = fitTable(['PROVIDER', 'SOURCE', 'HOSTS', 'CONNECTIONS'], rows, { width: 60, wrap: [2, 3] });
    const lines = out.split('\n');
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(60);
    expect(lines[0]).toMatch(/^PROVIDER +SOURCE +HOSTS +CONNECTIONS$/);
    expect(lines[1]).toMatch(/^datadog +bundled +api\.datadoghq\.com,/);
    expect(lines[2]).toMatch(/^ +api\.us/);
    expect(out).toContain('personal, work');
    expect(out).toContain('…');
  });
  it('keeps a table that fits as it is', () => {
    const out = fitTable(['A', 'B'], [[['x'], ['h1', 'h2']]], { width: 80, wrap: [1] });
    expect(out.split('\n')).toEqual(['A  B', 'x  h1, h2']);
  });
});
