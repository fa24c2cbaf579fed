/** Plain-text tables for the terminal (and pasted as-is into docs/performance.md). */
export function table(rows: string[][], rightAlignFrom = 1): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  const line = (r: string[]): string =>
    `| ${r.map((c, i) => (i >= rightAlignFrom ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (i >= rightAlignFrom ? `${'-'.repeat(w + 1)}:` : `:${'-'.repeat(w + 1)}`)).join('|')}|`;
  const [head, ...body] = rows;
  return [line(head!), sep, ...body.map(line)].join('\n');
}

export const f0 = (x: number | undefined): string =>
  x === undefined || !Number.isFinite(x) ? '-' : Math.round(x).toString();
export const f1 = (x: number | undefined): string =>
  x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(1);
export const f2 = (x: number | undefined): string =>
  x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(2);
export const f3 = (x: number | undefined): string =>
  x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(3);
