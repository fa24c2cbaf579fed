import { isErrorCode, type ErrorCode } from '../errors.js';

export interface LoggedError {
  code: ErrorCode;
  message: string;
  hint?: string;
}

/**
 * The error a daemon printed at lines[i], if it is one: `authsome: <message> [ERR_…]` (reportError's
 * format; the prefix may be missing), with the `  next: …` line after it as the hint.
 */
export function loggedErrorAt(lines: readonly string[], i: number): LoggedError | undefined {
  const m = /^(?:authsome: )?(.*) \[(ERR_[A-Z_]+)\]$/.exec(lines[i] ?? '');
  if (!m || !isErrorCode(m[2]!)) return undefined;
  const next = /^\s+next: (.*)$/.exec(lines[i + 1] ?? '');
  return { code: m[2]!, message: m[1]!, ...(next ? { hint: next[1]! } : {}) };
}
