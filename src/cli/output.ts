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
