import { AppError, isAppError } from '../errors.js';

/** The CLI is the only place that prints or exits (ARCHITECTURE). */
export interface Output {
  readonly json: boolean;
  readonly color: boolean;
}

export function makeOutput(json: boolean, noColor: boolean): Output {
  const color = !noColor && !process.env['NO_COLOR'] && process.stdout.isTTY === true;
  return { json, color };
}

export function emit(out: Output, data: unknown, human: () => string): void {
  if (out.json) process.stdout.write(JSON.stringify(data, null, 2) + '\n');
  else {
    const text = human();
    if (text) process.stdout.write(text.endsWith('\n') ? text : text + '\n');
  }
}

export function bold(out: Output, s: string): string {
  return out.color ? `\x1b[1m${s}\x1b[0m` : s;
}

export function dim(out: Output, s: string): string {
  return out.color ? `\x1b[2m${s}\x1b[0m` : s;
}

export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Prints an error (JSON on stderr with --json) and returns the documented exit code. */
export function reportError(e: unknown, json: boolean): number {
  const err = isAppError(e)
    ? e
    : new AppError(
        'ERR_INTERNAL',
        e instanceof Error ? e.message : String(e),
        'this is a bug: please report it with the command you ran',
      );
  if (json) process.stderr.write(JSON.stringify({ error: err.toJSON() }) + '\n');
  else {
    process.stderr.write(`authsome: ${err.message} [${err.code}]\n`);
    if (err.hint) process.stderr.write(`  next: ${err.hint}\n`);
  }
  return err.exitCode;
}

/** The terminal's width, 80 when stdout is not a terminal (pipes, files, tests). */
export function terminalWidth(): number {
  const c = process.stdout.isTTY ? process.stdout.columns : undefined;
  return c !== undefined && c > 0 ? c : 80;
}

/**
 * A table that fits `width` columns: each cell is a list of items (hosts, connections) joined with
 * ", "; the cells of the `wrap` columns break between items onto continuation lines, and an item
 * longer than its column is shortened with "…". The other columns keep their natural width (when
 * even those do not fit, the lines are as short as they can be).
 */
export function fitTable(
  head: readonly string[],
  rows: ReadonlyArray<ReadonlyArray<readonly string[]>>,
  opts: { width: number; wrap: readonly number[] },
): string {
  const GAP = 2;
  const joined = (cell: readonly string[]) => cell.join(', ');
  const natural = head.map((h, i) => Math.max(h.length, ...rows.map((r) => joined(r[i] ?? []).length)));
  const fixed = natural.reduce((n, w, i) => n + (opts.wrap.includes(i) ? 0 : w), 0);
  let room = opts.width - fixed - GAP * (head.length - 1);
  const widths = [...natural];
  // Wrapped columns share what is left, the narrow ones first (they keep their natural width when it fits).
  const order = [...opts.wrap].sort((a, b) => natural[a]! - natural[b]!);
  order.forEach((col, k) => {
    const share = Math.floor(room / (order.length - k));
    widths[col] = Math.max(Math.min(natural[col]!, share), Math.min(natural[col]!, 12));
    room -= widths[col]!;
  });
  const shorten = (s: string, w: number) => (s.length <= w ? s : `${s.slice(0, Math.max(w - 1, 1))}…`);
  const lay = (cell: readonly string[], w: number): string[] => {
    const lines: string[] = [];
    let cur = '';
    cell.forEach((item, i) => {
      const piece = shorten(item, w - (i < cell.length - 1 ? 1 : 0)) + (i < cell.length - 1 ? ',' : '');
      if (cur && cur.length + 1 + piece.length > w) {
        lines.push(cur);
        cur = piece;
      } else cur = cur ? `${cur} ${piece}` : piece;
    });
    return cur ? [...lines, cur] : lines.length ? lines : [''];
  };
  const out: string[] = [];
  const emitRow = (cells: string[][]) => {
    const height = Math.max(...cells.map((c) => c.length));
    for (let l = 0; l < height; l++)
      out.push(
        cells
          .map((c, i) => (i === cells.length - 1 ? (c[l] ?? '') : (c[l] ?? '').padEnd(widths[i]!)))
          .join(' '.repeat(GAP))
          .trimEnd(),
      );
  };
  emitRow(head.map((h) => [h]));
  for (const r of rows)
    emitRow(head.map((_, i) => (opts.wrap.includes(i) ? lay(r[i] ?? [], widths[i]!) : [joined(r[i] ?? [])])));
  return out.join('\n');
}
